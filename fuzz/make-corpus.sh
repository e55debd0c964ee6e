#!/bin/sh
# make-corpus.sh — writes the fuzzers' seed corpus: a few small valid and invalid files per
# target, built here with printf so that no binary file needs committing.
#   sh fuzz/make-corpus.sh [OUT]      (default: fuzz/corpus; OUT/<target>/ per target)
# Names: ok-* are files the reader must accept, bad-* files it must refuse with a message,
# repro-* inputs that once crashed or misled a reader (kept so every run replays them).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/corpus}
mkdir -p "$OUT/idx" "$OUT/npy" "$OUT/csv" "$OUT/cifar" "$OUT/safetensors" "$OUT/config"

# bytes N: N as 4 big-endian bytes (IDX) / le64 N: 8 little-endian bytes (safetensors)
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
                           $(($1 >> 8 & 255)) $(($1 & 255)))"; }
le16() { printf "$(printf '\\%03o\\%03o' $(($1 & 255)) $(($1 >> 8 & 255)))"; }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); }
le64() { le32 "$1"; le32 0; }
bytes() { i=0; while [ "$i" -lt "$1" ]; do printf "\\$(printf '%03o' $(( (i * 37 + 11) & 255 )))"; i=$((i + 1)); done; }
# gzip damage, for the readers' gzip oracle (fuzz/fuzz_util.h): FILE.gz cut N bytes short of
# its end; its CRC-32 or ISIZE field zeroed; members back to back.
gz_cut() { head -c "$(($(wc -c < "$1") - $2))" "$1"; }
gz_zero_crc() { n=$(wc -c < "$1"); head -c $((n - 8)) "$1"; printf '\000\000\000\000'; tail -c 4 "$1"; }
gz_zero_isize() { n=$(wc -c < "$1"); head -c $((n - 4)) "$1"; printf '\000\000\000\000'; }
gz_two_members() { n=$(wc -c < "$1"); head -c $((n / 2)) "$1" | gzip -9nc; tail -c $((n - n / 2)) "$1" | gzip -1nc; }
# gzip_damage DIR PLAIN GZ: the damaged variants of DIR/GZ, a good gzip of DIR/PLAIN, as repro-*
# since each was accepted by a reader until the gzip ends were checked; and PLAIN in two members
gzip_damage() {
  for k in 1 4 8; do gz_cut "$1/$3" $k > "$1/repro-gzip-cut-$k"; done
  gz_zero_crc "$1/$3" > "$1/repro-gzip-bad-crc"
  gz_zero_isize "$1/$3" > "$1/repro-gzip-bad-isize"
  { cat "$1/$3"; printf 'x'; } > "$1/repro-gzip-trailing-byte"
  { cat "$1/$3"; printf '\037\213'; } > "$1/repro-gzip-trailing-magic"
  gz_two_members "$1/$2" > "$1/ok-two-members.gz"
}

# ---- IDX: magic, dimensions (big-endian), then the bytes ------------------------------------
d=$OUT/idx
{ be32 2051; be32 2; be32 3; be32 4; bytes 24; } > "$d/ok-images-2x3x4"
{ be32 2049; be32 5; bytes 5; } > "$d/ok-labels-5"
gzip -9nc "$d/ok-images-2x3x4" > "$d/ok-images.gz"
{ be32 2051; be32 2; be32 3; } > "$d/bad-short-header"
{ be32 2051; be32 2; be32 3; be32 4; bytes 23; } > "$d/bad-short-body"
{ be32 2051; be32 2; be32 3; be32 4; bytes 25; } > "$d/bad-trailing"
printf '\003\010\000\000' > "$d/bad-little-endian"
{ be32 2051; be32 0; be32 3; be32 4; } > "$d/bad-zero-count"
{ be32 2051; be32 4294967295; be32 4294967295; be32 4294967295; } > "$d/bad-overflow"
head -c 30 "$d/ok-images.gz" > "$d/bad-gzip-cut"
{ be32 2051; be32 1; be32 1; be32 1; printf '\377'; } > "$d/ok-images-1x1x1"
{ be32 2051; be32 3; be32 28; be32 28; bytes 2352; } > "$d/ok-images-3x28x28"
gzip -9nc "$d/ok-labels-5" > "$d/ok-labels.gz"
cp "$d/ok-images-2x3x4" "$d/named"; touch -t 200001010000 "$d/named"
gzip -9c "$d/named" > "$d/ok-images-named.gz"; rm "$d/named" # FNAME and MTIME in the header
gzip_damage "$d" ok-images-2x3x4 ok-images.gz

# ---- NPY: magic, version, header length, dict padded to 64 bytes, data ----------------------
# npy MAJOR DICT DATA-BYTES: a file whose header is DICT (padding as numpy.save pads it)
npy() {
  pre=10; [ "$1" -ge 2 ] && pre=12
  len=$((pre + ${#2} + 1)); pad=$(( (64 - len % 64) % 64 )); hlen=$((${#2} + pad + 1))
  printf '\223NUMPY'; printf "\\$(printf '%03o' "$1")\\000"
  if [ "$1" -ge 2 ]; then le32 "$hlen"; else le16 "$hlen"; fi
  printf '%s' "$2"; printf "%${pad}s" ''; printf '\n'
  bytes "$3"
}
d=$OUT/npy
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }" 6 > "$d/ok-u1-2x3"
npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2), }" 0 > "$d/tmp"
{ cat "$d/tmp"; i=0; while [ $i -lt 8 ]; do printf '\000\000\200\077'; i=$((i + 1)); done; } \
  > "$d/ok-f4-2x1x2x2"; rm "$d/tmp"
npy 1 "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" 0 > "$d/tmp"
{ cat "$d/tmp"; i=0; while [ $i -lt 3 ]; do printf '\000\000\000\000\000\000\360\077'; i=$((i + 1)); done; } \
  > "$d/ok-f8-3"; rm "$d/tmp"
npy 2 "{'shape': (4, 2), 'fortran_order': False, 'descr': '|u1'}" 8 > "$d/ok-v2-u1-4x2"
gzip -9nc "$d/ok-u1-2x3" > "$d/ok-u1.gz"
gzip -9nc "$d/ok-f4-2x1x2x2" > "$d/ok-f4.gz"
gzip_damage "$d" ok-u1-2x3 ok-u1.gz
npy 1 "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }" 6 > "$d/bad-fortran"
npy 1 "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }" 4 > "$d/bad-big-endian"
npy 1 "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }" 8 > "$d/bad-dtype"
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }" 5 > "$d/bad-short-data"
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999, 99999999999), }" 0 \
  > "$d/bad-overflow"
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (), }" 1 > "$d/bad-scalar"
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3) " 6 > "$d/bad-dict"
printf '\223NUMPY\001\000\377\377' > "$d/bad-header-past-end"

# ---- CSV: text ------------------------------------------------------------------------------
d=$OUT/csv
printf '1,2,3\n4,5,6\n' > "$d/ok-plain"
printf 'a,b\n0.5,1e-3\n-2,  7 \n' > "$d/ok-header"
printf '1;2\r\n3;4\r\n' > "$d/ok-semicolon-crlf"
printf '1\t2\n\n3\t4' > "$d/ok-tab-blank-no-newline"
printf '\357\273\2771,2\n' > "$d/ok-bom"
gzip -9nc "$d/ok-plain" > "$d/ok-plain.gz"
gzip_damage "$d" ok-plain ok-plain.gz
printf '0x1p3,-0,1.40129846e-45\n-1e-3,+.5,65504\n' > "$d/ok-edge-numbers"
printf '1,2\n3\n' > "$d/bad-ragged"
printf '1,2\n3,x\n' > "$d/bad-field"
printf '1,2\nnan,1\n' > "$d/bad-nan"
printf '1,2\n1e39,1\n' > "$d/bad-too-big"
printf '1,2;3\n' > "$d/bad-mixed"
printf 'a,b\n' > "$d/bad-header-only"
printf '\n \n\t\n' > "$d/bad-blank"
printf '1,,2\n' > "$d/bad-empty-field"

# ---- CIFAR-10: records of a label byte (0-9) and 3072 pixel bytes ---------------------------
# record LABEL: one record
record() { printf "\\$(printf '%03o' "$1")"; bytes 3072; }
d=$OUT/cifar
record 3 > "$d/ok-one"
{ record 0; record 9; } > "$d/ok-two"
gzip -9nc "$d/ok-two" > "$d/ok-two.gz"
gzip_damage "$d" ok-two ok-two.gz
gzip -9nc "$d/ok-one" > "$d/ok-one.gz"
# the reader sizes its buffer from the trailer's ISIZE: two members (the last ISIZE half the
# content) undersell it and must read the same records; a wrong ISIZE, too small or too large,
# is a corrupt member
{ cat "$d/ok-one.gz"; cat "$d/ok-one.gz"; } > "$d/ok-one-twice.gz"
n=$(wc -c < "$d/ok-one.gz")
{ head -c $((n - 4)) "$d/ok-one.gz"; le32 1; } > "$d/bad-isize-small.gz"
{ head -c $((n - 4)) "$d/ok-one.gz"; le32 4294967295; } > "$d/bad-isize-large.gz"
{ record 1; record 10; } > "$d/bad-label"
{ record 1; head -c 100 "$d/ok-one"; } > "$d/bad-cut-record"
head -c 40 "$d/ok-two.gz" > "$d/bad-gzip-cut"
printf '\037\213' > "$d/bad-gzip-magic-only"

# ---- safetensors: 8-byte length, JSON header, data ------------------------------------------
# st JSON DATA-BYTES
st() { le64 ${#1}; printf '%s' "$1"; bytes "$2"; }
d=$OUT/safetensors
T='"dtype":"F32","shape":[2,2],"data_offsets":[0,16]'
st "{\"w\":{$T},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},\"__metadata__\":{\"format\":\"anamo-checkpoint-1\"}}" 24 > "$d/ok-two-tensors"
st '{"e":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}    ' 8 > "$d/ok-empty-and-i64"
st '{}' 0 > "$d/ok-no-tensors"
st "{\"w\":{$T}}" 8 > "$d/bad-past-end"
st '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12 > "$d/bad-overlap"
st '{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}' 4 > "$d/bad-dtype"
st '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8 > "$d/bad-shape-mismatch"
st '{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}' 8 > "$d/bad-shape-overflow"
st '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8 > "$d/bad-duplicate"
st '{"a":' 0 > "$d/bad-json"
st '{"__metadata__":{"k":1}}' 0 > "$d/bad-metadata"
{ le64 1000000; printf '{}'; } > "$d/bad-length-past-end"
printf '\010\000\000' > "$d/bad-short"
# tensors in another order than their offsets, and an empty one between two: they tile
st '{"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]},"e":{"dtype":"F32","shape":[2,0],"data_offsets":[8,8]},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}' 12 > "$d/ok-unsorted"
st ' {"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"__metadata__":{"k":"v","format":"pt"}}' 4 > "$d/ok-scalar-meta"
# offsets that do not tile the data section: accepted until the tiling was checked
st '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}' 12 > "$d/repro-hole"
st '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 12 > "$d/repro-trailing-data"
st '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8 > "$d/repro-not-from-0"
st '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}' 8 > "$d/repro-empty-inside"
st '{}' 8 > "$d/repro-no-tensors-data"

# ---- reproducers: inputs that broke a reader (docs/RELIABILITY.md tells the story) ---------
# a 16-byte IDX header (and its gzip) promising 4 GB: allocated and zeroed before reading
{ be32 2051; be32 1000; be32 2000; be32 2000; } > "$OUT/idx/repro-hostile-claim"
gzip -9nc "$OUT/idx/repro-hostile-claim" > "$OUT/idx/repro-hostile-claim.gz"
# an NPY header promising 2 GB, and the same as float64 (4 GB read, 2 GB kept)
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (2000, 1000, 1000), }" 0 \
  > "$OUT/npy/repro-hostile-claim"
npy 1 "{'descr': '<f8', 'fortran_order': False, 'shape': (250000000, 2), }" 0 \
  > "$OUT/npy/repro-hostile-claim-f8"
# header text with a newline quoted back in a message (an unknown key, a syntax error)
npy 1 "{'de
scr': '|u1', 'fortran_order': False, 'shape': (1,), }" 1 > "$OUT/npy/repro-newline-key"
npy 1 "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }
!" 1 > "$OUT/npy/repro-newline-syntax"
# float data holding NaN: accepted, it made the first training step "diverge"
npy 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" 0 > "$OUT/npy/repro-nan"
printf '\000\000\000\077\000\000\300\177' >> "$OUT/npy/repro-nan"
# a carriage return inside a field, quoted back in the message
printf '1,2\n3,4\r5\n' > "$OUT/csv/repro-cr-field"
# 8200 columns over 8200 blank lines: 49 KB asking for 8200 × 8201 floats (269 MB)
awk 'BEGIN { for (i = 0; i < 8200; i++) printf(i ? ",0" : "0"); for (i = 0; i <= 8200; i++) print ""; print "1" }' \
  > "$OUT/csv/repro-blank-lines"
# float32's largest value, accepted, but refused when written back with FLT_DECIMAL_DIG (9)
# digits: 3.40282347e+38 is above FLT_MAX as a double, though it rounds to FLT_MAX in float32
printf '3.40282346e38,1\n' > "$OUT/csv/repro-flt-max-round-trip"
# a first line of numbers, one of them NaN: taken for a header and dropped, where any later
# line holding NaN is refused
printf 'nan,1\n2,3\n' > "$OUT/csv/repro-nan-first-row"
# a carriage return inside a config value, quoted back in the message
printf '[train]\nepochs = 2\rbatch = 4\n' > "$OUT/config/repro-cr-value"
# a value starting with ';' (inih keeps it: no space before it): the resolved text wrote
# "train = ;x", which inih reads as an empty value and a comment, so --resume lost the value
printf '[data]\ntrain =;x\n' > "$OUT/config/repro-semicolon-value"
# a valid config line of 300 characters: inih's 200-byte buffer refused it
{ printf '[model]\nencoder = linear 10, sigmoid'
  i=0; while [ $i -lt 30 ]; do printf ', identity'; i=$((i + 1)); done; printf '\n'; } \
  > "$OUT/config/repro-long-line"

# ---- configs: INI text ----------------------------------------------------------------------
d=$OUT/config
for f in "$HERE"/../experiments/*.ini; do [ -f "$f" ] && cp "$f" "$d/ok-$(basename "$f" .ini)"; done
cat > "$d/ok-minimal" <<'INI'
[data]
train = halves:train
test = halves:test
[model]
encoder = linear 10, sigmoid
decoder = linear 100, sigmoid
[train]
scheme = nam          ; or joint
epochs = 2
batch = 10
[nam]
start = encoder
decoder_lr = 1e-2
INI
cat > "$d/ok-phases" <<'INI'
[train]
scheme = nam
[nam]
phases = dec, enc
[phase dec]
block = decoder
optimizer = fista
prox = l1_nonneg
schedule = plateau
[phase enc]
block = encoder
optimizer = nesterov
step = backtrack
iterations = 7
batch = 32
INI
cat > "$d/ok-anamo-arms" <<'INI'
[train]
scheme = anamo
[anamo]
enc_iters = 3
restart = function
[compare]
arms = a, b
[arm a]
train.scheme = joint
[arm b]
freecodes.fit = bce
INI
printf '[train]\nepohcs = 2\n' > "$d/bad-typo"
printf '[train]\nepochs = abc\n' > "$d/bad-value"
printf 'epochs = 2\n' > "$d/bad-no-section"
printf '[train\nepochs = 2\n' > "$d/bad-section-syntax"
printf '[nosuch]\nkey = 1\n' > "$d/bad-section"
printf '[train]\nbatch = 1e300\n' > "$d/bad-range"
printf '[nam]\nphases = x\n' > "$d/bad-phase-missing"
