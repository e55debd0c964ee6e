#!/usr/bin/env python3
"""compare-checkpoints.py A B [TOL] — the largest relative difference between the parameter
tensors (encoder.* and decoder.* weights and biases) of two anamo checkpoints: max |a - b| over
max |a|, tensor by tensor. Prints it; exits 1 when it exceeds TOL (default 1e-5) or when the two
hold other tensors. Standard library only."""
import json
import struct
import sys
from array import array


def parameters(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or not name.endswith((".weight", ".bias")):
            continue
        if not name.startswith(("encoder.", "decoder.")) or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        out[name] = array("f", data[8 + n + begin:8 + n + end])
    return out


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    tol = float(sys.argv[3]) if len(sys.argv) == 4 else 1e-5
    a, b = parameters(sys.argv[1]), parameters(sys.argv[2])
    if sorted(a) != sorted(b) or not a:
        print("different tensors: %s vs %s" % (sorted(a), sorted(b)))
        sys.exit(1)
    worst, where = 0.0, ""
    for name in sorted(a):
        scale = max(max(abs(v) for v in a[name]), 1e-30)
        diff = max(abs(x - y) for x, y in zip(a[name], b[name])) / scale
        if diff > worst:
            worst, where = diff, name
    print("largest relative difference %.3g (%s)" % (worst, where or "none"))
    sys.exit(1 if worst > tol else 0)


main()
