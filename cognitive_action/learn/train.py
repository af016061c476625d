"""Training a declared network on data: the compiled limit law, plain SGD, checkpoints.

:func:`train` runs a learning law of a network problem over a data set for epochs.
Mode ``"limit"`` is the backprop limit (eq. 15-17) of the derived system, compiled once
(:func:`~cognitive_action.learn.kernel.compile_limit_law`) and applied per sample as
``W ← W + η γ Ẇ`` (``η = τ/γ``, see :meth:`LimitKernel.step`). Modes ``"dynamics"``
(the full derived dynamics) and ``"diffusion"`` (eq. 18-20) plug in through
:data:`RUNNERS` (:func:`register_runner`); the built-in ones are registered by
:mod:`cognitive_action.learn.runners`, imported on first use.

:func:`sgd_baseline` is plain NumPy SGD on the same net, same initial weights and same
order of samples, written by hand from the textbook formulas (independent of the
derivation) for comparison: per-layer activations, biases, squared or softmax
cross-entropy loss.

With ``out=``, a checkpoint is written after every epoch (``checkpoint.npz``, via a
temporary file and :func:`os.replace`); calling again with the same arguments continues
from the last saved epoch, with results identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cognitive_action.declare.activations import BUILTIN_ACTIVATIONS, Activation
from cognitive_action.declare.initializers import DEFAULT_INITIALIZER, initialize
from cognitive_action.declare.network import Network, softmax_cross_entropy, squared_error
from cognitive_action.declare.problem import Problem
from cognitive_action.errors import (
    CognitiveActionError,
    DataError,
    DeclarationError,
    ShapeError,
)
from cognitive_action.learn.kernel import LimitKernel, compile_limit_law

__all__ = ["Dataset", "as_dataset", "TrainingHistory", "train", "sgd_baseline",
           "CheckpointError", "ModeNotAvailableError", "RUNNERS", "register_runner",
           "initial_weights", "learning_curve_figure", "plot_learning_curves", "CHECKPOINT",
           "load_builtin_runners"]

CHECKPOINT = "checkpoint.npz"


class CheckpointError(CognitiveActionError, ValueError):
    """A checkpoint that does not belong to this training run."""


class ModeNotAvailableError(CognitiveActionError, NotImplementedError):
    """A training mode with no runner registered."""


class ArrayStream(Protocol):
    """Anything with sample arrays ``X`` and ``Y`` (e.g. a data ``Stream``)."""

    X: np.ndarray
    Y: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets as arrays, validated against a network.

    Attributes
    ----------
    X
        ``(samples, inputs)``.
    Y
        ``(samples, outputs)`` targets.
    labels
        Class labels ``(samples,)`` for classification (one-hot targets), or ``None``.
    tau
        The presentation time of a sample, when the data came as a stream that carries
        one (the time modes check it against theirs), else ``None``.
    """

    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray | None = None
    tau: float | None = None


def _first_bad(a: np.ndarray) -> str:
    """Where the non-finite entries of a 2-D array are: the first one and how many."""
    bad = np.argwhere(~np.isfinite(a))
    i, j = bad[0]
    return f" ({len(bad)} non-finite; the first at [{i}, {j}]: {a[i, j]})"


def as_dataset(data: Any, net: Network, where: str = "data") -> Dataset:
    """Adapt ``(X, Y)``, a :class:`Dataset`, or an object with ``X``/``Y`` arrays.

    ``Y`` may be ``(samples, outputs)`` targets or integer labels ``(samples,)``, which
    become one-hot targets (and enable accuracy). A data stream
    (:class:`~cognitive_action.data.Stream`) gives its ``X``, ``Y``, class ``labels``
    (accuracy) and ``tau``; its order is not used (training draws its own seeded
    permutation per epoch), and an interpolated stream is refused (training presents
    samples piecewise-constant).

    Raises
    ------
    ShapeError
        Wrong shapes, non-finite values, labels out of range, naming ``where``.
    DataError
        An interpolated stream (field ``<where>.interpolate``).
    """
    if isinstance(data, Dataset):
        return data
    stream_labels, tau = None, None
    if isinstance(data, tuple) and len(data) == 2:
        X, Y = data
    elif hasattr(data, "X") and hasattr(data, "Y"):
        if getattr(data, "interpolate", False):
            raise DataError("training presents every sample piecewise-constant; this "
                            "stream is interpolated", fix="build the stream with "
                            "interpolate=False", field=f"{where}.interpolate")
        X, Y = data.X, data.Y
        stream_labels = getattr(data, "labels", None)
        tau = getattr(data, "tau", None)
    else:
        raise ShapeError(f"{where}: expected (X, Y) arrays or an object with X and Y",
                         fix="pass a tuple (X, Y) with X of shape (samples, inputs)")
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y)
    # data columns: the inputs clamped to signals (the bias unit is clamped to 1)
    n_in, n_out = len(net.input_signals()), len(net.outputs)
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ShapeError(f"{where}.X has shape {X.shape}, the net has {n_in} data inputs",
                         fix=f"give X of shape (samples, {n_in})")
    if not np.all(np.isfinite(X)):
        raise ShapeError(f"{where}.X has NaN or infinite values{_first_bad(X)}",
                         fix="clean or impute the inputs")
    labels = None
    if Y.ndim == 1:
        if not np.issubdtype(Y.dtype, np.integer):
            raise ShapeError(f"{where}.Y is one-dimensional but not integer labels",
                             fix=f"give labels 0..{n_out - 1} or targets (samples, {n_out})")
        if Y.size and (Y.min() < 0 or Y.max() >= n_out):
            raise ShapeError(f"{where}.Y has labels out of range 0..{n_out - 1}",
                             fix=f"the net has {n_out} outputs: one per class")
        labels = Y.astype(np.int64)
        Y = np.eye(n_out)[labels]
    else:
        Y = Y.astype(float)
        if Y.shape[1] != n_out:
            raise ShapeError(f"{where}.Y has shape {Y.shape}, the net has {n_out} outputs",
                             fix=f"give Y of shape (samples, {n_out}) or labels")
        if not np.all(np.isfinite(Y)):
            raise ShapeError(f"{where}.Y has NaN or infinite values{_first_bad(Y)}",
                             fix="clean the targets")
    if len(Y) != len(X):
        raise ShapeError(f"{where}: {len(X)} inputs but {len(Y)} targets",
                         fix="give one target per sample")
    if labels is None and stream_labels is not None:
        lab = np.asarray(stream_labels)
        if (lab.shape != (len(X),) or not np.issubdtype(lab.dtype, np.integer)
                or (lab.size and (lab.min() < 0 or lab.max() >= n_out))):
            raise ShapeError(f"{where}.labels: expected {len(X)} integer labels in "
                             f"0..{n_out - 1}", fix="give one class label per sample")
        labels = lab.astype(np.int64)
    return Dataset(X=X, Y=Y, labels=labels, tau=None if tau is None else float(tau))


@dataclass
class TrainingHistory:
    """Per-epoch losses and accuracies (index 0: before training).

    Attributes
    ----------
    mode
        ``"limit"``, ``"sgd"``, ...
    train_loss, test_loss
        The mean over the set of the problem's own loss ``V`` per epoch (``½|x_out -
        y|²``, the softmax cross-entropy, ...; :meth:`LimitKernel.loss_values`).
    train_accuracy, test_accuracy
        Argmax accuracy per epoch (classification only; empty otherwise).
    weights
        Final weights in ``net.weights`` order.
    resumed_from
        The epoch a run continued from (0 for a fresh run).
    """

    mode: str
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    weights: np.ndarray | None = None
    resumed_from: int = 0

    @property
    def epochs(self) -> int:
        """Completed epochs."""
        return max(0, len(self.train_loss) - 1)

    def to_json(self) -> str:
        """The curves as JSON (without weights)."""
        d = asdict(self)
        d.pop("weights")
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> TrainingHistory:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))


# -- runners -------------------------------------------------------------------------------
Runner = Callable[..., TrainingHistory]
#: Training modes other than ``"limit"``, by name: ``runner(problem, train, test, **kw)``.
RUNNERS: dict[str, Runner] = {}
MODES = ("limit", "dynamics", "diffusion")
#: The modules whose import registers the built-in runners (imported on first use).
BUILTIN_RUNNER_MODULES = ("cognitive_action.learn.runners",)


def load_builtin_runners() -> None:
    """Import the modules that register the built-in runners."""
    import importlib

    for module in BUILTIN_RUNNER_MODULES:
        importlib.import_module(module)


def register_runner(mode: str, runner: Runner) -> None:
    """Plug in a training mode (``"dynamics"``, ``"diffusion"``)."""
    RUNNERS[mode] = runner


def initial_weights(net: Network, seed: int, *, init: str = DEFAULT_INITIALIZER,
                    scale: float = 1.0) -> np.ndarray:
    """Initial weights in ``net.weights`` order, from ``seed`` (fan-in scaled)."""
    fan = [net.graph.in_degree(j) for (j, _) in net.w]
    return initialize(fan, init, scale=scale, rng=np.random.default_rng([seed, 0x5EED]))


def _evaluate(kernel: LimitKernel, blocks: list[np.ndarray], data: Dataset
              ) -> tuple[float, float | None]:
    out = kernel.predict(blocks, data.X)
    loss = float(np.mean(kernel.loss_values(out, data.Y)))  # the problem's V, lambdified
    acc = None if data.labels is None else float(np.mean(np.argmax(out, 1) == data.labels))
    return loss, acc


def _record(h: TrainingHistory, kernel: LimitKernel, blocks: list[np.ndarray],
            train: Dataset, test: Dataset | None) -> None:
    loss, acc = _evaluate(kernel, blocks, train)
    h.train_loss.append(loss)
    if acc is not None:
        h.train_accuracy.append(acc)
    if test is not None:
        loss, acc = _evaluate(kernel, blocks, test)
        h.test_loss.append(loss)
        if acc is not None:
            h.test_accuracy.append(acc)


def _fingerprint(problem: Problem, config: Mapping[str, Any], train: Dataset) -> str:
    net = problem.network
    h = hashlib.sha256()
    h.update(json.dumps({"name": problem.name, "arcs": [list(map(str, k)) for k in net.w],
                         "activations": [str(net.activation_of(j).name)
                                         for j in net.order if j not in net.inputs],
                         "loss": str(problem.action.lagrangian)}).encode())
    h.update(json.dumps(dict(config), sort_keys=True).encode())
    h.update(np.ascontiguousarray(train.X).tobytes())
    h.update(np.ascontiguousarray(train.Y).tobytes())
    return h.hexdigest()


def _save(out: Path, weights: np.ndarray, rng: np.random.Generator, epoch: int,
          history: TrainingHistory, fingerprint: str,
          extra: Mapping[str, np.ndarray] | None = None) -> None:
    """Write the checkpoint atomically; ``extra`` arrays (a runner's state, e.g. the
    weight velocities) are stored under their names (read with :func:`_load_extra`)."""
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".npz", dir=out)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, weights=weights, epoch=np.int64(epoch),
                     rng=np.array(json.dumps(rng.bit_generator.state)),
                     history=np.array(history.to_json()), fingerprint=np.array(fingerprint),
                     **{f"extra_{k}": np.asarray(v) for k, v in (extra or {}).items()})
        os.replace(tmp, out / CHECKPOINT)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(out: Path, fingerprint: str, history_type: type[TrainingHistory] = TrainingHistory
          ) -> tuple[np.ndarray, dict, int, TrainingHistory] | None:
    path = out / CHECKPOINT
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            fp = str(z["fingerprint"])
            weights, epoch = z["weights"].copy(), int(z["epoch"])
            state = json.loads(str(z["rng"]))
            history = history_type.from_json(str(z["history"]))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a readable training checkpoint ({exc})",
                              fix="delete it or choose another --out folder") from exc
    if fp != fingerprint:
        raise CheckpointError(
            f"{path} belongs to another problem, data set or configuration",
            fix="use another --out folder, or rerun with the original settings, or pass "
            "resume=False (--no-resume) to start over")
    return weights, state, epoch, history


def _load_extra(out: Path, name: str) -> np.ndarray:
    """An ``extra`` array of the checkpoint in ``out`` (after :func:`_load` accepted it)."""
    path = out / CHECKPOINT
    try:
        with np.load(path, allow_pickle=False) as z:
            return z[f"extra_{name}"].copy()
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: no {name!r} in the checkpoint ({exc})",
                              fix="delete it or choose another --out folder") from exc


def train(problem: Problem, train_data: Any, test_data: Any = None, *, mode: str = "limit",
          epochs: int, learning_rate: float, seed: int = 0, batch: int = 1,
          gamma: float = 1.0, out: str | os.PathLike[str] | None = None, resume: bool = True,
          progress: Callable[[int, int, TrainingHistory], None] | None = None,
          values: Mapping[str, float] | None = None,
          kernel: LimitKernel | None = None, options: Any = None) -> TrainingHistory:
    """Train a network problem on data with a learning law.

    Parameters
    ----------
    problem
        Built by ``Network.problem`` (feedforward, instantaneous neurons).
    train_data, test_data
        ``(X, Y)`` arrays (``Y`` targets or integer labels), a :class:`Dataset`, or an
        object with ``X`` and ``Y`` (such as a data stream).
    mode
        ``"limit"`` (the compiled backprop limit of the derived law), ``"dynamics"``
        (the full derived dynamics, finite masses and ``ϖ = exp(θt)``) or ``"diffusion"``
        (neurons of speed ``c``, eq. 18-20, stable variant): the last two are run by
        :mod:`cognitive_action.learn.runners` (or a runner registered with
        :func:`register_runner`).
    epochs, learning_rate, seed
        Passes over the data, ``η = τ/γ``, the seed of the initial weights and of the
        order of samples (a fresh permutation per epoch).
    batch
        Samples per update; only 1 (per-sample, as the paper's stream) for now.
    gamma
        ``γ`` of the weight law; the update ``η γ Ẇ`` does not depend on it.
    out
        A folder for ``checkpoint.npz``, written after every epoch.
    resume
        Continue from the checkpoint in ``out`` if there is one (a checkpoint with more
        epochs than asked is returned as it is, without training).
    progress
        Called as ``progress(epoch, epochs, history)`` after every epoch.
    values
        Numbers for parameters of the loss.
    kernel
        An already compiled limit law of ``problem``.
    options
        The mode's options (``"dynamics"``:
        :class:`~cognitive_action.learn.runners.DynamicsOptions`, ``"diffusion"``:
        :class:`~cognitive_action.learn.runners.DiffusionOptions`); ``None``: defaults.

    Returns
    -------
    TrainingHistory

    Raises
    ------
    ShapeError
        Bad data (before any work starts).
    CheckpointError
        A checkpoint in ``out`` from another run.
    ModeNotAvailableError
        A mode with no runner.
    """
    net = problem.network
    if not isinstance(net, Network):
        raise DeclarationError("the problem was not built from a Network",
                               fix="build it with layered([...]).problem()")
    if mode not in MODES:
        raise DeclarationError(f"unknown training mode {mode!r}",
                               fix=f"use one of {', '.join(MODES)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise DeclarationError(f"epochs must be an integer >= 0, got {epochs!r}",
                               fix="e.g. epochs=3")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise DeclarationError(f"learning rate must be a positive number, got "
                               f"{learning_rate!r}", fix="e.g. learning_rate=0.05")
    if batch != 1:
        raise DeclarationError(f"batch={batch}: only per-sample updates (batch=1) so far",
                               fix="use batch=1")
    tr = as_dataset(train_data, net, "train_data")
    te = None if test_data is None else as_dataset(test_data, net, "test_data")
    if mode != "limit":
        if mode not in RUNNERS:
            load_builtin_runners()
        if mode not in RUNNERS:
            raise ModeNotAvailableError(
                f"training mode {mode!r} has no runner yet",
                fix="use mode='limit', or register one with "
                "cognitive_action.learn.register_runner")
        return RUNNERS[mode](problem, tr, te, epochs=epochs, learning_rate=learning_rate,
                             seed=seed, out=out, resume=resume, progress=progress,
                             values=values, gamma=gamma, kernel=kernel, options=options)
    kernel = kernel or compile_limit_law(problem, values)
    config = {"mode": mode, "learning_rate": float(learning_rate), "seed": int(seed),
              "batch": batch, "gamma": float(gamma)}
    fingerprint = _fingerprint(problem, config, tr)
    out_dir = None if out is None else Path(out)
    loaded = _load(out_dir, fingerprint) if out_dir is not None and resume else None
    if loaded is None:
        weights = initial_weights(net, seed)
        rng = np.random.default_rng([seed, 0x0DE5])
        history = TrainingHistory(mode=mode)
        blocks = kernel.to_blocks(weights)
        _record(history, kernel, blocks, tr, te)
        start = 0
    else:
        weights, state, start, history = loaded
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        history.resumed_from = start
        blocks = kernel.to_blocks(weights)
    for epoch in range(start, epochs):
        for i in rng.permutation(len(tr.X)):
            kernel.step(blocks, tr.X[i], tr.Y[i], learning_rate, gamma)
        _record(history, kernel, blocks, tr, te)
        if out_dir is not None:
            _save(out_dir, kernel.from_blocks(blocks), rng, epoch + 1, history, fingerprint)
        if progress is not None:
            progress(epoch + 1, epochs, history)
    history.weights = kernel.from_blocks(blocks)
    return history


# -- the baseline ----------------------------------------------------------------------------
def _logistic(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


#: Textbook activations, by hand: ``σ(a)`` and ``σ'`` from ``(a, x = σ(a))``; keyed by
#: the registry's built-in :class:`~cognitive_action.declare.activations.Activation`
#: objects (not by name).
_HAND: dict[Activation, tuple[Callable[[np.ndarray], np.ndarray],
                              Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    BUILTIN_ACTIVATIONS["tanh"]: (np.tanh, lambda a, x: 1.0 - x * x),
    BUILTIN_ACTIVATIONS["logistic"]: (_logistic, lambda a, x: x * (1.0 - x)),
    BUILTIN_ACTIVATIONS["identity"]: (lambda a: a, lambda a, x: np.ones_like(x)),
    BUILTIN_ACTIVATIONS["softplus"]: (lambda a: np.logaddexp(0.0, a),
                                      lambda a, x: _logistic(a)),
}


def _squared(o: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``V = ½ Σ (o - y)²`` per column and ``-∂V/∂o = y - o``."""
    return 0.5 * np.sum((o - y) ** 2, axis=0), y - o


def _softmax_ce(o: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``V = -Σ y log softmax(o) = (Σ y) logsumexp(o) - y·o`` per column and
    ``-∂V/∂o = y - (Σ y) softmax(o)`` (``y - p`` for one-hot targets)."""
    m = o.max(axis=0)
    z = np.exp(o - m)
    lse = m + np.log(z.sum(axis=0))
    total = y.sum(axis=0)
    return total * lse - np.sum(y * o, axis=0), y - total * (z / z.sum(axis=0))


def _hand_loss(problem: Problem) -> Callable[[np.ndarray, np.ndarray],
                                             tuple[np.ndarray, np.ndarray]]:
    """The hand-written loss of the problem: its ``V = -F/ϖ`` must be one of the two
    textbook losses of :data:`~cognitive_action.declare.network.LOSSES` (compared as
    expressions)."""
    import sympy as sp

    net = problem.network
    ys = net.target_signals()
    outs, targets = [net.x[o] for o in net.outputs], [ys[o] for o in net.outputs]
    action = problem.action
    V = -action.lagrangian / action.weight
    for ref, fn in ((squared_error(outs, targets), _squared),
                    (softmax_cross_entropy(outs, targets), _softmax_ce)):
        if ref == V or sp.cancel(V - ref) == 0:
            return fn
    raise DeclarationError(f"no hand-written baseline for the loss {V}",
                           fix="the baseline knows loss='squared' and "
                           "loss='softmax_cross_entropy' of the outputs against the targets")


def _layers(net: Network) -> list[list[Any]]:
    """The layers of a fully connected layered net (data inputs first), from the graph
    only (no derivation); the bias unit, if any, feeds every non-input neuron."""
    data_inputs = [i for i in net.inputs if i != net.bias]
    if len(data_inputs) + (net.bias is not None) != len(net.inputs):
        raise DeclarationError("the net has constant inputs other than its bias unit",
                               fix="use layered([...], bias=True)")
    layers = [data_inputs]
    seen = set(net.inputs)
    while len(seen) < len(net.order):
        nxt = [n for n in net.order if n not in seen and
               all(p in layers[-1] or p == net.bias for p in net.graph.predecessors(n))]
        if not nxt:
            raise DeclarationError("the net is not layered", fix="use layered([...])")
        layers.append(nxt)
        seen |= set(nxt)
    for a, b in zip(layers, layers[1:]):
        if any(not net.graph.has_edge(k, j) for j in b for k in a) or (
                net.bias is not None and any(not net.graph.has_edge(net.bias, j)
                                             for j in b)):
            raise DeclarationError("layers are not fully connected", fix="use layered([...])")
    if list(layers[-1]) != list(net.outputs):
        raise DeclarationError("the last layer is not the output layer",
                               fix="use layered([...]) with its default outputs")
    return layers


def sgd_baseline(problem: Problem, train_data: Any, test_data: Any = None, *, epochs: int,
                 learning_rate: float, seed: int = 0,
                 progress: Callable[[int, int, TrainingHistory], None] | None = None
                 ) -> TrainingHistory:
    """Plain NumPy SGD on a layered net, backprop written by hand from the textbook.

    Per-layer activations (tanh, logistic, identity, softplus), biases (the weights from
    the bias unit, as a vector ``b_l`` per layer), and the squared or softmax
    cross-entropy loss. Same initial weights (:func:`initial_weights`) and the same
    sample order as :func:`train` with the same ``seed``; the gradient is coded
    directly, not derived::

        a_l = W_l x_{l-1} + b_l,  x_l = σ_l(a_l)
        d_L = -∂V/∂x_L            (y - x_L, or y - (Σ y) softmax(x_L))
        s_l = σ_l'(a_l) ⊙ d_l,  d_{l-1} = W_lᵀ s_l
        W_l += η s_l x_{l-1}ᵀ,  b_l += η s_l

    Raises
    ------
    DeclarationError
        For a net that is not fully connected layer to layer, a layer with several
        activations or one without a hand-written form, or another loss.
    """
    net = problem.network
    layers = _layers(net)
    acts = []
    for layer in layers[1:]:
        kinds = {net.activation_of(j) for j in layer}
        if len(kinds) != 1:
            raise DeclarationError("a layer has several activations",
                                   fix="give one activation per layer "
                                   "(layered(..., activations=[...]))")
        act = kinds.pop()
        if act not in _HAND:
            raise DeclarationError(f"no hand-written baseline for activation {act.name!r}",
                                   fix="use tanh, logistic, identity or softplus")
        acts.append(_HAND[act])
    loss = _hand_loss(problem)
    tr = as_dataset(train_data, net, "train_data")
    te = None if test_data is None else as_dataset(test_data, net, "test_data")
    w0 = initial_weights(net, seed)
    pos = {key: i for i, key in enumerate(net.w)}
    Ws = [np.array([[w0[pos[j, k]] for k in a] for j in b]) for a, b in zip(layers, layers[1:])]
    bs = [None if net.bias is None else np.array([w0[pos[j, net.bias]] for j in b])
          for b in layers[1:]]

    def forward(x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        xs, As = [x], [x]
        for W, b, (sig, _) in zip(Ws, bs, acts):
            a = W @ xs[-1]
            if b is not None:
                a = a + (b if x.ndim == 1 else b[:, None])
            As.append(a)
            xs.append(sig(a))
        return xs, As

    def record(h: TrainingHistory) -> None:
        for data, L, acc in ((tr, h.train_loss, h.train_accuracy),
                             (te, h.test_loss, h.test_accuracy)):
            if data is None:
                continue
            o = forward(data.X.T)[0][-1]
            L.append(float(np.mean(loss(o, data.Y.T)[0])))
            if data.labels is not None:
                acc.append(float(np.mean(np.argmax(o, 0) == data.labels)))

    rng = np.random.default_rng([seed, 0x0DE5])
    h = TrainingHistory(mode="sgd")
    record(h)
    for epoch in range(epochs):
        for i in rng.permutation(len(tr.X)):
            xs, As = forward(tr.X[i])
            d = loss(xs[-1], tr.Y[i])[1]
            for lv in range(len(Ws), 0, -1):
                s = acts[lv - 1][1](As[lv], xs[lv]) * d
                d = Ws[lv - 1].T @ s
                Ws[lv - 1] += learning_rate * np.outer(s, xs[lv - 1])
                if bs[lv - 1] is not None:
                    bs[lv - 1] += learning_rate * s
        record(h)
        if progress is not None:
            progress(epoch + 1, epochs, h)
    w = np.zeros(len(net.w))
    for W, b, a, c in zip(Ws, bs, layers, layers[1:]):
        for r, j in enumerate(c):
            for col, k in enumerate(a):
                w[pos[j, k]] = W[r, col]
            if b is not None:
                w[pos[j, net.bias]] = b[r]
    h.weights = w
    return h


def learning_curve_figure(histories: Mapping[str, TrainingHistory], title: str = "") -> Any:
    """Loss and accuracy per epoch of several runs side by side (a matplotlib figure):
    each line is labelled ``<run> train`` / ``<run> test`` and plots the history's
    list as it is; the legends sit below the axes."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    # wide solid lines under narrow dashed ones: runs that coincide stay visible
    styles = [("-", 4.0, "o"), ("--", 1.6, "x"), (":", 1.6, "s"), ("-.", 1.6, "^")]
    for (label, h), (ls, lw, mk) in zip(histories.items(), styles * 4):
        ep = np.arange(len(h.train_loss))
        axes[0].plot(ep, h.train_loss, ls, lw=lw, marker=mk, label=f"{label} train")
        if h.test_loss:
            axes[0].plot(ep, h.test_loss, ls, lw=lw, marker=mk, alpha=0.6,
                         label=f"{label} test")
        if h.test_accuracy or h.train_accuracy:
            acc = h.test_accuracy or h.train_accuracy
            axes[1].plot(np.arange(len(acc)), acc, ls, lw=lw, marker=mk,
                         label=f"{label} {'test' if h.test_accuracy else 'train'}")
    axes[0].set(xlabel="epoch", ylabel="mean loss V", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="accuracy (argmax)")
    for ax in axes:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2,
                  frameon=False)  # below the axes: never over a curve
        ax.grid(alpha=0.3)
    fig.suptitle(title or "learning curves")
    fig.tight_layout()
    return fig


def plot_learning_curves(histories: Mapping[str, TrainingHistory], path: str | os.PathLike[str],
                         title: str = "") -> Path:
    """:func:`learning_curve_figure` saved as a PNG (atomically: a temporary file in the
    same folder, then :func:`os.replace`)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = learning_curve_figure(histories, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fig-", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path
