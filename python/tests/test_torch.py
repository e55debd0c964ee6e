"""A model trained from Python loads into torch.nn, strictly, and gives the same test MSE.

The nn.Sequential is built from the run's layer lists (model.encoder and model.decoder of the
config), nested as Sequential(encoder=..., decoder=...) so that its state_dict names are
anamo's ("encoder.0.weight"). torch computes in float32 with its own kernels: the per-element
differences are float rounding, ~1e-7 relative, and the mean over 7.84M squared errors
(taken in float64) agrees to ~1e-6 relative."""
from collections import OrderedDict

import numpy as np
import pytest

RELATIVE_TOLERANCE = 1e-6


def layers(spec, width, nn):
    """"linear 128, relu, ..." as torch modules; width: the input features."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        words = item.split()
        if words[0] == "linear":
            out.append(nn.Linear(width, int(words[1])))
            width = int(words[1])
        elif words[0] == "batchnorm":
            out.append(nn.BatchNorm1d(width, eps=float(words[1]) if len(words) > 1 else 1e-5))
        else:
            out.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
                        "identity": nn.Identity}[words[0]]())
    return nn.Sequential(*out), width


def import_torch():
    try:
        import torch
        from torch import nn
    except ImportError:
        pytest.skip("python3-torch is absent")
    return torch, nn


def sequential(run, nn):
    encoder, code = layers(run.encoder, 784, nn)
    decoder, width = layers(run.decoder, code, nn)
    assert width == 784
    return nn.Sequential(OrderedDict(encoder=encoder, decoder=decoder))


def test_state_dict_loads_into_torch_with_the_same_mse(py_run, mnist_test):
    torch, nn = import_torch()
    run, _ = py_run
    net = sequential(run, nn)
    state = {k: torch.from_numpy(v) for k, v in run.model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    _, scaled = mnist_test
    x = torch.from_numpy(scaled.reshape(len(scaled), -1))
    with torch.no_grad():
        torch_mse = ((net(x) - x).double() ** 2).mean().item()
    anamo_mse = run.metrics["test"]["mse"]
    print(f"test mse: anamo {anamo_mse!r}, torch {torch_mse!r}")
    assert abs(torch_mse - anamo_mse) <= RELATIVE_TOLERANCE * anamo_mse
    # and the codes agree to float rounding
    with torch.no_grad():
        codes = net.encoder(x[:256]).numpy()
    np.testing.assert_allclose(codes, run.model.encode(scaled[:256]), rtol=1e-4, atol=1e-5)


def test_batch_norm_buffers_and_count_load_into_torch(data, mnist_test):
    """Batch norm's running statistics are buffers and num_batches_tracked a 0-d int64, as in
    torch's state_dict; in eval mode torch's outputs are anamo's to float rounding."""
    torch, nn = import_torch()
    import anamo
    from conftest import CONFIG
    run = anamo.train(CONFIG, data_root=data, overrides={
        "data.train": "mnist:train@1000", "data.test": "mnist:test@200", "train.epochs": 1,
        "model.encoder": "linear 32, batchnorm, relu, linear 8"})
    sd = run.model.state_dict()
    count = sd["encoder.1.num_batches_tracked"]
    assert count.shape == () and count.dtype == np.int64 and int(count) == 8
    net = sequential(run, nn)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()},
                        strict=True)
    net.eval()
    _, scaled = mnist_test
    x = scaled[:200].reshape(200, -1)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, run.model.reconstruct(x), rtol=1e-4, atol=1e-5)
