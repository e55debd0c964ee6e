"""What the tests share: the checkout, the anamo command, the data, and one short training run
made both ways (from Python and by the command) on the main job's config.

Bit-for-bit comparisons need the command and this process to run the same code the same way:
the same thread count (OMP_NUM_THREADS, default 1 here, passed on to the command) and the same
OpenBLAS kernel (the command is given OPENBLAS_CORETYPE = the kernel this process's OpenBLAS
chose, so that it does not restart itself on another one).
"""
import json
import os
import subprocess
from pathlib import Path

# libgomp reads it once, when anamo's extension loads it: before `import anamo`
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import anamo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "mnist-nam-vs-joint.ini"
# the main job's short form, applied identically to both sides
SHORT = {"train.epochs": 1, "data.train": "mnist:train@5000"}


def _abs(p):
    return Path(p).expanduser().resolve()


def cli_path():
    return _abs(os.environ.get("ANAMO_BIN") or ROOT / "build" / "anamo")


def data_root():
    return _abs(os.environ.get("ANAMO_DATA") or ROOT.parent / "shared" / "data")


def cli_env():
    env = dict(os.environ)
    env["ANAMO_DATA"] = str(data_root())
    env["OPENBLAS_CORETYPE"] = anamo.machine()["kernel"]
    return env


def run_cli(*args):
    """Runs the anamo command from the checkout root; its output on failure."""
    p = subprocess.run([str(cli_path()), *map(str, args)], cwd=ROOT, env=cli_env(),
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"anamo {' '.join(map(str, args))} exited {p.returncode}:\n"
                    f"{p.stdout}\n{p.stderr}")
    return p


def sets(overrides):
    out = []
    for k, v in overrides.items():
        out += ["--set", f"{k}={v}"]
    return out


@pytest.fixture(scope="session")
def cli():
    path = cli_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"the anamo command is not at {path}: build it (make at the checkout "
                    "root) or point $ANAMO_BIN at one")
    return path


@pytest.fixture(scope="session")
def data():
    root = data_root()
    if not (root / "mnist").is_dir():
        pytest.fail(f"no MNIST under {root}/mnist: set $ANAMO_DATA to the folder holding "
                    "mnist/ (scripts/get-mnist.sh fetches it)")
    return root


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("anamo")


@pytest.fixture(scope="session")
def py_run(data, workdir):
    """The joint arm, short form, trained from Python; its checkpoint saved."""
    ckpt = workdir / "py-joint.safetensors"
    run = anamo.train(CONFIG, arm="joint", overrides=SHORT, out=ckpt, data_root=data)
    return run, ckpt


@pytest.fixture(scope="session")
def cli_run(cli, data, workdir):
    """The same run by `anamo train`: its run directory and summary.json."""
    out = workdir / "cli-joint"
    run_cli("train", CONFIG, "--set", "train.scheme=joint", *sets(SHORT), "-o", out)
    with open(out / "summary.json", encoding="utf-8") as f:
        return out, json.load(f)


@pytest.fixture(scope="session")
def mnist_test(data):
    """MNIST's test set as stored (uint8, (n, 1, 28, 28)) and as training sees it."""
    raw, labels = anamo.load_dataset("mnist:test", data_root=data, raw=True)
    scaled, _ = anamo.load_dataset("mnist:test", data_root=data)
    return raw, scaled


@pytest.fixture(scope="session")
def model(py_run):
    return anamo.load(py_run[1])


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
