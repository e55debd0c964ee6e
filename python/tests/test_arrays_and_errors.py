"""Arrays in and out of the binding, and every kind of bad input: each raises anamo.Error
whose message names the problem; none crashes."""
import os

import numpy as np
import pytest

import anamo
from conftest import CONFIG, SHORT, bits_equal


@pytest.fixture(scope="module")
def x(mnist_test):
    return mnist_test[1][:64].reshape(64, 784)


def test_version():
    assert anamo.version == anamo.__version__
    assert anamo.version.count(".") == 2


def test_machine_names_the_wait():
    """omp_wait reports the user's GOMP_SPINCOUNT, and libgomp's default without one: the
    module, unlike the command, does not set its own (a fresh interpreter for each)."""
    import subprocess
    import sys
    code = "import anamo; print(anamo.machine()['omp_wait'])"
    for spin, want in (("4321", "GOMP_SPINCOUNT=4321 (yours)"), (None, "libgomp's default")):
        env = {k: v for k, v in os.environ.items()
               if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "ANAMO_SPIN_CHOSEN")}
        if spin:
            env["GOMP_SPINCOUNT"] = spin
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout
        assert out.startswith(want), out


def test_float32_rows_are_read_in_place(x):
    info = anamo._anamo._rows_info(x)
    assert info["address"] == x.ctypes.data and not info["copied"]
    assert (info["n"], info["dim"], info["dtype"]) == (64, 784, "float32")


def test_other_arrays_are_converted(model, x):
    codes = model.encode(x)
    assert codes.dtype == np.float32 and codes.shape == (64, model.code_dim)
    assert anamo._anamo._rows_info(x.astype(np.float64))["copied"]
    assert bits_equal(model.encode(x.astype(np.float64)), codes)       # exact: f32 → f64 → f32
    assert bits_equal(model.encode(np.asfortranarray(x)), codes)       # not C order
    assert bits_equal(model.encode(x.astype(">f4")), codes)            # other byte order
    wide = np.zeros((64, 2 * 784), np.float32)
    wide[:, ::2] = x
    assert bits_equal(model.encode(wide[:, ::2]), codes)               # strided view
    assert bits_equal(model.encode(x.tolist()), codes)                 # a list


def test_misaligned_float32_is_copied_to_aligned(model, x):
    buf = b"\0" + x.tobytes()
    mis = np.frombuffer(buf, dtype=np.float32, offset=1).reshape(64, 784)
    assert not mis.flags.aligned
    info = anamo._anamo._rows_info(mis)
    assert info["copied"] and info["address"] % 4 == 0
    assert bits_equal(model.encode(mis), model.encode(x))
    assert bits_equal(model.reconstruct(mis), model.reconstruct(x))


def test_uint8_is_scaled_as_byte_datasets_are(model, mnist_test):
    raw, scaled = mnist_test
    assert bits_equal(model.encode(raw[:100]), model.encode(raw[:100].astype(np.float32) / 255))
    assert bits_equal(model.encode(raw[:100]), model.encode(scaled[:100]))


def test_empty_batch_gives_empty_rows(model):
    out = model.encode(np.zeros((0, 784), np.float32))
    assert out.shape == (0, model.code_dim)


def test_state_dict_names_shapes_and_normalization(model, py_run):
    sd = model.state_dict()
    assert list(sd) == ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight",
                        "encoder.2.bias", "decoder.0.weight", "decoder.0.bias",
                        "decoder.2.weight", "decoder.2.bias"]
    assert sd["encoder.0.weight"].shape == (128, 784)
    assert sd["decoder.2.weight"].shape == (784, 128)
    assert all(a.dtype == np.float32 for a in sd.values())
    assert model.normalization is None      # the config does not standardize
    assert (model.input_dim, model.code_dim) == (784, 64)
    run_sd = py_run[0].model.state_dict()
    assert all(bits_equal(run_sd[k], sd[k]) for k in sd)
    assert bits_equal(model.tensor("decoder.0.bias"), sd["decoder.0.bias"])


def test_load_state_dict_round_trip(py_run):
    m = anamo.load(py_run[1])
    sd = m.state_dict()
    zeroed = {k: np.zeros_like(v) for k, v in sd.items()}
    m.load_state_dict(zeroed)
    assert not m.state_dict()["encoder.0.weight"].any()
    m.load_state_dict(sd)
    assert all(bits_equal(m.state_dict()[k], v) for k, v in sd.items())


def test_standardized_model_has_normalization(data):
    run = anamo.train(CONFIG, arm="joint", data_root=data,
                      overrides={"train.epochs": 1, "data.train": "mnist:train@500",
                                 "data.test": "mnist:test@100", "data.standardize": True})
    mean, std = run.model.normalization
    assert mean.shape == std.shape == (784,)
    assert "normalize.mean" not in run.model.state_dict()
    assert bits_equal(run.model.tensor("normalize.std"), std)


def error_of(fn, *args, **kwargs):
    with pytest.raises(anamo.Error) as e:
        fn(*args, **kwargs)
    assert str(e.value) == e.value.msg
    return e.value


def test_none_is_rejected(model):
    for fn in (model.encode, model.decode, model.reconstruct, model.evaluate):
        e = error_of(fn, None)
        assert "None" in e.msg and e.code == "invalid argument"
    assert "None" in error_of(anamo.load, None).msg
    assert "None" in error_of(anamo.train, None).msg


def test_wrong_dtype_is_rejected(model):
    e = error_of(model.encode, np.array([["a"] * 784]))
    assert "dtype <U1 is not a real number type" in e.msg
    assert "complex" in error_of(model.encode, np.zeros((2, 784), np.complex64)).msg
    assert "object" in error_of(model.encode, np.array([[object()] * 784])).msg
    assert "dtype object" in error_of(model.encode, {"a": 1}).msg


def test_wrong_shape_is_rejected(model):
    e = error_of(model.encode, np.zeros((3, 785), np.float32))
    assert "785" in e.msg and "784" in e.msg and e.msg.startswith("encode: x")
    e = error_of(model.encode, np.zeros(784, np.float32))
    assert "(784,)" in e.msg and "(n, dim)" in e.msg
    e = error_of(model.decode, np.zeros((3, 65), np.float32))
    assert "65" in e.msg and "code" in e.msg
    e = error_of(model.reconstruct, np.zeros((2, 1, 28, 27), np.uint8))
    assert "756" in e.msg and "784" in e.msg
    e = error_of(model.evaluate, np.zeros((2, 10), np.float32))
    assert "10 values" in e.msg


def test_unknown_tensor_name_is_rejected(model):
    e = error_of(model.tensor, "encoder.9.weight")
    assert "encoder.9.weight" in e.msg
    e = error_of(model.load_state_dict, {"encoder.9.weight": np.zeros(3)}, strict=False)
    assert "encoder.9.weight" in e.msg
    e = error_of(model.load_state_dict, {"encoder.0.bias": np.zeros(3)})
    assert "missing keys" in e.msg
    e = error_of(anamo.load(model._m.source).load_state_dict,
                 {"encoder.0.bias": np.zeros(3)}, strict=False)
    assert "(3,)" in e.msg and "(128,)" in e.msg


def test_bad_files_and_configs_are_rejected(tmp_path, data):
    e = error_of(anamo.load, tmp_path / "nope.safetensors")
    assert "nope.safetensors" in e.msg
    (tmp_path / "junk.safetensors").write_bytes(b"\x05junk")
    assert "junk.safetensors" in error_of(anamo.load, tmp_path / "junk.safetensors").msg
    e = error_of(anamo.train, tmp_path / "none.ini")
    assert "none.ini" in e.msg
    e = error_of(anamo.train, CONFIG, overrides={"train.nope": 1}, data_root=data)
    assert "nope" in e.msg and e.code == "configuration error"
    e = error_of(anamo.train, CONFIG, overrides={"train.epochs": "many"}, data_root=data)
    assert "many" in e.msg
    e = error_of(anamo.train, CONFIG, arm="no-such-arm", data_root=data)
    assert "no-such-arm" in e.msg
    e = error_of(anamo.train, CONFIG, overrides={**SHORT, "data.train": "mnist:nope"},
                 data_root=data)
    assert "mnist:nope" in e.msg
    e = error_of(anamo.train, CONFIG, callback=3)
    assert "callback" in e.msg
    e = error_of(anamo.load_dataset, "mnist:train", data_root=tmp_path)
    assert str(tmp_path) in e.msg


def test_divergence_raises(data):
    e = error_of(anamo.train, CONFIG, data_root=data, overrides={
        "data.train": "mnist:train@1000", "data.test": "mnist:test@100", "train.epochs": 2,
        "joint.lr": 1e9, "model.decoder": "linear 128, relu, linear 784"})
    assert e.code == "diverged" and e.status == anamo._anamo.ERR_DIVERGED
    assert "diverged" in e.msg and "epoch 1" in e.msg
