#!/bin/sh
# Downloads the four MNIST files into ${ANAMO_DATA:-data}/mnist/ (where anamo looks for them),
# from the PyTorch mirror of Yann LeCun's original files. Needs curl or wget and network
# access. anamo's IDX reader checks every header and length when it opens them.
set -eu
dir="${ANAMO_DATA:-data}/mnist"
base="https://ossci-datasets.s3.amazonaws.com/mnist"
if ! command -v curl >/dev/null && ! command -v wget >/dev/null; then
  echo "get-mnist.sh: needs curl or wget (sh scripts/install-deps.sh installs curl)" >&2
  exit 1
fi
mkdir -p "$dir"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -s "$dir/$f" ] && continue
  echo "downloading $f"
  if command -v curl >/dev/null; then curl -fsSL -o "$dir/$f" "$base/$f"
  else wget -q -O "$dir/$f" "$base/$f"; fi
done
echo "MNIST is in $dir"
