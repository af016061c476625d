"""Results as labelled arrays: xarray Datasets with named coordinates, saved to netCDF.

* :func:`trajectory_dataset` — a simulation: dimension ``time``; for networks
  ``x``, ``x_dot`` on ``neuron`` (with its ``layer``, the longest path from an input,
  -1 in a cyclic net), ``w``, ``w_dot`` on ``weight`` (with ``target`` and ``source``
  neurons), ``loss`` and ``target`` on ``output``; for mechanical problems ``q``,
  ``q_dot`` on ``coordinate``; for both ``multiplier`` and ``constraint_value`` (``G``)
  on ``constraint`` and the drift ``max |G|``; for a phase of an energy model
  (equilibrium propagation) ``x``, ``x_dot`` on ``neuron`` (with its ``layer``), the
  learnable values ``w`` on ``learnable`` (with its ``group``), ``energy``, ``cost``
  and ``output_target``. Every state of the run is in it.
* :func:`history_dataset` — training histories: dimensions ``run`` and ``epoch`` (a run
  in time adds its switch residuals, epoch times and settings).
* :func:`report_dataset` — the verifier's numbers: dimension ``check``.

:func:`save_dataset` writes netCDF (``.nc``, SciPy's netCDF3 writer: float64 exact) or
zarr (``.zarr``), through a temporary file renamed into place; :func:`load_dataset`
reads either back. xarray comes with the ``results`` extra
(``pip install "cognitive_action[results]"``); without it these functions raise
:class:`~cognitive_action.errors.OptionalDependencyError`.

Examples
--------
>>> from cognitive_action import workflow
>>> wf = workflow.load("chain3")
>>> sim = wf.simulate(t_end=0.2, points=3)
>>> ds = trajectory_dataset(sim, wf.spec.problem)
>>> ds["x"].dims, ds["neuron"].values.tolist(), ds["layer"].values.tolist()
(('time', 'neuron'), ['x1', 'x2', 'x3'], [0, 1, 2])
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cognitive_action.declare.energy import EnergyModel
from cognitive_action.declare.roles import generated_names
from cognitive_action.errors import OptionalDependencyError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from cognitive_action.compile.simulate import Simulation
    from cognitive_action.declare.problem import Problem
    from cognitive_action.verify.report import Report

__all__ = ["FORMATS", "history_dataset", "load_dataset", "neuron_layers", "report_dataset",
           "require_xarray", "save_dataset", "trajectory_dataset", "unit_layers"]

#: File formats of :func:`save_dataset`, by suffix.
FORMATS = {"netcdf": ".nc", "zarr": ".zarr"}


def require_xarray() -> Any:
    """The ``xarray`` module.

    Raises
    ------
    OptionalDependencyError
        xarray is not installed (the ``results`` extra).
    """
    try:
        import xarray
    except ImportError as exc:
        raise OptionalDependencyError(
            "labelled results (xarray Datasets, netCDF) need xarray",
            fix='pip install "cognitive_action[results]"') from exc
    return xarray


def neuron_layers(problem: Problem) -> dict[str, int]:
    """Each neuron's layer: the longest path from an input (inputs are layer 0); -1 for
    every neuron of a cyclic network."""
    import networkx as nx

    net = problem.network
    g = net.graph
    if not nx.is_directed_acyclic_graph(g):
        return {str(net.x[n]): -1 for n in net.order}
    layer: dict[Any, int] = {}
    for n in nx.topological_sort(g):
        preds = [p for p in g.predecessors(n)]
        layer[n] = 0 if n in net.inputs or not preds else 1 + max(layer[p] for p in preds)
    return {str(net.x[n]): layer[n] for n in net.order}


def trajectory_dataset(sim: Simulation, problem: Problem | None = None, *,
                       name: str | None = None) -> xr.Dataset:
    """A simulation as a Dataset (see the module docstring for its variables).

    Parameters
    ----------
    sim
        The simulation.
    problem
        The declared problem (network roles, loss, targets); ``None``: coordinates,
        multipliers and constraints only.
    name
        The ``problem`` attribute (default: the compiled system's name).

    Returns
    -------
    xarray.Dataset
        The arrays are copies of the simulation's, values unchanged.
    """
    xr = require_xarray()
    from cognitive_action.results.figures import loss_along, targets_along

    states = sim.states
    used: set[str] = set()
    data: dict[str, Any] = {}
    coords: dict[str, Any] = {"time": ("time", np.asarray(sim.times, dtype=float))}

    def block(var: str, dim: str, names: list[str]) -> None:
        data[var] = (("time", dim), np.column_stack([states[n] for n in names])
                     if names else np.zeros((len(sim.times), 0)))
        used.update(names)

    energy = isinstance(problem, EnergyModel)
    net = problem.network if problem is not None and not energy else None
    if energy:
        _energy_variables(sim, problem, data, coords, used)
    elif net is not None:
        neurons = [str(x) for x in net.neurons]
        coords["neuron"] = ("neuron", neurons)
        layers = neuron_layers(problem)
        coords["layer"] = ("neuron", np.array([layers[n] for n in neurons], dtype=np.int64))
        block("x", "neuron", neurons)
        block("x_dot", "neuron", [f"{n}_dot" for n in neurons])
        weights = list(net.w.items())
        coords["weight"] = ("weight", [str(w) for _, w in weights])
        coords["target"] = ("weight", [str(net.x[j]) for (j, _k), _ in weights])
        coords["source"] = ("weight", [str(net.x[k]) for (_j, k), _ in weights])
        block("w", "weight", [str(w) for _, w in weights])
        block("w_dot", "weight", [f"{w}_dot" for _, w in weights])
        loss = loss_along(sim, problem)
        if loss is not None:
            data["loss"] = ("time", loss)
        targets = targets_along(sim, problem)
        if targets:
            coords["output"] = ("output", list(targets))
            data["output_target"] = (("time", "output"),
                                     np.column_stack(list(targets.values())))
    else:
        qs = list(sim.system.coordinates)
        coords["coordinate"] = ("coordinate", qs)
        block("q", "coordinate", qs)
        if sim.system.velocities:  # a first-order system (an energy phase) has none
            block("q_dot", "coordinate", list(sim.system.velocities))
    cons = list(sim.system.constraint_names)
    if cons:
        coords["constraint"] = ("constraint", cons)
        mults = sim.multipliers()
        owner = generated_names(cons)  # multiplier name -> its constraint
        by_constraint = {owner[m]: m for m in mults if m in owner}
        names = [by_constraint.get(c, "") for c in cons]
        coords["multiplier_name"] = ("constraint", names)
        data["multiplier"] = (("time", "constraint"), np.column_stack(
            [np.asarray(mults[m], dtype=float) if m else np.full(len(sim.times), np.nan)
             for m in names]))
        used.update(m for m in names if m in states)
        if sim.constraint_values is not None:
            data["constraint_value"] = (("time", "constraint"),
                                        np.asarray(sim.constraint_values, dtype=float))
            data["drift"] = ("time", np.asarray(sim.drift, dtype=float))
    for s in sim.system.states:  # anything else the run carries, under its own name
        if s not in used:
            data[f"state_{s}"] = ("time", np.asarray(states[s], dtype=float))
    attrs = {"problem": name or sim.system.name, "method": sim.method,
             "variant": sim.variant, "stabilization": sim.stabilization or "none",
             "parameters": ", ".join(f"{k}={v:.17g}" for k, v in
                                     zip(sim.system.parameters, sim.params))}
    return xr.Dataset(data, coords=coords, attrs=attrs)


#: Per-epoch series of a run in time (:class:`~cognitive_action.learn.runners.
#: DynamicsHistory`), one value per trained epoch (epoch 0, before training, has none).
_EPOCH_SERIES = {"switch_max_G": ("switch_residuals", 0),
                 "switch_max_G_dot": ("switch_residuals", 1),
                 "seconds": ("seconds", None), "cpu_seconds": ("cpu_seconds", None)}


def unit_layers(model: EnergyModel) -> dict[str, int]:
    """Each free unit's layer in an energy model: its distance from the inputs along the
    couplings (the layer of a layered net, inputs 0); -1 when the model has no couplings
    (an energy written by hand) or the unit is not reached."""
    import networkx as nx

    free = model.units[len(model.units) - len(model.neurons):] if model.units else ()
    if not model.couplings or len(free) != len(model.neurons):
        return {str(x): -1 for x in model.neurons}
    g = nx.Graph(list(model.couplings.values()))
    inputs = [u for u in model.units[:len(model.units) - len(model.neurons)] if u in g]
    dist = nx.multi_source_dijkstra_path_length(g, inputs) if inputs else {}
    return {str(x): int(dist.get(u, -1)) for x, u in zip(model.neurons, free)}


def _energy_variables(sim: Simulation, model: EnergyModel, data: dict[str, Any],
                      coords: dict[str, Any], used: set[str]) -> None:
    """The variables of a phase of an energy model: the units ``x`` and their rates
    ``x_dot`` on ``neuron``, the learnable values ``w`` on ``learnable`` (constant
    along a phase; their ``group``), ``energy``, ``cost`` and, for quadratic costs, the
    ``output_target``."""
    from cognitive_action.results.figures import energy_along, state_rates, targets_along

    states = sim.states
    neurons = [str(x) for x in model.neurons]
    coords["neuron"] = ("neuron", neurons)
    layers = unit_layers(model)
    coords["layer"] = ("neuron", np.array([layers[n] for n in neurons], dtype=np.int64))
    data["x"] = (("time", "neuron"), np.column_stack([states[n] for n in neurons]))
    used.update(neurons)
    rates = state_rates(sim)
    index = {n: i for i, n in enumerate(sim.system.states)}
    data["x_dot"] = (("time", "neuron"), rates[:, [index[n] for n in neurons]])
    values = dict(zip(sim.system.parameters, (float(v) for v in sim.params)))
    learnable = [str(w) for w in model.learnable]
    group = {str(w): g for g, ws in model.groups.items() for w in ws}
    coords["learnable"] = ("learnable", learnable)
    coords["group"] = ("learnable", [group.get(w, "") for w in learnable])
    data["w"] = ("learnable", np.array([values[w] for w in learnable]))
    e = energy_along(sim, model)
    if e is not None:
        data["energy"] = ("time", e["E"])
        data["cost"] = ("time", e["C"])
    targets = targets_along(sim, model)
    if targets:
        coords["output"] = ("output", list(targets))
        data["output_target"] = (("time", "output"), np.column_stack(list(targets.values())))


def history_dataset(histories: Mapping[str, Any] | Any) -> xr.Dataset:
    """Training histories as a Dataset: ``train_loss``, ``test_loss``,
    ``train_accuracy``, ``test_accuracy`` on ``(run, epoch)`` (epoch 0: before training;
    NaN where a run has no value).

    A run of the derived dynamics or the diffusion law
    (:class:`~cognitive_action.learn.runners.DynamicsHistory`) adds, on ``(run, epoch)``
    from epoch 1: ``switch_max_G`` and ``switch_max_G_dot`` (``max |G|``, ``max |Ġ|``
    after the switches of the epoch's samples), ``seconds`` and ``cpu_seconds`` (of the
    epoch's presentations); and its settings (``tau``, ``theta``, ``m_W``, ...) as the
    attribute ``settings_<run>`` (JSON). A run of the plain limit law has NaN there.

    Parameters
    ----------
    histories
        A :class:`~cognitive_action.learn.train.TrainingHistory` or a mapping of run
        names to them (``{"limit": ..., "sgd": ...}``).
    """
    import json

    xr = require_xarray()
    if not isinstance(histories, Mapping):
        histories = {histories.mode: histories}
    runs = list(histories)
    fields = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
    n = max(len(getattr(h, f)) for h in histories.values() for f in fields)
    data = {}
    for f in fields:
        arr = np.full((len(runs), n), np.nan)
        for i, h in enumerate(histories.values()):
            v = np.asarray(getattr(h, f), dtype=float)
            arr[i, :len(v)] = v
        data[f] = (("run", "epoch"), arr)
    attrs = {}
    if any(getattr(h, "switch_residuals", None) is not None for h in histories.values()):
        for var, (attr, column) in _EPOCH_SERIES.items():
            arr = np.full((len(runs), n), np.nan)
            for i, h in enumerate(histories.values()):
                v = np.asarray(getattr(h, attr, []), dtype=float)
                if v.size:
                    v = v[:, column] if column is not None else v
                    arr[i, 1:1 + len(v)] = v[:n - 1]
            data[var] = (("run", "epoch"), arr)
        for run, h in histories.items():
            if getattr(h, "settings", None):
                attrs[f"settings_{run}"] = json.dumps(h.settings, sort_keys=True,
                                                      default=str)
    return xr.Dataset(data, coords={"run": runs, "epoch": np.arange(n)}, attrs=attrs)


def _number(v: Any) -> float:
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return float("nan")


def report_dataset(report: Report, outcome: Mapping[str, str] | None = None
                   ) -> xr.Dataset:
    """The verifier's numbers as a Dataset on ``check``: ``value`` and ``tolerance``
    (NaN when not a number), ``status``, ``outcome`` (the file's expectations applied,
    default the status) and ``message``."""
    xr = require_xarray()
    names = [c.name for c in report.checks]
    outcome = dict(outcome or {})
    data = {
        "value": ("check", np.array([_number(c.value) for c in report.checks])),
        "tolerance": ("check", np.array([_number(c.tolerance) for c in report.checks])),
        "status": ("check", np.array([c.status for c in report.checks], dtype=object)),
        "outcome": ("check", np.array([outcome.get(c.name, c.status)
                                       for c in report.checks], dtype=object)),
        "message": ("check", np.array([c.message for c in report.checks], dtype=object)),
    }
    return xr.Dataset(data, coords={"check": names},
                      attrs={"problem": report.problem, "passed": int(report.passed)})


def save_dataset(ds: xr.Dataset, path: str | os.PathLike[str],
                 format: str | None = None) -> Path:
    """Write ``ds`` to ``path`` as netCDF (``.nc``) or zarr (``.zarr``), through a
    temporary file or folder beside it renamed into place (a killed run leaves the old
    file whole).

    Parameters
    ----------
    format
        ``"netcdf"`` or ``"zarr"``; ``None``: from the suffix (netCDF unless ``.zarr``).

    Raises
    ------
    OptionalDependencyError
        xarray (or zarr, for ``"zarr"``) is missing.
    ValueError
        An unknown format.
    """
    require_xarray()
    path = Path(path)
    fmt = format or ("zarr" if path.suffix == ".zarr" else "netcdf")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "netcdf":
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        try:
            ds.to_netcdf(tmp, engine="scipy", format="NETCDF3_64BIT")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path
    try:
        import zarr  # noqa: F401
    except ImportError as exc:
        raise OptionalDependencyError("zarr output needs zarr",
                                      fix='pip install "cognitive_action[sweeps]"') from exc
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with warnings.catch_warnings():  # zarr 3 warns that string dtypes lack a v3 spec
            warnings.simplefilter("ignore", UserWarning)
            warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 spec")
            ds.to_zarr(tmp / "store.zarr", mode="w")
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "old")
        os.replace(tmp / "store.zarr", path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_dataset(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` (netCDF or zarr), into memory."""
    xr = require_xarray()
    path = Path(path)
    if path.suffix == ".zarr" or path.is_dir():
        return xr.open_zarr(path).load()
    return xr.load_dataset(path, engine="scipy")
