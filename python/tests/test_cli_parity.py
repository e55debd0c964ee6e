"""Python and the anamo command run the same compiled library: the same config trained both
ways gives the same model and metrics, and the command's encode and reconstruct outputs equal
the binding's bit for bit."""
import json
import math

import numpy as np

import anamo
from conftest import CONFIG, SHORT, bits_equal, run_cli
from pngread import grid_tiles, read_png, to_byte

# The bound the task sets. The same code in the same order gives the same double; the command
# writes it through cJSON, whose 15-digit form is taken whenever it reads back within one
# DBL_EPSILON (relative) of the value, so the JSON may be off by an ulp: JSON_ULPS below.
MSE_TOLERANCE = 1e-7
JSON_ULPS = 1e-15  # relative: a few DBL_EPSILON (2.2e-16)


def json_equal(ours, theirs):
    return math.isclose(ours, theirs, rel_tol=JSON_ULPS, abs_tol=0)


def test_joint_arm_test_mse_matches_the_command(py_run, cli_run):
    run, _ = py_run
    _, summary = cli_run
    py_mse, cli_mse = run.metrics["test"]["mse"], summary["test"]["mse"]
    print(f"test mse: Python {py_mse!r}, anamo train {cli_mse!r}")
    assert abs(py_mse - cli_mse) <= MSE_TOLERANCE
    assert json_equal(py_mse, cli_mse)  # what is actually expected: the same double
    assert abs(run.metrics["train"]["mse"] - summary["train"]["mse"]) <= MSE_TOLERANCE
    assert run.metrics["epochs"] == summary["epochs"] == 1
    assert run.metrics["test"]["n"] == summary["test"]["samples"] == 10000
    assert run.metrics["train"]["n"] == summary["train"]["samples"] == 5000


def test_trained_weights_equal_the_commands(py_run, cli_run):
    """Both runs end with the same weights, bit for bit."""
    out, _ = cli_run
    ours = anamo.load(py_run[1]).state_dict()
    theirs = anamo.load(out / "model.safetensors").state_dict()
    assert list(ours) == list(theirs)
    for name in ours:
        assert bits_equal(ours[name], theirs[name]), name


def test_encode_equals_anamo_encode(model, py_run, data, mnist_test, workdir):
    raw, scaled = mnist_test
    codes_npy = workdir / "codes.npy"
    run_cli("encode", py_run[1], "--data", "mnist:test", "-o", codes_npy)
    cli_codes = np.load(codes_npy)
    assert cli_codes.dtype == np.float32 and cli_codes.shape == (10000, model.code_dim)
    assert bits_equal(model.encode(raw), cli_codes)      # bytes, scaled by the library
    assert bits_equal(model.encode(scaled), cli_codes)   # floats, zero-copy
    assert bits_equal(model.encode(scaled.reshape(10000, 784)), cli_codes)


def test_reconstruct_equals_anamo_reconstruct(model, py_run, mnist_test, workdir):
    """`anamo reconstruct` draws a PNG grid (originals above reconstructions, values turned to
    bytes by src/program/png.c's to_byte): its pixels equal to_byte of ours, every one."""
    raw, scaled = mnist_test
    count, cols = 32, 8
    png = workdir / "grid.png"
    run_cli("reconstruct", py_run[1], "--data", "mnist:test", "-o", png,
            "--count", count, "--cols", cols)
    img = read_png(png)
    originals = grid_tiles(img, count, cols, 28, 28, nbands=2, band=0)
    recons = grid_tiles(img, count, cols, 28, 28, nbands=2, band=1)
    assert bits_equal(originals, raw[:count, 0])
    ours = model.reconstruct(raw[:count])
    assert ours.shape == (count, 1, 28, 28) and ours.dtype == np.float32
    assert bits_equal(recons, to_byte(ours[:, 0]))
    assert bits_equal(model.reconstruct(scaled[:count]), ours)


def test_decode_of_codes_is_reconstruct(model, mnist_test):
    _, scaled = mnist_test
    x = scaled[:500].reshape(500, -1)
    assert bits_equal(model.decode(model.encode(x)), model.reconstruct(x))


def test_evaluate_matches_the_run(model, py_run, cli, data, mnist_test):
    """A loaded checkpoint evaluates the test set as `anamo eval` does, and as the run's final
    evaluation did up to the order of its sums: the run's model passes batches of its training
    size, a loaded one of 256 rows (the command's), so the float sums are grouped differently
    (~1e-11 relative here; 1e-9 allows for that, not for a different model)."""
    run, ckpt = py_run
    raw, scaled = mnist_test
    by_spec = model.evaluate("mnist:test", data_root=data)
    assert abs(by_spec["mse"] - run.metrics["test"]["mse"]) <= 1e-9 * by_spec["mse"]
    cli_eval = json.loads(run_cli("eval", ckpt, "--data", "mnist:test").stdout)
    for key in ("mse", "loss", "recon_loss", "bias", "code_l1", "code_l1_decoder",
                "code_l1_jacobian", "explained_variance", "l0", "dead_units"):
        assert json_equal(by_spec[key], cli_eval[key]), key
    assert by_spec["n"] == cli_eval["samples"]
    assert model.evaluate(raw)["mse"] == by_spec["mse"]
    assert model.evaluate(scaled)["mse"] == by_spec["mse"]
    assert model.eval_spec["loss"] == "mse"
