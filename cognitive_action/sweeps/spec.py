"""The sweep spec: a problem, named axes, and what to compute at every point.

A :class:`SweepSpec` is validated when it is built: an axis must name a parameter of the
problem, a state (an initial value) or ``"seed"``, hold at least one value of the right
type; a zipped table needs axes of one length; the task must be ``"simulate"``,
``"verify"`` or a name given to :func:`register_task`. Every mistake raises
:class:`~cognitive_action.errors.SweepError` (with the field and a fix) before any work.

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
_BUILTIN = ("simulate", "verify")


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
        The task name (not ``"simulate"`` or ``"verify"``).
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
                         fix="pick a non-empty name other than 'simulate' and 'verify'",
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
        The scalar result variable holding the error at every point.
    confidence
        Level of the confidence interval of the order.
    """

    axis: str
    variable: str
    confidence: float = 0.95


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


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


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
        ``"seed"`` (integers), each with at least one value.
    mode
        ``"grid"``: the Cartesian product of the axes (dims in the order given);
        ``"zip"``: a table, point ``i`` takes the ``i``-th value of every axis.
    task
        ``"simulate"`` (the chosen ``outputs`` at the output ``times``), ``"verify"``
        (status and value of every check of the report) or a :func:`register_task` name.
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

    Raises
    ------
    SweepError
        Unknown, empty or wrongly typed axis; zipped axes of different lengths; unknown
        task; a convergence axis or variable that does not fit the sweep.
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

    def __post_init__(self) -> None:
        problem, values, initial = _load(self.problem)
        object.__setattr__(self, "problem", problem)
        object.__setattr__(self, "values", {**values, **dict(self.values)})
        object.__setattr__(self, "initial", {**initial, **dict(self.initial)})
        params, states = _problem_names(problem)
        if not isinstance(self.axes, Mapping) or not self.axes:
            raise SweepError("a sweep needs at least one axis", field="axes",
                             fix="pass axes={'name': [values, ...]}")
        axes: dict[str, tuple] = {}
        for name, vals in self.axes.items():
            where = f"axes.{name}"
            if name not in params and name not in states and name != "seed":
                raise SweepError(f"{name!r} is neither a parameter, a state nor 'seed'",
                                 fix=f"name one of: {', '.join(params + states + ['seed'])}",
                                 field=where)
            if isinstance(vals, (str, bytes, Mapping)) or not hasattr(vals, "__iter__"):
                raise SweepError(f"values of type {type(vals).__name__}", field=where,
                                 fix="give a list or 1-d array of values")
            vals = tuple(np.asarray(vals).ravel().tolist()) if isinstance(
                vals, np.ndarray) else tuple(vals)
            if not vals:
                raise SweepError("the axis is empty", fix="give at least one value",
                                 field=where)
            if name == "seed":
                bad = [v for v in vals if not isinstance(v, (int, np.integer))
                       or isinstance(v, bool)]
                fix = "seeds are integers"
            else:
                bad = [v for v in vals if not _is_number(v) or not np.isfinite(v)]
                fix = "parameter and state values are finite numbers"
            if bad:
                raise SweepError(f"value {bad[0]!r} of type {type(bad[0]).__name__}",
                                 fix=fix, field=where)
            if len(set(vals)) != len(vals):
                raise SweepError("the axis repeats a value", field=where,
                                 fix="give each value once (coordinates must be unique)")
            axes[name] = tuple(int(v) if name == "seed" else float(v) for v in vals)
        object.__setattr__(self, "axes", axes)
        if self.mode not in ("grid", "zip"):
            raise SweepError(f"unknown mode {self.mode!r}", fix="use 'grid' or 'zip'",
                             field="mode")
        if self.mode == "zip" and len({len(v) for v in axes.values()}) != 1:
            raise SweepError("zipped axes have different lengths", field="axes",
                             fix="give every axis of a 'zip' sweep the same number of values")
        if self.task not in registered_tasks():
            raise SweepError(f"unknown task {self.task!r}", field="task",
                             fix=f"use one of {', '.join(registered_tasks())} "
                                 "(register_task adds one)")
        if self.outputs is not None:
            outputs = tuple(self.outputs)
            unknown = [o for o in outputs if o not in states]
            if unknown or not outputs:
                raise SweepError(f"unknown outputs {unknown}", field="outputs",
                                 fix=f"choose among the states {', '.join(states)}")
            object.__setattr__(self, "outputs", outputs)
        if not isinstance(self.n_points, int) or self.n_points < 1:
            raise SweepError(f"n_points={self.n_points!r}", field="n_points",
                             fix="give a positive integer")
        if self.options is not None and not isinstance(self.options, SolverOptions):
            raise SweepError(f"options of type {type(self.options).__name__}",
                             fix="pass a SolverOptions", field="options")
        conv = self.convergence
        if conv is not None:
            if isinstance(conv, tuple) and len(conv) == 2:
                conv = Convergence(*conv)
            if not isinstance(conv, Convergence):
                raise SweepError(f"convergence of type {type(conv).__name__}",
                                 fix="pass Convergence(axis, variable)", field="convergence")
            if conv.axis not in axes:
                raise SweepError(f"convergence axis {conv.axis!r} is not an axis",
                                 fix=f"use one of {', '.join(axes)}", field="convergence")
            if len(axes[conv.axis]) < 3 or any(v <= 0 for v in axes[conv.axis]):
                raise SweepError("a convergence fit needs at least 3 positive axis values",
                                 fix="sweep the axis over 3 or more positive values",
                                 field="convergence")
            if self.mode == "grid" and any(len(v) > 1 for k, v in axes.items()
                                           if k != conv.axis):
                raise SweepError("other axes have several values", field="convergence",
                                 fix="fit one curve: give every other axis one value")
            object.__setattr__(self, "convergence", conv)

    # -- the points ----------------------------------------------------------------------
    def coord_name(self, axis: str) -> str:
        """Name of an axis in the result: the axis name, ``<state>_initial`` for a state
        (the state's trajectory keeps the state's name)."""
        _, states = _problem_names(self.problem)
        return f"{axis}_initial" if axis in states else axis

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
        """A digest of everything that decides the results (the store refuses another)."""
        problem = self.problem
        text = json.dumps({
            "problem": [problem.name, repr(problem), str(getattr(problem, "_lagrangian", "")),
                        [str(c) for c in getattr(problem, "constraints", ())],
                        sorted(str(p) for p in problem.parameters)],
            "axes": {k: list(v) for k, v in self.axes.items()}, "mode": self.mode,
            "task": self.task, "values": sorted((k, float(v)) for k, v in self.values.items()),
            "initial": sorted((k, float(v)) for k, v in self.initial.items()),
            "times": self.output_times().tolist(), "outputs": self.outputs,
            "options": repr(self.options)}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def system_key(self) -> str:
        """Key of the compiled system in a worker's cache (the problem part of the spec)."""
        problem = self.problem
        text = "|".join([problem.name, repr(problem), str(getattr(problem, "_lagrangian", "")),
                         str([str(c) for c in getattr(problem, "constraints", ())]),
                         str(sorted(str(p) for p in problem.parameters))])
        return hashlib.sha256(text.encode()).hexdigest()
