"""Data streams: arrays of samples presented as the input and target signals of a network.

A :class:`Stream` holds inputs ``X`` (samples × input neurons) and targets ``Y``
(samples × output neurons, or integer labels one-hot encoded with ``n_classes``), and
maps the columns onto the network's signal symbols (``Network.input_signals()`` and
``Network.target_signals()``, in the order of ``Network.inputs`` and
``Network.outputs``). Sample ``k`` of an epoch is presented on ``[k τ, (k+1) τ)``,
piecewise-constant, or linearly interpolated towards the next sample
(``interpolate=True``, for :meth:`Stream.value_at`). Everything is validated when the
stream is built, before any work starts: a bad value raises
:class:`~cognitive_action.errors.DataError` naming the field (``inputs[3, 5]``).

Examples
--------
>>> import numpy as np
>>> from cognitive_action.declare.network import xor
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> s = Stream(X, [0.0, 1.0, 1.0, 0.0], tau=0.5, network=xor())
>>> len(s), s.input_names, s.target_names
(4, ('e1', 'e2'), ('y5',))
>>> next(iter(s))
{'e1': 0.0, 'e2': 0.0, 'y5': 0.0}
>>> Stream(X, [0.0, 1.0, np.nan, 0.0], tau=0.5, network=xor())
Traceback (most recent call last):
...
cognitive_action.errors.DataError: targets[2]: the value nan is not finite. Fix: ...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from cognitive_action.errors import DataError, OptionalDependencyError

__all__ = ["Stream", "digits_stream", "load_digits_split"]

ORDERS = ("sequential", "shuffle")


def _network(network: Any):
    """The :class:`~cognitive_action.declare.network.Network` of a network or problem."""
    net = getattr(network, "network", network)
    if net is None or not hasattr(net, "input_signals") or not hasattr(net, "target_signals"):
        raise DataError(f"{type(network).__name__} is not a network",
                        fix="pass network=Network(...) or a problem made by "
                        "Network.problem(...)", field="network")
    return net


def _finite_array(values: Any, field: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"cannot read numbers from {type(values).__name__}",
                        fix="give an array of numbers (samples × features)",
                        field=field) from None
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        where = ", ".join(str(int(i)) for i in bad[0])
        raise DataError(f"the value {arr[tuple(bad[0])]} is not finite",
                        fix="drop or impute the sample (NaN and inf cannot drive the "
                        "network)", field=f"{field}[{where}]")
    return arr


def _as_matrix(arr: np.ndarray, width: int, field: str, what: str) -> np.ndarray:
    if arr.ndim == 1 and width == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise DataError(f"shape {arr.shape} does not fit the network's {width} {what}",
                        fix=f"give an array of shape (samples, {width}), one column per "
                        f"{what[:-1]} in network order", field=field)
    return arr


class Stream:
    """Samples of inputs and targets, presented one after the other as signals.

    Parameters
    ----------
    inputs
        ``(samples, n_inputs)`` numbers, one column per input neuron in the order of
        ``network.inputs`` (a 1-D array for a network with one input).
    targets
        ``(samples, n_outputs)`` numbers in the order of ``network.outputs`` (1-D for one
        output), or integer labels ``0 … n_classes - 1`` when ``n_classes`` is given.
    tau
        Presentation time of one sample (``> 0``).
    network
        The :class:`~cognitive_action.declare.network.Network`, or a problem made by
        ``Network.problem``, whose input and target signals the columns drive.
    n_classes
        Read ``targets`` as labels and one-hot encode them (must equal the number of
        outputs).
    on, off
        The one-hot values of the true class and of the others.
    order
        ``"sequential"`` or ``"shuffle"`` (a permutation per epoch from ``seed``).
    seed
        Seed of the shuffles.
    interpolate
        Present the signals linearly interpolated from sample ``k`` to sample ``k+1``
        over ``[k τ, (k+1) τ]`` in :meth:`value_at` (the last sample stays constant).

    Raises
    ------
    DataError
        Before any work: a NaN or infinite value, a shape that does not fit the network,
        labels out of range or not integers, ``tau <= 0``, an unknown order, an empty
        stream, different sample counts; the error's ``field`` names the place.

    Attributes
    ----------
    X, Y
        The validated float arrays (``Y`` one-hot for labels).
    input_names, target_names
        The signal names of the columns of ``X`` and ``Y``.
    labels
        The integer labels (``None`` unless ``n_classes`` was given).
    network
        The network whose signals the stream drives.
    """

    def __init__(self, inputs: Any, targets: Any, *, tau: float, network: Any,
                 n_classes: int | None = None, on: float = 1.0, off: float = 0.0,
                 order: str = "sequential", seed: int = 0, interpolate: bool = False
                 ) -> None:
        try:
            tau_f = float(tau)
        except (TypeError, ValueError):
            raise DataError(f"tau = {tau!r} is not a number", fix="give a positive time",
                            field="tau") from None
        if not (np.isfinite(tau_f) and tau_f > 0):
            raise DataError(f"tau = {tau!r} is not a positive finite time",
                            fix="give the presentation time of one sample, tau > 0",
                            field="tau")
        if order not in ORDERS:
            raise DataError(f"unknown order {order!r}", fix=f"use one of {ORDERS}",
                            field="order")
        net = _network(network)
        e_sig, y_sig = net.input_signals(), net.target_signals()
        self.input_names = tuple(str(s) for s in e_sig.values())  # not the bias unit
        self.target_names = tuple(str(y_sig[o]) for o in net.outputs)
        X = _as_matrix(_finite_array(inputs, "inputs"), len(self.input_names), "inputs",
                       "input neurons")
        self.labels: np.ndarray | None = None
        if n_classes is None:
            Y = _as_matrix(_finite_array(targets, "targets"), len(self.target_names),
                           "targets", "output neurons")
        else:
            Y = self._one_hot(targets, n_classes, float(on), float(off))
        if X.shape[0] == 0:
            raise DataError("the stream has no samples", fix="give at least one sample",
                            field="inputs")
        if X.shape[0] != Y.shape[0]:
            raise DataError(f"{X.shape[0]} input samples but {Y.shape[0]} targets",
                            fix="give one target per input sample", field="targets")
        self.X, self.Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
        self.tau, self.order, self.seed = tau_f, order, int(seed)
        self.interpolate = bool(interpolate)
        self.n_classes = None if n_classes is None else int(n_classes)
        self.network = net

    def _one_hot(self, targets: Any, n_classes: Any, on: float, off: float) -> np.ndarray:
        n_out = len(self.target_names)
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or \
                n_classes != n_out:
            raise DataError(f"n_classes = {n_classes!r} does not fit the network's {n_out} "
                            "output neurons", fix=f"use n_classes={n_out}, one output per "
                            "class", field="n_classes")
        lab = _finite_array(targets, "targets")
        if lab.ndim != 1:
            raise DataError(f"labels of shape {lab.shape}", fix="give one integer label per "
                            "sample (a 1-D array)", field="targets")
        bad = np.flatnonzero((lab != np.round(lab)) | (lab < 0) | (lab >= n_classes))
        if bad.size:
            k = int(bad[0])
            raise DataError(f"the label {lab[k]:g} is not an integer in 0..{n_classes - 1}",
                            fix=f"labels index the {n_classes} classes from 0",
                            field=f"targets[{k}]")
        self.labels = lab.astype(np.int64)
        Y = np.full((lab.size, n_classes), off)
        Y[np.arange(lab.size), self.labels] = on
        return Y

    # -- the public surface ----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        return (f"Stream({len(self)} samples, {len(self.input_names)} inputs, "
                f"{len(self.target_names)} targets, tau={self.tau:g}, order={self.order!r})")

    @property
    def signal_names(self) -> tuple[str, ...]:
        """Input then target signal names, the keys of :meth:`sample`."""
        return self.input_names + self.target_names

    def sample(self, k: int) -> dict[str, float]:
        """Sample ``k`` as ``{signal_name: value}``."""
        vals = np.concatenate([self.X[k], self.Y[k]]).tolist()
        return dict(zip(self.signal_names, vals))

    def __iter__(self) -> Iterator[dict[str, float]]:
        """The samples in stored (sequential) order, as ``{signal_name: value}``."""
        return (self.sample(k) for k in range(len(self)))

    def epoch_order(self, epoch: int = 0) -> np.ndarray:
        """The sample indices of an epoch: ``0 … n-1``, or a permutation drawn from
        ``(seed, epoch)`` (the same for the same pair, whatever ran before).

        >>> import numpy as np
        >>> from cognitive_action.declare.network import chain
        >>> s = Stream(np.arange(5.0), np.zeros(5), tau=1.0, network=chain(2),
        ...            order="shuffle", seed=3)
        >>> bool((s.epoch_order(1) == s.epoch_order(1)).all())
        True
        >>> sorted(s.epoch_order(1).tolist())
        [0, 1, 2, 3, 4]
        """
        n = len(self)
        if self.order == "sequential":
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def value_at(self, time_: float, epoch: int = 0) -> dict[str, float]:
        """The signals at time ``time_`` of an epoch starting at 0: the sample of
        ``[k τ, (k+1) τ)`` (piecewise-constant), or interpolated towards the next one.

        >>> from cognitive_action.declare.network import chain
        >>> s = Stream([0.0, 1.0], [0.0, 2.0], tau=1.0, network=chain(2), interpolate=True)
        >>> s.value_at(0.25)
        {'e1': 0.25, 'y2': 0.5}
        """
        order = self.epoch_order(epoch)
        pos = min(max(float(time_) / self.tau, 0.0), len(self) - 1.0)
        k = min(int(np.floor(pos)), len(self) - 1)
        row = np.concatenate([self.X[order[k]], self.Y[order[k]]])
        if self.interpolate and k + 1 < len(self):
            nxt = np.concatenate([self.X[order[k + 1]], self.Y[order[k + 1]]])
            row = row + (pos - k) * (nxt - row)
        return dict(zip(self.signal_names, row.tolist()))

    def values(self, order: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The signal values row by row (``samples × signals``, columns
        :attr:`signal_names`) in ``order`` (default: stored order)."""
        idx = np.arange(len(self)) if order is None else np.asarray(order, dtype=np.int64)
        return np.hstack([self.X[idx], self.Y[idx]])


def load_digits_split(split: float = 0.2, seed: int = 0, limit: int | None = None
                      ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's ``load_digits`` as ``((X_train, labels_train), (X_test,
    labels_test))``, pixels scaled to [0, 1], split by a random permutation (``seed``):
    the first ``round(split · n)`` samples of it are the test set.

    Parameters
    ----------
    split
        Fraction of samples held out for testing.
    seed
        Seed of the split.
    limit
        Keep only the first ``limit`` samples of the permutation (quick runs).

    Raises
    ------
    DataError
        ``split`` not in (0, 1).
    OptionalDependencyError
        When scikit-learn is not installed (``pip install cognitive_action[data]``).
    """
    if not 0 < split < 1:
        raise DataError(f"split = {split!r} is not in (0, 1)", fix="e.g. 0.2",
                        field="split")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise OptionalDependencyError(
            "the digits data come from scikit-learn, which is not installed",
            fix="pip install 'cognitive_action[data]' (or pip install scikit-learn)"
        ) from exc
    d = load_digits()
    X = d.data.astype(float) / 16.0
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(X))
    if limit is not None:
        perm = perm[:limit]
    n_test = max(1, int(round(split * len(perm))))
    te, tr = perm[:n_test], perm[n_test:]
    return (X[tr], y[tr]), (X[te], y[te])


def digits_stream(network: Any, *, tau: float = 1.0, test_fraction: float = 0.25,
                  seed: int = 0, scale: float = 1.0 / 16.0, on: float = 1.0,
                  off: float = 0.0, order: str = "shuffle") -> tuple[Stream, Stream]:
    """scikit-learn's ``load_digits`` (8×8 images, 10 classes) as a train and a test stream.

    Parameters
    ----------
    network
        A network (or its problem) with 64 inputs and 10 outputs.
    tau
        Presentation time of one sample.
    test_fraction
        Fraction of the samples held out for the test stream (a seeded split).
    seed
        Seed of the split and of the shuffles.
    scale
        Pixel values (0…16) are multiplied by it.
    on, off, order
        As in :class:`Stream` (the test stream is sequential).

    Returns
    -------
    tuple of Stream
        ``(train, test)``.

    Raises
    ------
    OptionalDependencyError
        scikit-learn is missing (``pip install cognitive_action[data]``).
    DataError
        The network does not have 64 inputs and 10 outputs, or a bad ``test_fraction``.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test_fraction = {test_fraction!r} is not in (0, 1)",
                        fix="hold out a fraction such as 0.25", field="test_fraction")
    net = _network(network)
    n_in = len(net.input_signals())  # data inputs (not the bias unit)
    if n_in != 64 or len(net.outputs) != 10:
        raise DataError(f"the network has {n_in} inputs and {len(net.outputs)} "
                        "outputs; digits need 64 and 10", fix="use layered([64, ..., 10])",
                        field="network")
    (X, labels), (Xt, labels_t) = load_digits_split(float(test_fraction), seed)
    X, Xt = X * 16.0 * float(scale), Xt * 16.0 * float(scale)
    kw = {"tau": tau, "network": net, "n_classes": 10, "on": on, "off": off, "seed": seed}
    return (Stream(X, labels, order=order, **kw),
            Stream(Xt, labels_t, order="sequential", **kw))
