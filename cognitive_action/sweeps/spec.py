"""The sweep spec: a problem, named axes, and what to compute at every point.

A :class:`SweepSpec` is validated when it is built: an axis must name a parameter of the
problem, a state (an initial value) or ``"seed"``, hold at least one value of the right
type; a zipped table needs axes of one length; the task must be ``"simulate"``,
``"verify"``, ``"train"``, ``"convergence"`` or a name given to :func:`register_task`.
Every mistake raises :class:`~cognitive_action.errors.SweepError` (with the field and a
fix) before any work. :meth:`SweepSpec.from_file` reads the ``[sweep]`` table of a problem
file (:mod:`cognitive_action.sweeps.section`).

Examples
--------
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> x, = S.coordinates("x"); m, k = S.parameters("m k")
>>> osc = Problem(Action([x], masses=m, lagrangian=-k * x**2 / 2), parameters=[m, k])
>>> spec = SweepSpec(osc, axes={"k": [1.0, 4.0], "x": [0.5, 1.0, 2.0]},
...                  values={"m": 1.0}, initial={"x": 1.0, "x_dot": 0.0})
>>> spec.shape, spec.size
((2, 3), 6)
>>> spec.point(4)
{'k': 4.0, 'x': 1.0}
>>> try:
...     SweepSpec(osc, axes={"mu": [1.0]})
... except SweepError as err:
...     print(err.field, "|", err.fix)
axes.mu | name one of: k, m, x, x_dot, seed
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cognitive_action.compile.options import SolverOptions
from cognitive_action.declare.problem import Problem
from cognitive_action.errors import SweepError

__all__ = ["SweepSpec", "Convergence", "register_task", "registered_tasks", "TaskContext"]

#: Tasks a worker runs per point: name -> ``fn(context, point) -> {name: value}``.
_TASKS: dict[str, Callable[..., Mapping[str, Any]]] = {}
_BUILTIN = ("simulate", "verify", "train", "convergence")
#: Laws a ``"train"`` sweep compares on its ``law`` axis: the derived law's compiled
#: backprop limit (``learn.train``) and plain NumPy SGD (``learn.sgd_baseline``).
TRAIN_LAWS = ("limit", "sgd")
#: Axes of a ``"train"`` sweep besides the problem's parameters and ``seed``.
TRAIN_AXES = ("learning_rate", "law")


@dataclass
class TaskContext:
    """What a task gets at one point.

    Attributes
    ----------
    problem
        The declared problem.
    system
        The compiled system (built once per worker process), or ``None`` for ``verify``.
    values, initial
        Parameter values and the initial state at this point (the spec's, with the
        point's axes applied).
    seed
        The point's seed (the ``"seed"`` axis), or ``None``.
    spec
        The :class:`SweepSpec`.
    """

    problem: Problem
    system: Any
    values: dict[str, float]
    initial: dict[str, float]
    seed: int | None
    spec: SweepSpec


def register_task(name: str, fn: Callable[[TaskContext, dict[str, Any]], Mapping[str, Any]]
                  ) -> None:
    """Register a per-point task under a name usable as ``SweepSpec(task=name)``.

    Parameters
    ----------
    name
        The task name (not a built-in: ``"simulate"``, ``"verify"``, ``"train"``,
        ``"convergence"``).
    fn
        ``fn(context, point)`` returning ``{variable: float | str | 1-d array}``, the same
        names and shapes at every point. It travels to the workers pickled with the sweep
        (define it at module level in an importable module, or as a closure).

    Raises
    ------
    SweepError
        If the name is a built-in task or ``fn`` is not callable.

    Examples
    --------
    >>> register_task("double_k", lambda ctx, point: {"y": 2 * ctx.values["k"]})
    >>> "double_k" in registered_tasks()
    True
    """
    if name in _BUILTIN or not isinstance(name, str) or not name:
        raise SweepError(f"cannot register a task named {name!r}",
                         fix="pick a non-empty name other than "
                             f"{', '.join(map(repr, _BUILTIN))}",
                         field="task")
    if not callable(fn):
        raise SweepError(f"task {name!r} is not callable",
                         fix="pass a function fn(context, point) -> dict", field="task")
    _TASKS[name] = fn


def registered_tasks() -> tuple[str, ...]:
    """Names accepted as ``SweepSpec(task=...)``: the built-ins and the registered ones."""
    return _BUILTIN + tuple(_TASKS)


@dataclass(frozen=True)
class Convergence:
    """Fit the order of an error against one axis (``verify.metrics.convergence_order``).

    Attributes
    ----------
    axis
        The axis the error is fitted against (positive values; every other axis has one
        value).
    variable
        The scalar result variable holding the error at every point (``"distance"``
        for the ``"convergence"`` task).
    confidence
        Level of the confidence interval of the order.
    reference
        For the ``"convergence"`` task: the limit value of the axis. Each point
        simulates at its axis value and at ``reference`` and stores
        ``distance = max over the outputs and output times of |y - y_reference|``.
    """

    axis: str
    variable: str = "distance"
    confidence: float = 0.95
    reference: float | None = None


def _problem_names(problem: Problem) -> tuple[list[str], list[str]]:
    params = sorted(str(p) for p in problem.parameters)
    coords = [str(q) for q in problem.coordinates]
    states = coords + [f"{q}_dot" for q in coords]
    return params, states


def _load(problem: Problem | str | os.PathLike[str]) -> tuple[Problem, dict, dict]:
    if isinstance(problem, Problem):
        return problem, {}, {}
    if isinstance(problem, (str, os.PathLike)):
        from cognitive_action.problem_files.loader import load_problem

        loaded = load_problem(problem)
        return (loaded.problem, dict(loaded.values),
                dict(loaded.initial.get("values", {})))
    raise SweepError(f"problem of type {type(problem).__name__}",
                     fix="pass a Problem, a shipped problem name or a problem file path",
                     field="problem")


def _data_digest(data: Any) -> Any:
    """What decides a ``"train"`` sweep's data: a ``[data]`` table as is, arrays by hash."""
    if isinstance(data, Mapping):
        return sorted((str(k), str(v)) for k, v in data.items())
    digest = hashlib.sha256()
    for part in data:
        for arr in part:
            a = np.ascontiguousarray(np.asarray(arr))
            digest.update(f"{a.dtype}{a.shape}".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


#: Scalar results of a ``"train"`` point (a convergence fit may use them).
TRAIN_SCALARS = ("final_train_loss", "final_test_loss", "final_test_accuracy")


def _check_axis(name: str, vals: Any, allowed: Sequence[str], is_state: bool) -> tuple:
    """The values of one axis, checked (``SweepError`` at ``axes.<name>``)."""
    where = f"axes.{name}"
    if is_state:
        raise SweepError(f"{name!r} is a state: the train task has no initial state",
                         fix=f"name one of: {', '.join(allowed)}", field=where)
    if name not in allowed:
        what = "a parameter, a state" if "learning_rate" not in allowed else \
            "a parameter, 'learning_rate', 'law'"
        raise SweepError(f"{name!r} is neither {what} nor 'seed'",
                         fix=f"name one of: {', '.join(allowed)}", field=where)
    if isinstance(vals, (str, bytes, Mapping)) or not hasattr(vals, "__iter__"):
        raise SweepError(f"values of type {type(vals).__name__}", field=where,
                         fix="give a list or 1-d array of values")
    vals = tuple(np.asarray(vals).ravel().tolist()) if isinstance(
        vals, np.ndarray) else tuple(vals)
    if not vals:
        raise SweepError("the axis is empty", fix="give at least one value", field=where)
    if name == "seed":
        bad = [v for v in vals if not isinstance(v, (int, np.integer)) or isinstance(v, bool)
               or v < 0]
        fix = "seeds are integers >= 0"
    elif name == "law":
        bad = [v for v in vals if not isinstance(v, str) or v not in TRAIN_LAWS]
        fix = f"laws are names among {', '.join(TRAIN_LAWS)}"
    elif name == "learning_rate":
        bad = [v for v in vals if not _is_number(v) or not 0 < v < float("inf")]
        fix = "learning rates are positive finite numbers"
    else:
        bad = [v for v in vals if not _is_number(v) or not np.isfinite(v)]
        fix = "parameter and state values are finite numbers"
    if bad:
        raise SweepError(f"value {bad[0]!r} of type {type(bad[0]).__name__}", fix=fix,
                         field=where)
    if len(set(vals)) != len(vals):
        raise SweepError("the axis repeats a value", field=where,
                         fix="give each value once (coordinates must be unique)")
    if name == "seed":
        return tuple(int(v) for v in vals)
    if name == "law":
        return tuple(str(v) for v in vals)
    return tuple(float(v) for v in vals)


@dataclass(frozen=True)
class SweepSpec:
    """A parameter sweep: a problem, axes, and the task run at every point.

    Parameters
    ----------
    problem
        A :class:`~cognitive_action.declare.problem.Problem`, or a shipped problem name /
        problem file path (loaded with ``problem_files.loader.load_problem``; its
        parameter values and initial state are the defaults of ``values``/``initial``).
    axes
        ``{name: values}``: a parameter name, a state name (its initial value) or
        ``"seed"`` (integers), each with at least one value; a ``"train"`` sweep also
        takes ``"learning_rate"`` (positive numbers) and ``"law"`` (names in
        :data:`TRAIN_LAWS`), and no state.
    mode
        ``"grid"``: the Cartesian product of the axes (dims in the order given);
        ``"zip"``: a table, point ``i`` takes the ``i``-th value of every axis.
    task
        ``"simulate"`` (the chosen ``outputs`` at the output ``times``), ``"verify"``
        (status and value of every check of the report), ``"train"`` (a network problem
        trained on ``data`` for ``epochs``: the learning curves), ``"convergence"``
        (simulate, and the ``distance`` to the run at ``convergence.reference``)
        or a :func:`register_task` name.
    values, initial
        Parameter values and initial state shared by every point (the axes override).
    times, n_points
        Output grid of ``simulate``: ``(t0, tf)`` with ``n_points`` times, or an array.
    outputs
        States recorded by ``simulate`` (``None``: all).
    options
        :class:`~cognitive_action.compile.options.SolverOptions` of ``simulate``.
    convergence
        A :class:`Convergence` (or ``(axis, variable)``): fit the order after the sweep.
    epochs, learning_rate
        Passes over the data and the learning rate of ``"train"`` (the axes override).
    data
        The data of ``"train"``: ``(train, test)`` with each ``(X, Y)`` arrays, or a
        problem file's ``[data]`` table (``{"source": "digits", "split": 0.2, ...}``).

    Raises
    ------
    SweepError
        Unknown, empty or wrongly typed axis; zipped axes of different lengths; unknown
        task; a convergence axis or variable that does not fit the sweep; a ``"train"``
        sweep without data or network.
    """

    problem: Any
    axes: Mapping[str, Sequence[Any]]
    mode: str = "grid"
    task: str = "simulate"
    values: Mapping[str, float] = field(default_factory=dict)
    initial: Mapping[str, float] = field(default_factory=dict)
    times: Any = (0.0, 1.0)
    n_points: int = 2
    outputs: tuple[str, ...] | None = None
    options: SolverOptions | None = None
    convergence: Convergence | tuple[str, str] | None = None
    epochs: int = 1
    learning_rate: float = 0.05
    data: Any = None

    def __post_init__(self) -> None:
        problem, values, initial = _load(self.problem)
        object.__setattr__(self, "problem", problem)
        object.__setattr__(self, "values", {**values, **dict(self.values)})
        object.__setattr__(self, "initial", {**initial, **dict(self.initial)})
        if self.task not in registered_tasks():
            raise SweepError(f"unknown task {self.task!r}", field="task",
                             fix=f"use one of {', '.join(registered_tasks())} "
                                 "(register_task adds one)")
        params, states = _problem_names(problem)
        train = self.task == "train"
        if not isinstance(self.axes, Mapping) or not self.axes:
            raise SweepError("a sweep needs at least one axis", field="axes",
                             fix="pass axes={'name': [values, ...]}")
        allowed = params + (list(TRAIN_AXES) if train else states) + ["seed"]
        axes: dict[str, tuple] = {}
        for name, vals in self.axes.items():
            axes[name] = _check_axis(name, vals, allowed, train and name in states)
        object.__setattr__(self, "axes", axes)
        if self.mode not in ("grid", "zip"):
            raise SweepError(f"unknown mode {self.mode!r}", fix="use 'grid' or 'zip'",
                             field="mode")
        if self.mode == "zip" and len({len(v) for v in axes.values()}) != 1:
            raise SweepError("zipped axes have different lengths", field="axes",
                             fix="give every axis of a 'zip' sweep the same number of values")
        if self.outputs is not None:
            outputs = tuple(self.outputs)
            unknown = [o for o in outputs if o not in states]
            if unknown or not outputs:
                raise SweepError(f"unknown outputs {unknown}", field="outputs",
                                 fix=f"choose among the states {', '.join(states)}")
            object.__setattr__(self, "outputs", outputs)
        if isinstance(self.n_points, bool) or not isinstance(self.n_points, int) \
                or self.n_points < 1:
            raise SweepError(f"n_points={self.n_points!r}", field="n_points",
                             fix="give a positive integer")
        self._check_times()
        if self.options is not None and not isinstance(self.options, SolverOptions):
            raise SweepError(f"options of type {type(self.options).__name__}",
                             fix="pass a SolverOptions", field="options")
        if train:
            self._check_train()
        self._check_convergence(axes)

    def _check_times(self) -> None:
        times = self.times
        try:
            grid = self.output_times()
        except (TypeError, ValueError):
            grid = np.array([np.nan])
        if grid.size < 1 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0) \
                or (isinstance(times, (tuple, list)) and len(times) == 2
                    and not float(times[1]) > float(times[0])):
            raise SweepError(f"times={times!r}", field="times",
                             fix="give (t0, tf) with tf > t0, or increasing finite times")

    def _check_train(self) -> None:
        if getattr(self.problem, "network", None) is None:
            raise SweepError("the train task needs a network problem", field="task",
                             fix="declare a [network] (or build the problem with "
                                 "layered([...]).problem()), or use another task")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise SweepError(f"epochs={self.epochs!r}", field="epochs",
                             fix="give an integer >= 0, e.g. epochs = 3")
        lr = self.learning_rate
        if not _is_number(lr) or not 0 < float(lr) < float("inf"):
            raise SweepError(f"learning_rate={lr!r}", field="learning_rate",
                             fix="give a positive number, e.g. learning_rate = 0.05")
        data = self.data
        if isinstance(data, Mapping):
            if not data:
                raise SweepError("the train task has no data", field="data",
                                 fix='give [data] source = "digits" in the problem file')
        elif not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise SweepError(f"data of type {type(data).__name__}", field="data",
                             fix="pass data=((X_train, Y_train), (X_test, Y_test)) or a "
                                 "[data] table")

    def _check_convergence(self, axes: Mapping[str, tuple]) -> None:
        conv = self.convergence
        if self.task == "convergence" and conv is None:
            raise SweepError("the convergence task needs a convergence axis and reference",
                             field="convergence",
                             fix="pass convergence=Convergence(axis, reference=limit value)")
        if conv is None:
            return
        if isinstance(conv, tuple) and len(conv) == 2:
            conv = Convergence(*conv)
        if not isinstance(conv, Convergence):
            raise SweepError(f"convergence of type {type(conv).__name__}",
                             fix="pass Convergence(axis, variable)", field="convergence")
        if conv.axis not in axes:
            raise SweepError(f"convergence axis {conv.axis!r} is not an axis",
                             fix=f"use one of {', '.join(axes)}", field="convergence.axis")
        vals = axes[conv.axis]
        if len(vals) < 3 or not all(_is_number(v) and v > 0 for v in vals):
            raise SweepError("a convergence fit needs at least 3 positive axis values",
                             fix="sweep the axis over 3 or more positive values",
                             field="convergence.axis")
        if self.mode == "grid" and any(len(v) > 1 for k, v in axes.items()
                                       if k != conv.axis):
            raise SweepError("other axes have several values", field="convergence.axis",
                             fix="fit one curve: give every other axis one value")
        if not (_is_number(conv.confidence) and 0 < conv.confidence < 1):
            raise SweepError(f"confidence={conv.confidence!r}", field="convergence.confidence",
                             fix="give a level in (0, 1), e.g. 0.95")
        if self.task == "convergence":
            ref = conv.reference
            if not (_is_number(ref) and np.isfinite(ref)):
                raise SweepError(f"reference={ref!r}", field="convergence.reference",
                                 fix="give the limit value of the axis as a number, e.g. "
                                     "reference = 0.0")
            if float(ref) in vals:
                raise SweepError(f"the reference {ref!r} is a value of the axis",
                                 field="convergence.reference",
                                 fix="leave the limit value out of the axis")
            if conv.variable != "distance":
                raise SweepError(f"variable {conv.variable!r}", field="convergence.variable",
                                 fix="the convergence task stores 'distance'")
            if conv.axis == "seed":
                raise SweepError("the convergence axis is 'seed'", field="convergence.axis",
                                 fix="fit against a parameter or an initial value")
        elif conv.reference is not None:
            raise SweepError("a reference is given but the task is not 'convergence'",
                             field="convergence.reference",
                             fix="use task 'convergence', or drop the reference")
        elif self.task == "simulate":
            raise SweepError("simulate stores trajectories, not one error per point",
                             field="convergence.variable",
                             fix="use task 'convergence' (the distance to the run at a "
                                 "reference value), or a task that returns a scalar")
        elif self.task == "train" and conv.variable not in TRAIN_SCALARS:
            raise SweepError(f"the train task has no scalar {conv.variable!r}",
                             field="convergence.variable",
                             fix=f"use one of {', '.join(TRAIN_SCALARS)}")
        object.__setattr__(self, "convergence", conv)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SweepSpec:
        """The sweep of a problem file's ``[sweep]`` table (a path or a shipped name).

        See :func:`cognitive_action.sweeps.section.load_sweep_file`, which also returns
        the file's scheduler address, worker count and chunk size.

        Raises
        ------
        ProblemFileError
            The file is malformed, has no ``[sweep]`` table or a bad value in it
            (``file:sweep.<field>`` and a fix).
        """
        from cognitive_action.sweeps.section import load_sweep_file

        return load_sweep_file(path).spec
    # -- the points ----------------------------------------------------------------------
    def coord_name(self, axis: str) -> str:
        """Name of an axis in the result: the axis name, ``<state>_initial`` for a state
        (the state's trajectory keeps the state's name)."""
        return f"{axis}_initial" if axis in self.state_names else axis

    @functools.cached_property
    def state_names(self) -> frozenset[str]:
        """Names of the problem's states: coordinates and their velocities ``<q>_dot``."""
        return frozenset(_problem_names(self.problem)[1])

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimensions of the result: the axes' coordinate names (grid) or ``("point",)``."""
        return tuple(map(self.coord_name, self.axes)) if self.mode == "grid" else ("point",)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the result over :attr:`dims`."""
        if self.mode == "grid":
            return tuple(len(v) for v in self.axes.values())
        return (len(next(iter(self.axes.values()))),)

    @property
    def size(self) -> int:
        """Number of points (``n_points`` is the output grid of ``simulate``)."""
        return int(np.prod(self.shape))

    def points(self) -> list[dict[str, Any]]:
        """Every point as ``{axis: value}``, in C order over :attr:`dims`."""
        names = list(self.axes)
        if self.mode == "grid":
            return [dict(zip(names, combo)) for combo in itertools.product(*self.axes.values())]
        return [dict(zip(names, row)) for row in zip(*self.axes.values())]

    def point(self, index: int) -> dict[str, Any]:
        """The point with flat index ``index`` (C order over :attr:`dims`)."""
        if not 0 <= index < self.size:
            raise SweepError(f"point {index} of a sweep of {self.size}", field="index",
                             fix=f"use an index in [0, {self.size})")
        names = list(self.axes)
        if self.mode == "grid":
            where = np.unravel_index(index, self.shape)
            return {k: self.axes[k][int(j)] for k, j in zip(names, where)}
        return {k: self.axes[k][index] for k in names}

    def output_times(self) -> np.ndarray:
        """The output times of ``simulate``."""
        times = self.times
        if isinstance(times, (tuple, list)) and len(times) == 2:
            return np.linspace(float(times[0]), float(times[1]), self.n_points)
        return np.asarray(times, dtype=float).ravel()

    def fingerprint(self) -> str:
        """A digest of everything that decides the results (the store refuses another).

        The same in every process (no ``hash()``-ordered text): a rerun finds its store.
        """
        text = json.dumps({
            "problem": self.problem_digest,
            "axes": {k: list(v) for k, v in self.axes.items()}, "mode": self.mode,
            "task": self.task, "values": sorted((k, float(v)) for k, v in self.values.items()),
            "initial": sorted((k, float(v)) for k, v in self.initial.items()),
            "times": self.output_times().tolist(), "outputs": self.outputs,
            "options": repr(self.options),
            **({"reference": float(self.convergence.reference)}  # type: ignore[union-attr]
               if self.task == "convergence" else {}),
            **({"epochs": self.epochs, "learning_rate": float(self.learning_rate),
                "data": _data_digest(self.data)} if self.task == "train" else {})},
            sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def system_key(self) -> str:
        """Key of the compiled system in a worker's cache (the problem part of the spec)."""
        return self.problem_digest

    @functools.cached_property
    def problem_digest(self) -> str:
        """SHA-256 of the problem's declaration (printing a large network's Lagrangian
        takes a tenth of a second: computed once per spec)."""
        return hashlib.sha256(json.dumps(_problem_text(self.problem)).encode()).hexdigest()


def _problem_text(problem: Problem) -> list[Any]:
    """The declaration of a problem as text, the same in every process (SymPy's printer
    orders terms canonically): name, coordinates, masses, weight, Lagrangian,
    constraints, signals, parameters, the non-holonomic rule."""
    action = problem.action
    masses = getattr(action, "mass_matrix", None)
    if masses is None:
        masses = getattr(action, "masses", None)
    return [problem.name, [str(q) for q in problem.coordinates], str(masses),
            str(action.weight), str(action.lagrangian),
            [[c.name, str(c.kind), str(c.expr)] for c in problem.constraints],
            [str(x) for x in problem.signals], [str(p) for p in problem.parameters],
            str(problem.nonholonomic)]
