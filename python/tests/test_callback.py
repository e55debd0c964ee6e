"""The per-epoch callback: it sees every epoch, can stop the run, and its exceptions (and
Ctrl-C) stop training and propagate; training releases the GIL."""
import os
import signal
import threading
import time

import pytest

import anamo
from conftest import CONFIG

TINY = {"data.train": "mnist:train@1000", "data.test": "mnist:test@500"}


def test_callback_sees_every_epoch(data):
    seen = []
    run = anamo.train(CONFIG, arm="nam", overrides={**TINY, "train.epochs": 4},
                      callback=seen.append, data_root=data)
    assert [e["epoch"] for e in seen] == [1, 2, 3, 4]
    assert run.history == seen and not run.stopped
    assert [e["phase"] for e in seen] == ["decoder", "encoder", "decoder", "encoder"]
    assert all(e["test"]["n"] == 500 for e in seen)
    assert seen[0]["decoder_steps"] > 0 and seen[0]["encoder_steps"] == 0
    assert seen[-1]["test"]["mse"] == run.metrics["test"]["mse"]
    assert run.metrics["epochs"] == 4 and run.scheme == "nam"


def test_callback_returning_true_stops_the_run(data):
    seen = []

    def stop_after_two(epoch):
        seen.append(epoch["epoch"])
        return epoch["epoch"] == 2

    run = anamo.train(CONFIG, arm="joint", overrides={**TINY, "train.epochs": 5},
                      callback=stop_after_two, data_root=data)
    assert seen == [1, 2] and run.stopped
    assert run.metrics["epochs"] == 2 and len(run.history) == 2
    assert run.metrics["test"]["mse"] == run.history[-1]["test"]["mse"]


def test_callback_exception_propagates(data):
    def boom(epoch):
        raise ValueError(f"boom at {epoch['epoch']}")

    with pytest.raises(ValueError, match="boom at 1"):
        anamo.train(CONFIG, overrides={**TINY, "train.epochs": 3}, callback=boom,
                    data_root=data)


def test_ctrl_c_stops_training(data):
    """SIGINT in the middle of an epoch: the step hook sees it within ~0.1 s of training."""
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            anamo.train(CONFIG, overrides={"data.train": "mnist:train", "train.epochs": 50,
                                           "train.eval_every_epoch": False}, data_root=data)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 30


def test_training_releases_the_gil(data):
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        anamo.train(CONFIG, overrides={"data.train": "mnist:train@5000", "train.epochs": 2,
                                       "data.test": "mnist:test@100"}, data_root=data)
    finally:
        done.set()
        t.join()
    assert len(ticks) > 20


def test_quick_arm_and_validation(data):
    """quick applies [quick] (train.epochs = 2), the arm its overrides, overrides come last;
    a validation set shows in every epoch and in the metrics."""
    run = anamo.train(CONFIG, arm="nam-unitnorm", quick=True, data_root=data,
                      overrides={**TINY, "data.validation": 0.2})
    assert run.metrics["epochs"] == 2 and len(run.history) == 2
    assert run.config_get("train", "decoder_norm") == "sphere"
    assert run.config_get("train", "scheme") == "nam" == run.scheme
    assert run.config_get("data", "train") == "mnist:train@1000"
    assert run.metrics["validation"]["n"] == 200 and run.metrics["train"]["n"] == 800
    assert all(e["validation"]["n"] == 200 for e in run.history)
    assert "decoder_norm = sphere" in run.config_text


def test_one_model_from_many_threads(model, mnist_test):
    """Calls on one model from several threads take turns (its buffers are shared)."""
    _, scaled = mnist_test
    x = scaled[:2000]
    want = model.encode(x)
    results = [None] * 4

    def work(i):
        results[i] = [model.encode(x) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all((r == want).all() for rs in results for r in rs)
