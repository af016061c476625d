"""The ``[sweep]`` table of a problem file, read into a :class:`~.spec.SweepSpec`.

The loader (:mod:`cognitive_action.problem_files.loader`, a lower layer) keeps the table
as written; this module checks it and builds the sweep, before any work: every bad value
raises :class:`~cognitive_action.errors.ProblemFileError` naming ``file:sweep.<field>``
with a fix. A problem file with a sweep::

    name = "damped"
    coordinates = ["x"]
    parameters = { m = 1.0, k = 4.0, theta = 0.1 }
    [action]
    masses = "m"
    weight = "exp(theta*t)"
    lagrangian = "-exp(theta*t)*k*x**2/2"
    [initial]
    values = { x = 1.0, x_dot = 0.0 }

    [sweep]
    task = "convergence"       # simulate, verify, train, convergence
    mode = "grid"              # or "zip": point i takes the i-th value of every axis
    axes = { theta = [0.4, 0.2, 0.1, 0.05] }   # parameters, states (initial values), seed
    times = [0.0, 5.0]         # default: 0 to [simulate] t_end
    points = 51                # output times; default: [simulate] points
    outputs = ["x"]            # states kept (default: all)
    # method, rtol, atol       # the solver (default: [simulate]'s)
    # epochs, learning_rate    # train (default: [train]'s); axes learning_rate, law
    # scheduler = "tcp://10.0.0.5:8786"    # an existing Dask cluster (default: local)
    # workers = 2              # worker processes of the local cluster
    # chunk_size = 8           # points per Dask task (default: about 4 tasks per worker)
    [sweep.convergence]
    axis = "theta"
    reference = 0.0            # convergence task: the limit value of the axis
    # variable = "distance"    # the scalar fitted (other tasks: one of their results)
    # confidence = 0.95

Examples
--------
>>> sweep = load_sweep_file(EXAMPLE)
>>> sweep.spec.task, sweep.spec.axes["theta"][:2], sweep.workers
('convergence', (0.04, 0.02), 2)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cognitive_action.errors import CognitiveActionError, ProblemFileError, SweepError
from cognitive_action.problem_files import schema
from cognitive_action.sweeps.spec import Convergence, SweepSpec

__all__ = ["SweepFile", "SWEEP_KEYS", "CONVERGENCE_KEYS", "load_sweep_file",
           "sweep_from_problem", "EXAMPLE"]

#: Keys of a ``[sweep]`` table (the problem-file schema's, documented in
#: docs/problem_files.md).
SWEEP_KEYS = tuple(k.name for k in schema.section("sweep").keys)
#: Keys of a ``[sweep.convergence]`` table.
CONVERGENCE_KEYS = tuple(k.name for k in schema.section("sweep.convergence").keys)
#: The example shipped with the package's sources (examples/sweep_damped.toml).
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep_damped.toml"

#: SweepSpec fields whose file key has another name.
_FILE_KEY = {"n_points": "points", "options": "method"}


@dataclass(frozen=True)
class SweepFile:
    """A problem file's sweep: the spec and how to run it.

    Attributes
    ----------
    spec
        The :class:`~cognitive_action.sweeps.spec.SweepSpec`.
    name, path
        The problem's name and the file.
    scheduler
        The file's Dask scheduler address, or ``None`` (a local cluster).
    workers, chunk_size
        Worker processes of the local cluster, points per Dask task (``None``: the
        default of :func:`~cognitive_action.sweeps.engine.chunks_of`).
    """

    spec: SweepSpec
    name: str
    path: str
    scheduler: str | None = None
    workers: int = 2
    chunk_size: int | None = None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sweep_from_problem(problem: Any, *, initial: Mapping[str, float] | None = None
                       ) -> SweepFile:
    """Read the ``[sweep]`` table of a loaded problem file.

    Parameters
    ----------
    problem
        A :class:`~cognitive_action.problem_files.loader.ProblemSpec` (its ``sweep``
        table as written, its parameter values, ``[initial] values``, ``[simulate]``,
        ``[train]`` and ``[data]`` tables give the defaults).
    initial
        The initial state shared by every point (default: the file's ``[initial]
        values``); the workflow passes the completed consistent state of a network.

    Returns
    -------
    SweepFile

    Raises
    ------
    ProblemFileError
        No ``[sweep]`` table, an unknown key, or a bad value (``file:sweep.<field>``).
    """
    path = problem.path

    def fail(field: str, message: str, fix: str) -> ProblemFileError:
        return ProblemFileError(message, fix=fix, path=path, field=f"sweep.{field}")

    raw = getattr(problem, "sweep", None)
    if not raw:
        raise ProblemFileError("the file has no [sweep] table", path=path, field="sweep",
                               fix='add [sweep] with axes = { name = [values] } and task = '
                                   '"simulate" (see docs/sweeps.md)')
    if not isinstance(raw, Mapping):
        raise fail("", "must be a table", "write it as [sweep] with key = value lines")
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise fail(unknown[0], "unknown key", f"allowed keys are {', '.join(SWEEP_KEYS)}")
    if "axes" not in raw:
        raise fail("axes", "missing", "add axes = { name = [values, ...] }")
    axes = raw["axes"]
    if not isinstance(axes, Mapping):
        raise fail("axes", f"must be a table, got {type(axes).__name__}",
                   "write axes = { name = [values, ...] }")
    for key in ("task", "mode", "method", "scheduler"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise fail(key, f"must be a non-empty string, got {raw[key]!r}",
                       {"task": 'e.g. task = "simulate"', "mode": 'mode = "grid" or "zip"',
                        "method": 'e.g. method = "cvodes"',
                        "scheduler": 'e.g. scheduler = "tcp://10.0.0.5:8786", or remove '
                                     'it for a local cluster'}[key])
    examples = {"workers": 2, "chunk_size": 8, "points": 51, "epochs": 3}
    for key, example in examples.items():
        if key in raw:
            v, low = raw[key], 0 if key == "epochs" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise fail(key, f"must be an integer >= {low}, got {v!r}",
                           f"e.g. {key} = {example}")
    for key in ("rtol", "atol", "learning_rate"):
        if key in raw and (not _number(raw[key]) or not 0 < raw[key] < float("inf")):
            raise fail(key, f"must be a positive number, got {raw[key]!r}",
                       f"e.g. {key} = {dict(rtol=1e-8, atol=1e-10, learning_rate=0.05)[key]}")
    def from_simulate(key: str, kind: type, default: Any) -> Any:
        value = problem.simulate.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind is int and not isinstance(value, int)) or not value > 0:
            raise ProblemFileError(f"must be a positive {kind.__name__}, got {value!r}",
                                   fix=f"e.g. {key} = {default}", path=path,
                                   field=f"simulate.{key}")
        return kind(value)

    times: Any = (0.0, from_simulate("t_end", float, 1.0))
    if "times" in raw:
        t = raw["times"]
        if not isinstance(t, list) or len(t) != 2 or not all(map(_number, t)) \
                or not t[1] > t[0]:
            raise fail("times", f"must be [t0, tf] with tf > t0, got {t!r}",
                       "e.g. times = [0.0, 5.0]")
        times = (float(t[0]), float(t[1]))
    outputs = raw.get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or not outputs
                                or not all(isinstance(o, str) for o in outputs)):
        raise fail("outputs", f"must be a list of state names, got {outputs!r}",
                   'e.g. outputs = ["q1", "q2"]')
    solver = {k: problem.simulate[k] for k in ("method", "rtol", "atol")
              if k in problem.simulate} | {k: raw[k] for k in ("method", "rtol", "atol")
                                          if k in raw}
    options = None
    if solver:
        from cognitive_action.compile.options import SolverOptions

        try:
            options = SolverOptions(**solver)
        except CognitiveActionError as exc:
            mine = [k for k in ("method", "rtol", "atol") if k in raw]
            where = f"sweep.{mine[0]}" if mine else \
                f"simulate.{next(k for k in ('method', 'rtol', 'atol') if k in solver)}"
            raise ProblemFileError(exc.message, fix=exc.fix or "see docs/compile.md",
                                   path=path, field=where) from exc
    convergence = None
    if "convergence" in raw:
        c = raw["convergence"]
        if not isinstance(c, Mapping):
            raise fail("convergence", f"must be a table, got {type(c).__name__}",
                       'write [sweep.convergence] with axis = "..."')
        bad = sorted(set(c) - set(CONVERGENCE_KEYS))
        if bad:
            raise fail(f"convergence.{bad[0]}", "unknown key",
                       f"allowed keys are {', '.join(CONVERGENCE_KEYS)}")
        if not isinstance(c.get("axis"), str):
            raise fail("convergence.axis", f"must be an axis name, got {c.get('axis')!r}",
                       'e.g. axis = "theta"')
        if "variable" in c and not isinstance(c["variable"], str):
            raise fail("convergence.variable", f"must be a string, got {c['variable']!r}",
                       'e.g. variable = "distance"')
        for key in ("reference", "confidence"):
            if key in c and not _number(c[key]):
                raise fail(f"convergence.{key}", f"must be a number, got {c[key]!r}",
                           f"e.g. {key} = {dict(reference=0.0, confidence=0.95)[key]}")
        convergence = Convergence(c["axis"], str(c.get("variable", "distance")),
                                  float(c.get("confidence", 0.95)),
                                  None if "reference" not in c else float(c["reference"]))
    task = raw.get("task", "simulate")
    train = problem.train
    kwargs: dict[str, Any] = {}
    if task == "train":
        kwargs = {"epochs": int(raw.get("epochs", train.get("epochs", 3))),
                  "learning_rate": float(raw.get("learning_rate",
                                                 train.get("learning_rate", 0.05))),
                  "data": dict(problem.data)}
    elif "epochs" in raw or "learning_rate" in raw:
        key = "epochs" if "epochs" in raw else "learning_rate"
        raise fail(key, f"{key} is a setting of the train task, not of {task!r}",
                   'remove it, or use task = "train"')
    points = raw["points"] if "points" in raw else from_simulate("points", int, 101)
    try:
        spec = SweepSpec(problem.problem, axes=dict(axes), mode=raw.get("mode", "grid"),
                         task=task, values=dict(problem.values),
                         initial=dict(problem.initial.get("values", {})
                                      if initial is None else initial),
                         times=times, n_points=points,
                         outputs=None if outputs is None else tuple(outputs),
                         options=options, convergence=convergence, **kwargs)
    except SweepError as exc:
        field = exc.field or ""
        head, _, rest = field.partition(".")
        key = _FILE_KEY.get(head, head) + (f".{rest}" if rest else "")
        message = exc.message
        prefix = f"{field}: "
        raise fail(key, message[len(prefix):] if message.startswith(prefix) else message,
                   exc.fix or "see docs/sweeps.md") from exc
    return SweepFile(spec=spec, name=problem.name, path=path,
                     scheduler=raw.get("scheduler"), workers=int(raw.get("workers", 2)),
                     chunk_size=raw.get("chunk_size"))


def load_sweep_file(path: str | os.PathLike[str]) -> SweepFile:
    """Load a problem file (a path or a shipped name) and read its ``[sweep]`` table.

    Raises
    ------
    ProblemFileError
        A malformed file, no ``[sweep]`` table, or a bad value in it.
    """
    from cognitive_action.problem_files.loader import load_problem

    return sweep_from_problem(load_problem(path))
