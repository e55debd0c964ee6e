#!/usr/bin/python3
"""pytorch_bench.py: the models of bench_dense and bench_conv trained by PyTorch, timed like
anamo's joint line. Each run builds a fresh model (PyTorch's default init, seed 0), trains it
for 2 epochs with Adam lr 1e-3 and MSE at batch 125 on the real training set read from
ANAMO_DATA, and prints the samples/s of the 2nd epoch as `torch_joint: N samples/s`.
bench/compare-pytorch.sh runs it in turn with anamo's bench and takes the medians.

    /usr/bin/python3 bench/pytorch_bench.py dense|conv [--threads 2] [--samples N] [--mkldnn off]
    /usr/bin/python3 bench/pytorch_bench.py info [--threads 2]

Needs Debian's PyTorch: `apt-get install python3-torch libopenblas0-pthread` (see
bench/README.md for which OpenBLAS to keep). `info` prints what torch was built with, which BLAS
it loaded, its threads and its sgemm rate. Every run stops if torch's BLAS is not OpenBLAS.
"""
import argparse
import ctypes
import gzip
import os
import sys
import time

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("pytorch_bench: no torch for %s; install it with\n"
             "    apt-get install python3-torch libopenblas0-pthread" % sys.executable)

BATCH = 125
LR = 1e-3
CONFIG_KEYS = ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION")
EPOCHS = 2  # the 1st warms up; the 2nd is timed, as in bench_dense and bench_conv


def open_maybe_gz(path):
    """The file, or its .gz sibling (ANAMO_DATA keeps the distributed .gz files)."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
    sys.exit("pytorch_bench: %s(.gz): not found; set ANAMO_DATA to the folder holding "
             "mnist/ and cifar10/" % path)


def read_mnist(root, limit):
    """MNIST training images as (N, 784) float32 in [0, 1], as anamo reads them (k/255)."""
    with open_maybe_gz(os.path.join(root, "mnist", "train-images-idx3-ubyte")) as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        sys.exit("pytorch_bench: MNIST images: magic %d, expected 2051" % magic)
    x = np.frombuffer(raw[16:], dtype=np.uint8, count=int(n * rows * cols))
    x = x.reshape(int(n), int(rows * cols))[:limit]
    return x.astype(np.float32) / np.float32(255.0)


def read_cifar(root, limit):
    """CIFAR-10 training images as (N, 3, 32, 32) float32 in [0, 1] (records: label, R, G, B)."""
    parts = []
    for i in range(1, 6):
        name = os.path.join(root, "cifar10", "cifar-10-batches-bin", "data_batch_%d.bin" % i)
        with open_maybe_gz(name) as f:
            rec = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 3073)
        parts.append(rec[:, 1:])
    x = np.concatenate(parts)[:limit]
    return x.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0)


def dense_model():
    """bench_dense: encoder 784→128→64, decoder 64→128→784; ReLU, ReLU, ReLU, sigmoid."""
    return nn.Sequential(
        nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU()),
        nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid()))


def conv_model():
    """bench_conv, experiments/cifar-nam-vs-joint.ini: 3×32×32 → 48×4×4 → 3×32×32."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 12, 4, 2, 1), nn.ReLU(), nn.Conv2d(12, 24, 4, 2, 1), nn.ReLU(),
                      nn.Conv2d(24, 48, 4, 2, 1), nn.ReLU()),
        nn.Sequential(nn.ConvTranspose2d(48, 24, 4, 2, 1), nn.ReLU(),
                      nn.ConvTranspose2d(24, 12, 4, 2, 1), nn.ReLU(),
                      nn.ConvTranspose2d(12, 3, 4, 2, 1), nn.Sigmoid()))


def loaded_blas():
    """The real paths of the BLAS libraries this process has mapped."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path) or "lapack" in os.path.basename(path):
                found.add(os.path.realpath(path))
    return sorted(found)


def openblas_config():
    """openblas_get_config() of the loaded OpenBLAS, or None."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        return lib.openblas_get_config().decode()
    except (OSError, AttributeError):
        return None


def check_blas(info):
    """Stops unless the sgemm torch calls (BLAS_INFO=generic: libblas.so.3's) is OpenBLAS."""
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # maps the BLAS if it is loaded lazily
    paths = loaded_blas()
    # libblas.so.3 from /usr/lib/…/blas/ is the reference BLAS; from …/openblas-*/ OpenBLAS
    reference = [p for p in paths if os.path.basename(p).startswith("libblas") and
                 "openblas" not in p]
    openblas = [p for p in paths if "openblas" in p]
    if info:
        for line in torch.__config__.show().splitlines():
            line = line.strip(" -")
            if line.startswith("Build settings:"):
                for item in line[len("Build settings:"):].split(","):
                    if item.split("=")[0].strip() in CONFIG_KEYS:
                        print("torch_config: %s" % item.strip())
            elif any(k in line for k in ("MKL", "OpenMP", "LAPACK", "CPU capability")):
                print("torch_config: %s" % line)
        print("torch_version: %s" % torch.__version__)
        print("torch_blas_loaded: %s" % " ".join(paths))
        print("torch_openblas: %s" % openblas_config())
    if reference or not openblas:
        sys.exit("pytorch_bench: torch's BLAS is not OpenBLAS (%s): select it with\n"
                 "    update-alternatives --config libblas.so.3-x86_64-linux-gnu"
                 % (" ".join(paths) or "none loaded"))


def sgemm_rate():
    """GFLOP/s of torch.mm on a 512×512 product: a reference BLAS would give about 1."""
    a, b = torch.rand(512, 512), torch.rand(512, 512)
    torch.mm(a, b)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.2:
        torch.mm(a, b)
        calls += 1
    return 2 * 512 ** 3 * calls / (time.perf_counter() - t0) * 1e-9


def train(model, x, epochs):
    """Seconds of each epoch of joint Adam on MSE (a shuffled pass, the last batch partial)."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(0)
    seconds, n = [], x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            xb = x[perm[i:i + BATCH]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), xb)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
    return seconds, float(loss)


def print_info():
    print("torch_threads: %d" % torch.get_num_threads())
    print("torch_mkldnn: %s" % ("on" if torch.backends.mkldnn.enabled else "off"))
    for var in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        print("torch_env_%s: %s" % (var, os.environ.get(var, "(not set)")))
    print("torch_sgemm_512: %.1f GFLOP/s" % sgemm_rate())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=("dense", "conv", "info"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=None, help="first N training images")
    ap.add_argument("--mkldnn", choices=("on", "off"), default="on",
                    help="off: convolutions by PyTorch's own im2col + BLAS, as anamo's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = args.mkldnn == "on"
    torch.manual_seed(0)
    check_blas(args.model == "info")
    if args.model == "info":
        print_info()
        return
    root = os.environ.get("ANAMO_DATA", "data")
    x = read_mnist(root, args.samples) if args.model == "dense" else read_cifar(root, args.samples)
    x = torch.from_numpy(x)
    model = dense_model() if args.model == "dense" else conv_model()
    seconds, loss = train(model, x, EPOCHS)
    print("torch_samples_per_epoch: %d" % x.shape[0])
    print("torch_joint: %.0f samples/s" % (x.shape[0] / seconds[-1]))
    print("torch_loss: %.6f" % loss)


if __name__ == "__main__":
    main()
