"""Batched runs: one compiled system over a grid of parameters or initial states.

:func:`simulate_batch` compiles the whole trajectory of a
:class:`~cognitive_action.compile.system.CompiledSystem` once, as a CasADi function
``(y0, p) → Y`` (the integrator with its output grid, or the interval-by-interval loop
under ``mapaccum`` for projection and long collocation grids, exactly as
:func:`~cognitive_action.compile.simulate.simulate` builds it), and evaluates it on
chunks of the batch with ``Function.map(n, "thread", n_threads)``. Each run integrates
the same equations as a serial :func:`simulate` call (eq. 8-10 of Betti & Gori 2020, or
eq. 19-20 with a speed), so batched and serial trajectories agree to rounding.

The batch is described by named axes: ``grid={"theta": [...], "m_x": [...]}`` is an
outer product (one axis per name), ``table={"m": [...], "k": [...]}`` zips columns of
equal length into one axis (``table_axis``, default ``"run"``). Names are parameters
(``system.parameters``) or states (``system.states``, overriding entries of ``y0``).
The result, :class:`BatchSimulation`, is an array with named axes, e.g.
``("theta", "m_x", "time", "state")``, with ``sel`` by coordinate value, and it reports
every failed run (which grid point, and the typed error) instead of hiding it: one
failing run never loses the others.

Examples
--------
The ``exp(θt)``-weighted oscillator ``m ẍ + θ m ẋ + k x = 0`` over three values of θ:

>>> import numpy as np, sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> x, = S.coordinates("x"); m, k, theta = S.parameters("m k theta")
>>> w = sp.exp(theta * S.t)
>>> osc = Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
...               parameters=[m, k, theta])
>>> batch = simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0},
...                        {"m": 1.0, "k": 4.0}, grid={"theta": [0.0, 0.1, 0.2]},
...                        n_points=3, progress=False)
>>> batch.dims, batch.values.shape
(('theta', 'time', 'state'), (3, 3, 2))
>>> np.allclose(batch.sel(theta=0.0, state="x").values, np.cos(2 * batch.times), atol=1e-7)
True
"""

from __future__ import annotations

import difflib
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import casadi as ca
import numpy as np

from cognitive_action.compile.integration import (
    SEGMENTED_COLLOCATION,
    IntegratorSpec,
    along_trajectory,
    check_finite,
    check_initial_state,
    check_stability,
    direct_function,
    initial_algebraic,
    integrator_spec,
    locate_failure,
    output_grid,
    quiet,
    segmented_function,
)
from cognitive_action.compile.options import SolverOptions, check_for_system, resolve_options
from cognitive_action.compile.simulate import Simulation
from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.errors import (
    CognitiveActionError,
    CompileError,
    OptionalDependencyError,
    SimulationError,
)

__all__ = ["BatchSimulation", "NamedArray", "OptionalDependencyError", "simulate_batch"]

_PROGRESS_CHUNKS = 20  # chunks of a batch with a progress bar (one bar step per chunk)


# -- arrays with named axes ---------------------------------------------------------------------
@dataclass
class NamedArray:
    """An ndarray with named axes and coordinates (a minimal, dependency-free xarray).

    Attributes
    ----------
    dims
        Axis names, one per axis of ``values``.
    coords
        Coordinate values per axis name (numbers, or state names for ``"state"``).
    values
        The data.
    aux
        Non-dimension coordinates: ``name → (axis name, values)``, e.g. the zipped
        columns of a table, which all live on the table's axis.
    """

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    values: np.ndarray
    aux: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def sel(self, **selection) -> NamedArray:
        """Select by coordinate value.

        A scalar drops the axis, a list keeps it with the chosen entries. Numbers match
        exactly up to a relative 1e-12; an auxiliary coordinate (a table column) selects
        on its axis.

        Raises
        ------
        CompileError
            An unknown axis (with a suggestion) or a value that is not a coordinate.
        """
        index = self._index(selection)
        return self._take(index)

    def isel(self, **selection) -> NamedArray:
        """Select by integer position (a scalar drops the axis)."""
        index: dict[str, object] = {}
        for name, pos in selection.items():
            if name not in self.dims:
                raise CompileError(f"{name!r} is not an axis of this array (axes: "
                                   f"{', '.join(self.dims)})",
                                   fix=_suggest(name, self.dims))
            index[name] = pos
        return self._take(index)

    def _index(self, selection: Mapping[str, object]) -> dict[str, object]:
        index: dict[str, object] = {}
        for name, want in selection.items():
            if name in self.dims:
                axis, coord = name, np.asarray(self.coords[name])
            elif name in self.aux:
                axis, coord = self.aux[name][0], np.asarray(self.aux[name][1])
            else:
                raise CompileError(
                    f"{name!r} is not an axis or coordinate of this array (axes: "
                    f"{', '.join(self.dims)})",
                    fix=_suggest(name, list(self.dims) + list(self.aux)))
            if axis in index:
                raise CompileError(f"axis {axis!r} selected twice (via {name!r})",
                                   fix="select each axis once")
            many = isinstance(want, (list, tuple, np.ndarray))
            wanted = list(want) if many else [want]
            pos = [_position(name, coord, w) for w in wanted]
            index[axis] = pos if many else pos[0]
        return index

    def _take(self, index: Mapping[str, object]) -> NamedArray:
        values = self.values
        for ax in reversed(range(len(self.dims))):  # last axis first: positions stay valid
            d = self.dims[ax]
            if d in index:
                k = index[d]
                values = np.take(values, list(k) if isinstance(k, (list, tuple, np.ndarray))
                                 else int(k), axis=ax)
        dims, coords = [], {}
        for d in self.dims:
            k = index.get(d)
            if k is None:
                dims.append(d)
                coords[d] = self.coords[d]
            elif isinstance(k, (list, tuple, np.ndarray)):
                dims.append(d)
                coords[d] = np.asarray(self.coords[d])[list(k)]
        aux = {}
        for name, (d, vals) in self.aux.items():
            if d in dims:
                k = index.get(d)
                aux[name] = (d, np.asarray(vals) if k is None else np.asarray(vals)[list(k)])
        return NamedArray(tuple(dims), coords, values, aux)

    def to_xarray(self):
        """The same data as an ``xarray.DataArray`` (needs xarray, an optional package).

        Raises
        ------
        OptionalDependencyError
            xarray is not installed.
        """
        try:
            import xarray
        except ImportError:
            raise OptionalDependencyError(
                "to_xarray needs the package xarray, which is not installed",
                fix="pip install xarray, or use .values, .dims and .coords directly") from None
        coords = {d: self.coords[d] for d in self.dims}
        coords |= {n: (d, v) for n, (d, v) in self.aux.items()}
        return xarray.DataArray(self.values, dims=self.dims, coords=coords)


def _position(name: str, coord: np.ndarray, want) -> int:
    if coord.dtype.kind in "fiu":
        try:
            w = float(want)
        except (TypeError, ValueError):
            raise CompileError(f"{want!r} is not a number for {name!r}",
                               fix=f"pick one of {_values(coord)}") from None
        hit = np.flatnonzero(np.isclose(coord, w, rtol=1e-12, atol=0.0) | (coord == w))
    else:
        hit = np.flatnonzero(coord == want)
    if hit.size == 0:
        raise CompileError(f"{want!r} is not a coordinate of {name!r}",
                           fix=f"pick one of {_values(coord)}" + (
                               f" ({_suggest(str(want), [str(c) for c in coord])})"
                               if coord.dtype.kind not in "fiu" else ""))
    return int(hit[0])


def _values(coord: np.ndarray, k: int = 8) -> str:
    vals = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in coord[:k]]
    return ", ".join(vals) + (f", … ({coord.size} in all)" if coord.size > k else "")


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    shown = ", ".join(list(known)[:8])
    return f"use names among {shown}" + (" …" if len(known) > 8 else "")


# -- the result ---------------------------------------------------------------------------------
@dataclass
class BatchSimulation:
    """The result of :func:`simulate_batch`: trajectories with named axes.

    Attributes
    ----------
    system
        The compiled system that ran.
    data
        The trajectories: a :class:`NamedArray` with axes ``(*batch_dims, "time",
        "state")``. Failed runs hold NaN there and are listed in :attr:`errors`.
    params
        Full parameter vectors per run, shape ``(*batch_shape, n_parameters)``.
    initial
        Initial states per run, shape ``(*batch_shape, n_states)``.
    failed
        Boolean mask, shape ``batch_shape``: runs that did not produce a trajectory.
    errors
        ``{batch index: error}`` for the failed runs: the typed error that
        :func:`simulate` would have raised for that grid point.
    constraint_values, constraint_rates
        ``G`` and ``Ġ`` per run, shape ``(*batch_shape, n_t, n_constraints)``, NaN for
        failed runs; ``None`` without constraints.
    method, stabilization
        As in :class:`~cognitive_action.compile.simulate.Simulation`.
    stats
        ``build_time``, ``run_time`` (seconds), ``n_runs``, ``n_failed``,
        ``n_threads``, ``chunk_size``, ``n_chunks``, ``serial_reruns`` (runs repeated
        one by one because their chunk failed).
    """

    system: CompiledSystem
    data: NamedArray
    params: np.ndarray
    initial: np.ndarray
    failed: np.ndarray
    errors: dict[tuple[int, ...], CognitiveActionError]
    constraint_values: np.ndarray | None
    constraint_rates: np.ndarray | None
    method: str
    stabilization: str | None
    stats: dict

    # -- axes ------------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[str, ...]:
        """Axis names of :attr:`values`, batch axes first, then ``"time"``, ``"state"``."""
        return self.data.dims

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Coordinates per axis (grid values, output times, state names)."""
        return self.data.coords

    @property
    def values(self) -> np.ndarray:
        """The trajectories, shape ``(*batch_shape, n_t, n_states)``."""
        return self.data.values

    @property
    def batch_dims(self) -> tuple[str, ...]:
        return self.dims[:-2]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.values.shape[:-2]

    @property
    def times(self) -> np.ndarray:
        return self.coords["time"]

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the runs that succeeded."""
        return ~self.failed

    def point(self, index: tuple[int, ...]) -> dict[str, float]:
        """The grid values (by name) of the run at a batch index."""
        out: dict[str, float] = {}
        for d, i in zip(self.batch_dims, index):
            cols = [(n, v) for n, (ax, v) in self.data.aux.items() if ax == d]
            if cols:
                out |= {n: float(v[i]) for n, v in cols}
            else:
                out[d] = float(self.coords[d][i])
        return out

    @property
    def failures(self) -> list[tuple[dict[str, float], CognitiveActionError]]:
        """``(grid values, error)`` for every failed run, in batch order."""
        return [(self.point(i), e) for i, e in sorted(self.errors.items())]

    # -- diagnostics -----------------------------------------------------------------------
    @property
    def drift(self) -> np.ndarray | None:
        """``max_j |G_j|`` per run and output time, shape ``(*batch_shape, n_t)``."""
        if self.constraint_values is None:
            return None
        if self.constraint_values.shape[-1] == 0:
            return np.zeros(self.values.shape[:-1])
        return np.max(np.abs(self.constraint_values), axis=-1)

    @property
    def max_drift(self) -> np.ndarray:
        """The largest ``|G|`` per run, shape ``batch_shape`` (NaN for failed runs)."""
        d = self.drift
        if d is None:
            return np.where(self.failed, np.nan, 0.0)
        return np.max(d, axis=-1)

    # -- access ----------------------------------------------------------------------------
    def sel(self, *, allow_failed: bool = False, **selection) -> NamedArray:
        """Select by coordinate value, e.g. ``sel(theta=0.4, state="x3")``.

        Parameters
        ----------
        allow_failed
            Return NaN for failed runs in the selection instead of raising.
        **selection
            Axis (or table column) name → a value (drops the axis) or a list of values.

        Raises
        ------
        SimulationError
            The selection holds a failed run (naming its grid point and the error).
        CompileError
            Unknown axis or coordinate value.
        """
        index = self.data._index(selection)
        out = self.data._take(index)
        if not allow_failed and self.errors:
            mask = NamedArray(self.batch_dims, {d: self.coords[d] for d in self.batch_dims},
                              self.failed)._take({k: v for k, v in index.items()
                                                  if k in self.batch_dims})
            if np.any(mask.values):
                self._raise_first(index)
        return out

    def run(self, **selection) -> Simulation:
        """One run as a :class:`~cognitive_action.compile.simulate.Simulation` (with
        ``unknowns()``, ``multipliers()``, ...); every batch axis must be selected by
        a scalar.

        Raises
        ------
        SimulationError
            That run failed.
        CompileError
            Not every batch axis selected, or unknown axes or values.
        """
        index = self.data._index(selection)
        missing = [d for d in self.batch_dims
                   if not isinstance(index.get(d), (int, np.integer))]
        if missing or set(index) - set(self.batch_dims):
            axes = ", ".join(self.batch_dims)
            raise CompileError(f"select one value on every batch axis ({axes}); missing or "
                               f"non-scalar: {', '.join(missing) or 'none'}",
                               fix="e.g. batch.run(theta=0.4) on a batch with one axis")
        key = tuple(int(index[d]) for d in self.batch_dims)
        if self.failed[key]:
            self._raise_first(index, key)
        cv = None if self.constraint_values is None else self.constraint_values[key]
        cr = None if self.constraint_rates is None else self.constraint_rates[key]
        return Simulation(system=self.system, times=self.times, y=self.values[key].copy(),
                          params=self.params[key].copy(), method=self.method,
                          stats={"batch": True}, constraint_values=cv, constraint_rates=cr,
                          stabilization=self.stabilization)

    def to_xarray(self):
        """The trajectories as an ``xarray.DataArray`` (needs the optional xarray)."""
        return self.data.to_xarray()

    def _raise_first(self, index: Mapping[str, object], key=None) -> None:
        """Raise for the first failed run in a selection (or the run at ``key``)."""
        if key is None:
            for k in sorted(self.errors):
                if all(_hits(index.get(d), i) for d, i in zip(self.batch_dims, k)):
                    key = k
                    break
        err = self.errors[key]
        where = ", ".join(f"{n} = {v:g}" for n, v in self.point(key).items())
        raise SimulationError(
            f"the run at {where} failed ({len(self.errors)} of {self.failed.size} runs "
            f"failed): {err}",
            fix="select successful runs (batch.ok), inspect batch.failures, or pass "
            "allow_failed=True to get NaN for failed runs",
            time=getattr(err, "time", None), state_norm=getattr(err, "state_norm", None))


def _hits(sel, i: int) -> bool:
    if sel is None:
        return True
    if isinstance(sel, (list, tuple, np.ndarray)):
        return i in list(sel)
    return int(sel) == i


# -- the batch description ----------------------------------------------------------------------
@dataclass
class _Batch:
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    aux: dict[str, tuple[str, np.ndarray]]
    shape: tuple[int, ...]
    names: tuple[str, ...]
    table_axis: str | None

    def points(self) -> list[dict[str, float]]:
        out = []
        for idx in np.ndindex(*self.shape):
            p: dict[str, float] = {}
            for d, i in zip(self.dims, idx):
                if d == self.table_axis:
                    p |= {n: float(v[i]) for n, (_, v) in self.aux.items()}
                else:
                    p[d] = float(self.coords[d][i])
            out.append(p)
        return out


def _column(name: str, values, what: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise CompileError(f"the {what} values of {name!r} are not numbers: {values!r}",
                           fix="give a list or 1-D array of numbers") from None
    if v.ndim != 1:
        raise CompileError(f"the {what} values of {name!r} must be one-dimensional, got "
                           f"shape {v.shape}", fix="give a list or 1-D array of numbers")
    if v.size == 0:
        raise CompileError(f"the {what} values of {name!r} are empty",
                           fix="give at least one value, or drop the name")
    if not np.all(np.isfinite(v)):
        bad = v[~np.isfinite(v)][0]
        raise CompileError(f"the {what} values of {name!r} contain the non-finite {bad}",
                           fix="give finite numbers")
    return v


def _describe(system: CompiledSystem, grid, table, table_axis: str) -> _Batch:
    grid = {} if grid is None else grid
    table = {} if table is None else table
    for arg, what in ((grid, "grid"), (table, "table")):
        if not isinstance(arg, Mapping):
            raise CompileError(f"{what} must be a mapping name → values, got "
                               f"{type(arg).__name__}",
                               fix=f"e.g. {what}={{'theta': [0.0, 0.5]}}")
    if not grid and not table:
        raise CompileError("nothing to batch: grid and table are both empty",
                           fix="give grid={name: values} or table={name: values}, or run "
                           "a single simulation with simulate()")
    known = tuple(system.parameters) + tuple(system.states)
    for name in list(grid) + list(table):
        if not isinstance(name, str) or name not in known:
            raise CompileError(
                f"{name!r} is neither a parameter nor a state of {system.name!r}",
                fix=_suggest(str(name), known))
    both = sorted(set(grid) & set(table))
    if both:
        raise CompileError(f"{', '.join(both)} given in both grid and table",
                           fix="give each name once")
    reserved = {"time", "state"}
    taken = sorted(reserved & (set(grid) | set(table)))
    if taken:
        raise CompileError(f"{', '.join(taken)} cannot be a batch axis: the result's last "
                           "axes are 'time' and 'state'",
                           fix="rename the parameter or state in the problem")
    if table and (table_axis in reserved or table_axis in grid or table_axis in table
                  or table_axis in known):
        raise CompileError(f"the table axis name {table_axis!r} collides with an axis, "
                           f"parameter or state name", fix="pass another table_axis")
    dims, coords, aux, shape = [], {}, {}, []
    for name, vals in grid.items():
        v = _column(name, vals, "grid")
        if np.unique(v).size != v.size:
            raise CompileError(f"the grid values of {name!r} repeat a value",
                               fix="give distinct values (runs are deterministic)")
        dims.append(name)
        coords[name] = v
        shape.append(v.size)
    if table:
        cols = {n: _column(n, v, "table") for n, v in table.items()}
        lengths = {n: c.size for n, c in cols.items()}
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{n}: {k}" for n, k in lengths.items())
            raise CompileError(f"the table columns have different lengths ({listing})",
                               fix="give every table column the same number of values "
                               "(zipped), or use grid= for an outer product")
        n = next(iter(lengths.values()))
        dims.append(table_axis)
        coords[table_axis] = np.arange(n)
        aux = {name: (table_axis, c) for name, c in cols.items()}
        shape.append(n)
    return _Batch(tuple(dims), coords, aux, tuple(shape), tuple(grid) + tuple(table),
                  table_axis if table else None)


# -- the compiled trajectory --------------------------------------------------------------------
def _trajectory_function(system: CompiledSystem, spec: IntegratorSpec, grid: np.ndarray,
                         project: bool, every: int) -> ca.Function:
    """``(y0, p) → Y`` (``n_states × n_t``), the whole run as one CasADi function."""
    segmented = project or (spec.method == "collocation" and len(grid) > SEGMENTED_COLLOCATION)
    key = ("batch-trajectory", spec.key(), grid.tobytes(), project, every)
    hit = system._cache.get(key)
    if hit is not None:
        return hit
    y0 = ca.MX.sym("y0", system.n_states)
    p = ca.MX.sym("p", system.n_parameters)
    if segmented:
        fn = segmented_function(system, spec, grid, project, every)
        n = len(grid) - 1
        Y = fn(y0, ca.DM(grid[:-1]).T, ca.DM(np.diff(grid)).T, ca.repmat(p, 1, n))
        out = ca.horzcat(y0, Y)
    else:
        integ = direct_function(system, spec, grid)
        args = {"x0": y0, "p": p}
        if spec.method == "idas":
            args["z0"] = initial_algebraic(system, float(grid[0]), y0, p)
        out = integ(**args)["xf"]
    hit = ca.Function("trajectory", [y0, p], [out], ["y0", "p"], ["y"])
    system._cache[key] = hit
    return hit


def _mapped(fn: ca.Function, n: int, n_threads: int, cache: dict) -> ca.Function:
    key = (n, n_threads)
    if key not in cache:
        cache[key] = fn.map(n, "serial") if n_threads == 1 else fn.map(n, "thread", n_threads)
    return cache[key]


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- the interface ------------------------------------------------------------------------------
def simulate_batch(system, times, y0, params: Mapping[str, float] | None = None, *,
                   grid: Mapping[str, Sequence[float]] | None = None,
                   table: Mapping[str, Sequence[float]] | None = None,
                   table_axis: str = "run", n_points: int = 101, n_threads: int = 2,
                   chunk_size: int | None = None, signals: Mapping | None = None,
                   options: SolverOptions | None = None, **overrides: Any) -> BatchSimulation:
    """Run one compiled system over a grid of parameters and/or initial states.

    Parameters
    ----------
    system
        A :class:`CompiledSystem`, or anything :func:`compile_system` accepts.
    times
        ``(t0, tf)`` with ``n_points`` output times, or an increasing array (shared by
        every run).
    y0
        The base initial state: a mapping by name, an array in the order of
        ``system.states``, or a callable ``point → mapping or array`` called with each
        run's grid values by name (e.g. to complete consistent initial conditions per
        run with ``complete_initial_conditions``). Grid names that are states override
        the entries it gives.
    params
        The base parameter values by name (names missing are looked up in a mapping
        ``y0``, as in :func:`simulate`); grid names that are parameters override them.
    grid
        ``name → values``: the outer product, one batch axis per name, in this order.
    table
        ``name → values`` of one common length: zipped runs on one axis ``table_axis``;
        the columns are coordinates on that axis (``sel(m=2.0)`` works).
    table_axis
        The name of the table's axis.
    n_points
        Number of output times when ``times`` is ``(t0, tf)``.
    n_threads
        Threads of CasADi's ``map`` (``1``: a serial map).
    chunk_size
        Runs per mapped call. Default: the whole batch in one call, or about 20
        chunks (a multiple of ``n_threads``) when a progress bar is shown. A chunk in
        which a run fails is repeated run by run, so smaller chunks cost less then.
    signals
        Signals as expressions of ``t`` when ``system`` still has to be compiled.
    options
        How to integrate, a :class:`~cognitive_action.compile.options.SolverOptions`, as
        in :func:`~cognitive_action.compile.simulate.simulate`: the integrator is built
        exactly as there, once for the whole batch (``method="dopri"`` is refused: its
        step loop runs in Python). ``stability`` is checked per run: an anti-stable run
        is a failed run (:class:`UnstableSystemError` in :attr:`BatchSimulation.errors`).
        ``progress`` shows a tqdm bar with one step per chunk (``None``: only on a
        terminal).
    **overrides
        Fields of :class:`~cognitive_action.compile.options.SolverOptions` that replace
        those of ``options``.

    Returns
    -------
    BatchSimulation
        Trajectories with axes ``(*grid names, [table_axis], "time", "state")``; failed
        runs are NaN there, flagged in ``failed`` and explained in ``errors``.

    Raises
    ------
    CompileError
        Bad input: unknown grid names (with a suggestion), empty, non-finite or
        repeated grid values, table columns of different lengths, missing parameter
        values, unknown method or options.
    """
    t_build = time.perf_counter()
    opts = resolve_options("simulate_batch", options, overrides)
    if opts.method == "dopri":
        raise CompileError("method 'dopri' (a Python-driven step loop) cannot be mapped over "
                           "a batch", fix="use 'erk', 'rk', 'cvodes' or 'adams' for batches, "
                           "or loop over simulate(..., method='dopri')")
    if not isinstance(system, CompiledSystem):
        system = compile_system(system, signals=signals)
    elif signals is not None:
        raise CompileError("signals were given for an already compiled system",
                           fix="pass signals to compile_system instead")
    check_for_system(opts, system)
    spec = integrator_spec(system, opts)
    stabilization, stability, project_every = (opts.stabilization, opts.stability,
                                               opts.project_every)
    if isinstance(n_threads, bool) or int(n_threads) != n_threads or n_threads < 1:
        raise CompileError(f"n_threads must be a positive integer, got {n_threads!r}",
                           fix="e.g. n_threads=2")
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) != chunk_size
                                   or chunk_size < 1):
        raise CompileError(f"chunk_size must be a positive integer, got {chunk_size!r}",
                           fix="give a number of runs per mapped call, or None")
    tgrid = output_grid(times, n_points)
    batch = _describe(system, grid, table, table_axis)
    points = batch.points()
    gains = opts.baumgarte if stabilization in ("baumgarte", "both") else (0.0, 0.0)
    state_index = {s: i for i, s in enumerate(system.states)}
    params = dict(params or {})

    n_runs, n_y, n_t = len(points), system.n_states, len(tgrid)
    Y0 = np.zeros((n_runs, n_y))
    P = np.zeros((n_runs, system.n_parameters))
    errors: dict[int, CognitiveActionError] = {}
    for j, pt in enumerate(points):
        try:
            base = y0(dict(pt)) if callable(y0) else y0
        except CompileError:
            raise
        except CognitiveActionError as exc:  # e.g. no consistent initial state here
            errors[j] = exc
            continue
        yv = system.state_vector(base).copy()
        for name, v in pt.items():
            if name in state_index:
                yv[state_index[name]] = v
        pvals = params | {n: v for n, v in pt.items() if n in system.parameters}
        pv = system.parameter_vector(pvals, fallback=base if isinstance(base, Mapping)
                                     else None, baumgarte=gains)
        Y0[j], P[j] = yv, pv
        try:
            if opts.check_initial and system.constraints is not None:
                check_initial_state(system, tgrid[0], yv, pv, opts.initial_tol)
            if stability != "ignore" and (system.vakonomic or stability == "raise"):
                check_stability(system, tgrid, yv, pv, stability)
        except CognitiveActionError as exc:
            errors[j] = exc

    project = stabilization in ("projection", "both")
    fn = _trajectory_function(system, spec, tgrid, project, int(project_every))
    build_time = time.perf_counter() - t_build

    todo = [j for j in range(n_runs) if j not in errors]
    show = _show_progress(opts.progress)
    if chunk_size is None:
        chunk = max(1, len(todo))
        if show:
            chunk = max(n_threads, math.ceil(len(todo) / _PROGRESS_CHUNKS / n_threads) * n_threads)
    else:
        chunk = int(chunk_size)
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    values = np.full((n_runs, n_t, n_y), np.nan)
    maps: dict = {}
    reruns = 0
    t_run = time.perf_counter()
    bar = _progress_bar(show, n_runs, system.name)
    try:
        bar.update(len(errors))
        for idx in chunks:
            fm = _mapped(fn, len(idx), int(n_threads), maps)
            try:
                with quiet():
                    out = np.asarray(fm(Y0[idx].T, P[idx].T).full())
                values[idx] = out.reshape(n_y, len(idx), n_t).transpose(1, 2, 0)
            except RuntimeError:  # a run of this chunk failed: repeat them one by one
                for j in idx:
                    reruns += 1
                    try:
                        with quiet():
                            values[j] = np.asarray(fn(Y0[j], P[j]).full()).T
                    except RuntimeError as exc:
                        with quiet():
                            errors[j] = locate_failure(system, spec, tgrid, Y0[j], P[j], exc)
            bar.update(len(idx))
    finally:
        bar.close()
    run_time = time.perf_counter() - t_run

    for j in todo:
        if j in errors:
            continue
        try:
            check_finite(values[j], tgrid, opts.max_norm, spec.label)
        except SimulationError as exc:
            errors[j] = exc
    for j in errors:
        values[j] = np.nan

    G = Gd = None
    if system.constraints is not None:
        n_c = len(system.constraint_names)
        G = np.full((n_runs, n_t, n_c), np.nan)
        Gd = np.full((n_runs, n_t, n_c), np.nan)
        good = [j for j in range(n_runs) if j not in errors]
        for j in good:  # through buffers, no mapped copy of every trajectory
            G[j], Gd[j] = along_trajectory(system.constraints, tgrid, values[j], P[j],
                                           system._cache)

    shape = batch.shape
    failed = np.zeros(n_runs, dtype=bool)
    failed[list(errors)] = True
    label = f"{spec.label}, map over {int(n_threads)} thread(s)"
    data = NamedArray(batch.dims + ("time", "state"),
                      dict(batch.coords) | {"time": tgrid, "state": np.array(system.states)},
                      values.reshape(shape + (n_t, n_y)), dict(batch.aux))
    stats = {"build_time": build_time, "run_time": run_time, "n_runs": n_runs,
             "n_failed": len(errors), "n_threads": int(n_threads), "chunk_size": chunk,
             "n_chunks": len(chunks), "serial_reruns": reruns, "output_points": n_t}
    return BatchSimulation(
        system=system, data=data, params=P.reshape(shape + (P.shape[1],)),
        initial=Y0.reshape(shape + (n_y,)), failed=failed.reshape(shape),
        errors={tuple(int(i) for i in np.unravel_index(j, shape)): e
                for j, e in sorted(errors.items())},
        constraint_values=None if G is None else G.reshape(shape + G.shape[1:]),
        constraint_rates=None if Gd is None else Gd.reshape(shape + Gd.shape[1:]),
        method=label, stabilization=stabilization, stats=stats)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(show: bool, total: int, name: str):
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc=f"simulate_batch {name}", leave=False)

