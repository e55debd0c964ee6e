"""anamo: autoencoders trained by Nested Alternating Minimization, from Python.

A binding of the anamo C library (include/anamo.h): the same compiled code as the ``anamo``
command, so that a config trained here gives the command's results bit for bit (same thread
count, same OpenBLAS kernel).

    import anamo
    run = anamo.train("experiments/mnist-nam-vs-joint.ini", arm="joint",
                      overrides={"train.epochs": 1}, out="model.safetensors")
    print(run.metrics["test"]["mse"])
    model = anamo.load("model.safetensors")
    codes = model.encode(x)            # x: (n, 784) or (n, 1, 28, 28), float32 or uint8

Arrays: a C-contiguous, aligned float32 array is read where it lies (no copy); any other array
of real numbers (float64, int, a strided view, a misaligned buffer such as
``np.frombuffer(buf, np.float32, offset=1)``, another byte order) is first copied to an
aligned float32 array. uint8 inputs to encode, reconstruct and evaluate are pixels, scaled by
1/255 as anamo scales byte datasets. Results are new float32 arrays.
"""
import os
import warnings
from collections import OrderedDict

from . import _anamo
from ._anamo import Error

__all__ = ["Error", "Model", "Run", "train", "load", "load_dataset", "machine", "version",
           "__version__"]

version = _anamo.version
__version__ = _anamo.version


def _fail(msg, status=_anamo.ERR_ARG):
    """Raises anamo.Error as the library would."""
    e = Error(msg)
    e.msg = msg
    e.status = status
    e.code = {_anamo.ERR_ARG: "invalid argument", _anamo.ERR_IO: "I/O error",
              _anamo.ERR_CONFIG: "configuration error"}.get(status, "invalid argument")
    raise e


def _path(p, what):
    if p is None:
        _fail(f"{what}: expected a path, got None")
    try:
        return os.fspath(p)
    except TypeError:
        _fail(f"{what}: expected a path (str or os.PathLike), got {type(p).__name__}")


def _data_root(data_root):
    """Where dataset specs are looked up: data_root, else $ANAMO_DATA, else "data"."""
    if data_root is not None:
        return _path(data_root, "data_root")
    return os.environ.get("ANAMO_DATA") or "data"


def _config_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(_config_value(x) for x in v)
    return str(v)


def _assignments(overrides):
    """{"section.key": value} (or a list of "section.key=value") as anamo_config_set's text."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        out = []
        for k, v in overrides.items():
            if not isinstance(k, str) or "." not in k:
                _fail(f"overrides: key {k!r} is not 'section.key'")
            if v is None:
                _fail(f"overrides: {k} is None")
            out.append(f"{k}={_config_value(v)}")
        return out
    if isinstance(overrides, str):
        _fail("overrides: expected a dict {'section.key': value}, got a str")
    return [str(a) for a in overrides]


def _as_array(v):
    if hasattr(v, "detach"):  # a torch.Tensor
        v = v.detach().cpu().numpy()
    return v


class Model:
    """An autoencoder: a loaded checkpoint (anamo.load) or a run's model (Run.model).

    encode(x) -> codes (n, code_dim); decode(codes) -> (n, input_dim); reconstruct(x) ->
    D(E(x)) of x's shape; all float32. x: (n, dim) or (n, c, h, w) of any real dtype (see the
    module's doc for copies and uint8). One call runs at a time on a model; the GIL is released
    while it runs.
    """

    def __init__(self, handle):
        self._m = handle

    def __repr__(self):
        return (f"<anamo.Model {self.input_dim} -> {self.code_dim} -> {self.input_dim} "
                f"from {self._m.source}>")

    @property
    def input_dim(self):
        return self._m.input_dim

    @property
    def code_dim(self):
        return self._m.code_dim

    @property
    def eval_spec(self):
        """The objective evaluate() measures: loss, lambda, penalty, jacobian_samples."""
        return self._m.eval_spec

    def encode(self, x):
        return self._m.encode(x)

    def decode(self, codes):
        return self._m.decode(codes)

    def reconstruct(self, x):
        return self._m.reconstruct(x)

    def evaluate(self, data, data_root=None):
        """The anamo_metrics of the model on an array, or on a dataset spec ("mnist:test",
        "path.npy", ...; looked up under data_root, else $ANAMO_DATA, else "data")."""
        if isinstance(data, (str, os.PathLike)):
            return self._m.evaluate(os.fspath(data), _data_root(data_root))
        return self._m.evaluate(data)

    def layers(self):
        """One dict per layer, encoder then decoder: name ("encoder.0"), item ("linear 128"),
        kind, shapes and parameter count."""
        return self._m.layers()

    def state_dict(self):
        """The parameters, batch norm buffers and counts by PyTorch's state_dict names and
        shapes, as copies (float32; a count as a 0-d int64 array). The input normalization is
        not among them: see normalization."""
        return OrderedDict((name, a) for name, role, a in self._m.tensors()
                           if role != "normalize")

    @property
    def normalization(self):
        """(mean, std) of the input standardization (data.standardize), or None."""
        t = {name: a for name, role, a in self._m.tensors() if role == "normalize"}
        return (t["normalize.mean"], t["normalize.std"]) if t else None

    def tensor(self, name):
        """A copy of the tensor called name (state_dict names, and normalize.mean/std)."""
        return self._m.tensor(name)

    def load_state_dict(self, state, strict=True):
        """Copies the arrays (or torch tensors) of state into the model; with strict, the keys
        must be exactly the state_dict's."""
        if state is None:
            _fail("load_state_dict: state is None")
        if strict:
            want = set(self.state_dict())
            missing = sorted(want - set(state))
            unexpected = sorted(set(state) - want)
            if missing or unexpected:
                _fail(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, value in state.items():
            self._m.set_tensor(name, _as_array(value))


class Run:
    """A trained run (anamo.train): metrics, model, history, save(path)."""

    def __init__(self, handle):
        self._r = handle
        self._model = None

    def __repr__(self):
        return f"<anamo.Run {self.scheme}, {self.metrics.get('epochs')} epochs>"

    @property
    def metrics(self):
        """{"train": {...}, "test": {...}, "validation": {...} (if any), "epochs": n,
        "seconds": s}: anamo_metrics by their C names."""
        return self._r.metrics

    @property
    def history(self):
        """One dict per epoch (the anamo_epoch_row fields)."""
        return self._r.history

    @property
    def model(self):
        if self._model is None:
            self._model = Model(self._r.model)
        return self._model

    @property
    def stopped(self):
        """Whether the callback stopped the run."""
        return self._r.stopped

    @property
    def config_text(self):
        """The resolved config, every key, as the checkpoint stores it."""
        return self._r.config_text

    @property
    def encoder(self):
        return self._r.encoder

    @property
    def decoder(self):
        return self._r.decoder

    @property
    def scheme(self):
        return self._r.scheme

    def config_get(self, section, key):
        """The effective value of section.key (str), or None."""
        return self._r.config_get(section, key)

    def save(self, path):
        """Writes the run's checkpoint (weights, optimizer states, progress and config), as the
        anamo command writes model.safetensors."""
        self._r.save(_path(path, "save"))


def train(config, overrides=None, arm=None, quick=False, out=None, callback=None,
          data_root=None):
    """Trains the run an INI config describes, as ``anamo train`` does, and returns a Run.

    overrides: {"section.key": value} applied after the arm's ([arm NAME]) and [quick]'s.
    callback(epoch_dict) is called after every epoch (in this thread, with the GIL); a true
    return value stops the run, which then ends as a finished one (final metrics; Run.stopped).
    An exception in it, or Ctrl-C, stops training and propagates. out: a checkpoint path.
    data_root: where dataset specs are looked up (default $ANAMO_DATA, else "data").
    """
    path = _path(config, "train: config")
    if callback is not None and not callable(callback):
        _fail(f"train: callback {type(callback).__name__} is not callable")
    root = None if data_root is None else _path(data_root, "data_root")
    run = Run(_anamo.train(path, _assignments(overrides), arm, bool(quick), root, callback))
    if out is not None:
        run.save(out)
    return run


def load(path, max_batch=256):
    """The model a checkpoint holds (anamo_checkpoint_load_model), for encode, decode,
    reconstruct and evaluate; max_batch: rows per forward pass (the anamo command's 256)."""
    return Model(_anamo.load(_path(path, "load"), max_batch))


def load_dataset(spec, data_root=None, raw=False):
    """(x, labels) of a dataset spec (anamo_dataset_open: "mnist:test", "cifar10:train@100",
    "path.npy", ...): x of shape (n, c, h, w), float32 in the scale training sees (bytes/255),
    or with raw as stored (uint8 or float32); labels uint8 or None."""
    return _anamo.open_dataset(_path(spec, "load_dataset: spec"), _data_root(data_root), raw)


def machine():
    """The CPU, its features, the BLAS and the kernel the products run on, and oneDNN."""
    return _anamo.machine()


def _check_blas():
    blas = _anamo.machine()["blas"]
    if "OpenBLAS" in blas and "USE_OPENMP" not in blas:
        warnings.warn(f"anamo runs on an OpenBLAS built without OpenMP ({blas}): another "
                      "module (torch?) loaded it first; import anamo first to run on the "
                      "OpenMP build the anamo command uses", RuntimeWarning, stacklevel=3)


_check_blas()
