"""Run a :class:`~cognitive_action.sweeps.spec.SweepSpec` on Dask, resumably.

:func:`run_sweep` starts a ``distributed.LocalCluster`` of worker processes (one thread
each) and closes it at the end, or connects to an existing scheduler by address. The
missing points are grouped into chunks (:func:`chunks_of`: about four Dask tasks per
worker), one Dask task each (``retries=2``; the scheduler also re-runs the tasks of a
worker that dies). Inside a chunk, ``simulate`` and ``convergence`` points of a CasADi
method run as one :func:`~cognitive_action.compile.batch.simulate_batch` call (CasADi's
``map``; the same bits as :func:`~cognitive_action.compile.simulate.simulate` per
point), ``dopri`` points one by one. Workers unpickle the problem and compile it once
per process: module-level caches keyed by
:meth:`~cognitive_action.sweeps.spec.SweepSpec.system_key`.

The store
---------
``store/`` holds

``sweep.json``
    The spec's fingerprint: a store refuses a different sweep.
``points/NNNNNN.npz``
    One file per finished point, written by the driver as its chunk returns (to a
    temporary file in the same folder, then renamed: a point is on disk whole or not
    at all). A point that raised stores its error text instead of values.
``dataset.zarr``
    The assembled :class:`xarray.Dataset` (axes as named coordinates, ``status`` and
    ``error`` per point), rewritten from the point files at the end of every run, so
    an interrupted and resumed sweep gives the same bytes as an uninterrupted one.
``runs.jsonl``
    One line per run: points run, failed, already done.

Rerunning ``run_sweep(spec, store)`` runs only the points without a file.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cognitive_action.errors import OptionalDependencyError, SweepError
from cognitive_action.sweeps.spec import _TASKS, SweepSpec, TaskContext

__all__ = ["run_sweep", "run_point", "run_chunk", "chunks_of", "payload_of", "load_sweep",
           "local_cluster", "SCHEDULER_TIMEOUT", "TASKS_PER_WORKER", "MAX_CHUNK"]

#: Seconds a scheduler address has to answer before the sweep fails (before any work).
SCHEDULER_TIMEOUT = 5.0

#: Result names the dataset uses for every point.
RESERVED = frozenset({"status", "error"})
#: Dask tasks per worker when the sweep picks the chunk size.
TASKS_PER_WORKER = 4
#: Most points in one Dask task when the sweep picks the chunk size.
MAX_CHUNK = 64

#: Problems of this process, by ``SweepSpec.system_key()``.
_PROBLEMS: dict[str, Any] = {}
#: Compiled systems of this process, by ``SweepSpec.system_key()`` (one per worker).
_SYSTEMS: dict[str, Any] = {}
#: How many systems this process compiled (tests check "once per process").
BUILDS = {"count": 0}


def _require() -> tuple[Any, Any]:
    try:
        import distributed
        import xarray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OptionalDependencyError(
            f"sweeps need dask.distributed, xarray and zarr ({exc.name} is missing)",
            fix='pip install "cognitive_action[sweeps]"') from exc
    return distributed, xarray


# -- worker side ------------------------------------------------------------------------
def _problem(payload: dict[str, Any]) -> Any:
    """The sweep's problem in this worker, unpickled once per process (SymPy objects of
    a large network take a noticeable part of a second to unpickle)."""
    key = payload["key"]
    if key not in _PROBLEMS:
        _PROBLEMS[key] = pickle.loads(payload["problem"])
    return _PROBLEMS[key]


def _full_spec(payload: dict[str, Any]) -> SweepSpec:
    """The spec with its problem (what a task's context holds)."""
    spec = copy.copy(payload["spec"])
    object.__setattr__(spec, "problem", _problem(payload))
    return spec


def _system(payload: dict[str, Any]) -> Any:
    key = payload["key"]
    if key not in _SYSTEMS:
        from cognitive_action.compile.system import compile_system

        _SYSTEMS[key] = compile_system(_problem(payload))
        BUILDS["count"] += 1
    return _SYSTEMS[key]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


Run = tuple[dict[str, float], dict[str, float]]  # (parameter values, initial state)


def _simulate_runs(spec: SweepSpec, system: Any, runs: list[Run], columns: list[str]
                   ) -> list[tuple[dict[str, np.ndarray] | None, str]]:
    """Simulate ``runs`` of one system: ``(outputs by state, "")`` or ``(None, error)``.

    Several runs with a CasADi method go through one ``simulate_batch`` call (CasADi's
    ``map``, serial: one thread per worker), the ``columns`` (names that differ between
    runs) zipped into a table; each run integrates the same compiled function as a
    :func:`simulate` call, so the numbers are the same bits. ``dopri`` (a Python step
    loop, not mappable) and a batch that cannot be set up run one ``simulate`` each.
    """
    from cognitive_action.compile.options import SolverOptions
    from cognitive_action.compile.simulate import simulate
    from cognitive_action.errors import CognitiveActionError

    times = spec.output_times()
    names = spec.outputs or tuple(system.states)
    method = (spec.options or SolverOptions()).method
    if len(runs) > 1 and columns and method != "dopri":
        from cognitive_action.compile.batch import simulate_batch

        states = set(system.states)
        table = {n: [(ini if n in states else val)[n] for val, ini in runs] for n in columns}
        try:
            batch = simulate_batch(system, times, dict(spec.initial), dict(spec.values),
                                   table=table, table_axis="sweep_run", n_threads=1,
                                   options=spec.options, progress=False)
        except CognitiveActionError:
            batch = None  # set-up refused as a whole: each run says why on its own
        if batch is not None:
            index = {s: i for i, s in enumerate(system.states)}
            out: list[tuple[dict[str, np.ndarray] | None, str]] = []
            for j in range(len(runs)):
                err = batch.errors.get((j,))
                if err is not None:
                    out.append((None, _error_text(err)))
                else:
                    out.append(({n: np.array(batch.values[j, :, index[n]], dtype=float)
                                 for n in names}, ""))
            return out
    out = []
    for values, initial in runs:
        try:
            run = simulate(system, times, initial, values, options=spec.options)
            out.append(({n: np.asarray(run[n], dtype=float) for n in names}, ""))
        except Exception as exc:  # noqa: BLE001 - a failed point records its error
            out.append((None, _error_text(exc)))
    return out


def _verify(ctx: TaskContext) -> dict[str, Any]:
    from cognitive_action.verify.checks import verify

    report = verify(ctx.problem, values=ctx.values, initial=ctx.initial or None,
                    seed=ctx.seed or 0)
    out: dict[str, Any] = {}
    for check in report.checks:
        out[f"{check.name}.status"] = str(check.status)
        value = check.value
        out[f"{check.name}.value"] = float(value) if isinstance(
            value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool) else np.nan
    return out


#: Worker caches of the train task: compiled limit laws and data sets.
_KERNELS: dict[Any, Any] = {}
_DATA: dict[str, Any] = {}


def _train_data(spec: SweepSpec) -> Any:
    from cognitive_action.sweeps.spec import _data_digest

    key = str(_data_digest(spec.data))
    if key not in _DATA:
        data = spec.data
        if isinstance(data, dict):
            from cognitive_action.learn.digits import load_digits_split

            data = load_digits_split(float(data.get("split", 0.2)), int(data.get("seed", 0)),
                                     data.get("limit"))
        _DATA[key] = data
    return _DATA[key]


def _train(ctx: TaskContext, point: dict[str, Any], key: str) -> dict[str, Any]:
    from cognitive_action.learn.kernel import compile_limit_law
    from cognitive_action.learn.train import sgd_baseline, train

    spec = ctx.spec
    lr = float(point.get("learning_rate", spec.learning_rate))
    seed = int(ctx.seed or 0)
    train_data, test_data = _train_data(spec)
    if point.get("law", "limit") == "limit":
        kkey = (key, tuple(sorted(ctx.values.items())))
        if kkey not in _KERNELS:
            _KERNELS[kkey] = compile_limit_law(ctx.problem, ctx.values)
            BUILDS["count"] += 1
        history = train(ctx.problem, train_data, test_data, epochs=spec.epochs,
                        learning_rate=lr, seed=seed, values=ctx.values,
                        kernel=_KERNELS[kkey])
    else:
        history = sgd_baseline(ctx.problem, train_data, test_data, epochs=spec.epochs,
                               learning_rate=lr, seed=seed)
    out: dict[str, Any] = {}
    for name in ("train_loss", "test_loss", "test_accuracy"):
        curve = getattr(history, name)
        if curve:
            out[name] = np.asarray(curve, dtype=float)
            out[f"final_{name}"] = float(curve[-1])
    return out


def _split(spec: SweepSpec, point: dict[str, Any], states: set[str]) -> Run:
    values = {**spec.values, **{k: v for k, v in point.items()
                                if k not in states and k not in ("seed", "learning_rate",
                                                                 "law")}}
    initial = {**spec.initial, **{k: v for k, v in point.items() if k in states}}
    return values, initial


def run_chunk(payload: dict[str, Any], indices: list[int]
              ) -> list[tuple[int, dict[str, Any] | None, str]]:
    """Run the points ``indices`` of a sweep (in a worker): ``[(index, results, error)]``.

    A point that raises gives ``(index, None, "ErrorType: message")``; the others go on.
    ``simulate`` and ``convergence`` points of a chunk run as one batch where the
    solver allows it (:func:`_simulate_runs`).
    """
    spec: SweepSpec = payload["spec"]
    states = payload["states"]
    points = [spec.point(i) for i in indices]
    if spec.task in ("simulate", "convergence"):
        return _simulation_chunk(payload, indices, points)
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    try:
        spec = _full_spec(payload)
    except Exception as exc:  # noqa: BLE001 - every point records the error
        return [(i, None, _error_text(exc)) for i in indices]
    for index, point in zip(indices, points):
        try:
            values, initial = _split(spec, point, states)
            system = (None if spec.task in ("verify", "train") else _system(payload))
            ctx = TaskContext(spec.problem, system, values, initial, point.get("seed"), spec)
            if spec.task == "verify":
                result = _verify(ctx)
            elif spec.task == "train":
                result = _train(ctx, point, payload["key"])
            else:
                result = dict(payload["fn"](ctx, dict(point)))
                taken = sorted(set(result) & RESERVED)
                if taken:
                    raise SweepError(f"the task returned {taken[0]!r}, a name the sweep "
                                     "uses for every point", field="task",
                                     fix=f"rename it (reserved: {', '.join(sorted(RESERVED))})")
            out.append((index, {k: np.asarray(v) for k, v in result.items()}, ""))
        except Exception as exc:  # noqa: BLE001 - a failed point records its error
            out.append((index, None, _error_text(exc)))
    return out


def _simulation_chunk(payload: dict[str, Any], indices: list[int],
                      points: list[dict[str, Any]]
                      ) -> list[tuple[int, dict[str, Any] | None, str]]:
    spec: SweepSpec = payload["spec"]
    states = payload["states"]
    try:
        system = _system(payload)
    except Exception as exc:  # noqa: BLE001 - every point records the build error
        return [(i, None, _error_text(exc)) for i in indices]
    columns = [k for k in spec.axes if k != "seed"]
    runs = [_split(spec, p, states) for p in points]
    if spec.task == "simulate":
        return [(i, r, e) for i, (r, e) in zip(indices, _simulate_runs(spec, system, runs,
                                                                        columns))]
    conv = spec.convergence
    refs: list[Run] = []
    where: list[int] = []
    for p in points:  # the run at the reference value, once per distinct one
        ref = _split(spec, {**p, conv.axis: float(conv.reference)}, states)
        if ref not in refs:
            refs.append(ref)
        where.append(refs.index(ref))
    done = _simulate_runs(spec, system, runs + refs, columns)
    own, at_ref = done[:len(runs)], done[len(runs):]
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    for i, (result, error), k in zip(indices, own, where):
        ref_result, ref_error = at_ref[k]
        if error or ref_result is None:
            out.append((i, None, error or f"the run at the reference "
                        f"{conv.axis} = {conv.reference:g} failed: {ref_error}"))
            continue
        assert result is not None
        dist = max(float(np.max(np.abs(result[n] - ref_result[n]))) for n in result)
        out.append((i, {**result, "distance": np.asarray(dist)}, ""))
    return out


def run_point(payload: dict[str, Any], index: int) -> tuple[int, dict[str, Any] | None, str]:
    """Run point ``index`` of a sweep (in a worker); ``(index, results, error)``.

    A point that raises returns ``(index, None, "ErrorType: message")``; the sweep goes on.
    """
    return run_chunk(payload, [index])[0]


def _state_names(spec: SweepSpec) -> set[str]:
    return set(spec.state_names)


# -- the store --------------------------------------------------------------------------
def _point_path(store: Path, index: int) -> Path:
    return store / "points" / f"{index:06d}.npz"


def _write_point(store: Path, index: int, result: dict[str, Any] | None, error: str) -> None:
    folder = store / "points"
    arrays = dict(result or {})
    arrays["__error__"] = np.asarray(error)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, _point_path(store, index))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_point(path: Path) -> tuple[dict[str, np.ndarray], str]:
    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files if k != "__error__"}
        return out, str(data["__error__"])


def _open_store(spec: SweepSpec, store: Path, fingerprint: str) -> set[int]:
    store.mkdir(parents=True, exist_ok=True)
    (store / "points").mkdir(exist_ok=True)
    meta = store / "sweep.json"
    if meta.exists():
        found = json.loads(meta.read_text(encoding="utf-8")).get("fingerprint")
        if found != fingerprint:
            raise SweepError(f"the store {str(store)!r} holds another sweep", field="store",
                             fix="use a new store folder, or delete this one to start over")
    else:
        tmp = store / ".sweep.json.tmp"
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "dims": spec.dims,
                                   "shape": spec.shape}), encoding="utf-8")
        os.replace(tmp, meta)
    done = set()
    for path in (store / "points").glob("*.npz"):
        with contextlib.suppress(ValueError):
            done.add(int(path.stem))
    return {i for i in done if 0 <= i < spec.size}


def _assemble(spec: SweepSpec, store: Path, fingerprint: str,
              fresh: dict[int, tuple[dict[str, np.ndarray], str]] | None = None) -> Any:
    """The dataset of every stored point; ``fresh``: points stored by this run, as
    written (an ``.npz`` file gives back the same arrays), so they are not read again."""
    _, xr = _require()
    fresh = fresh or {}
    shape = spec.shape
    n = spec.size
    status = np.full(n, "missing", dtype="<U7")
    errors = np.full(n, "", dtype=object)
    results: dict[int, dict[str, np.ndarray]] = {}
    for i in range(n):
        if i in fresh:
            values, error = fresh[i]
        else:
            path = _point_path(store, i)
            if not path.exists():
                continue
            values, error = _read_point(path)
        status[i] = "failed" if error else "ok"
        errors[i] = error
        if not error:
            results[i] = values
    names = sorted({k for r in results.values() for k in r})
    data_vars: dict[str, Any] = {}
    times = spec.output_times()
    for name in names:
        sample = next(r[name] for r in results.values() if name in r)
        if sample.dtype.kind in "US":
            arr = np.full(n, "", dtype=object)
            extra: tuple[str, ...] = ()
        else:
            arr = np.full((n, *sample.shape), np.nan, dtype=float)
            if sample.ndim == 0:
                extra = ()
            elif sample.ndim == 1 and spec.task in ("simulate", "convergence") \
                    and sample.size == times.size:
                extra = ("time",)
            elif sample.ndim == 1 and spec.task == "train" and sample.size == spec.epochs + 1:
                extra = ("epoch",)
            else:
                extra = tuple(f"{name}_dim{d}" for d in range(sample.ndim))
        for i, r in results.items():
            if name in r:
                arr[i] = r[name] if arr.dtype != object else str(r[name])
        if arr.dtype == object:
            arr = arr.astype(str)
        data_vars[name] = (spec.dims + extra, arr.reshape(shape + arr.shape[1:]))
    data_vars["status"] = (spec.dims, status.reshape(shape))
    data_vars["error"] = (spec.dims, errors.astype(str).reshape(shape))
    if spec.mode == "grid":
        coords: dict[str, Any] = {spec.coord_name(k): (spec.coord_name(k), np.asarray(v))
                                  for k, v in spec.axes.items()}
    else:
        coords = {"point": np.arange(n), **{spec.coord_name(k): ("point", np.asarray(v))
                                            for k, v in spec.axes.items()}}
    if any("time" in v[0] for v in data_vars.values()):
        coords["time"] = times
    if any("epoch" in v[0] for v in data_vars.values()):
        coords["epoch"] = np.arange(spec.epochs + 1)
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update({"task": spec.task, "fingerprint": fingerprint,
                     "problem": spec.problem.name or "", "mode": spec.mode,
                     "points_total": n, "points_failed": int(np.sum(status == "failed")),
                     "points_missing": int(np.sum(status == "missing"))})
    return ds


def _save_zarr(ds: Any, store: Path) -> None:
    final = store / "dataset.zarr"
    tmp = Path(tempfile.mkdtemp(prefix=".dataset-", dir=store))
    shutil.rmtree(tmp)
    ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
    old = None
    if final.exists():
        old = store / f".old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_sweep(store: str | os.PathLike[str]) -> Any:
    """Open the assembled dataset of a store (``store/dataset.zarr``) with xarray.

    Raises
    ------
    SweepError
        If the store has no assembled dataset yet.
    """
    _, xr = _require()
    path = Path(store) / "dataset.zarr"
    if not path.exists():
        raise SweepError(f"{str(path)!r} does not exist", field="store",
                         fix="run the sweep with run_sweep(spec, store) first")
    return xr.open_zarr(path, consolidated=True).load()


# -- the driver -------------------------------------------------------------------------
#: Dask settings of the local cluster: the workers' statistical profiler off (it samples
#: every thread's stack many times a second) and the periodic health checks (event-loop
#: tick, system monitor, the nanny's memory check) made rarer: an idle cluster then uses
#: several times less CPU (measured in docs/sweeps.md; benchmarks/bench_sweep.py prints
#: it).
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False,
                        "distributed.admin.tick.interval": "500ms",
                        "distributed.admin.system-monitor.interval": "2s",
                        "distributed.worker.memory.monitor-interval": "1s"}


def local_cluster(n_workers: int = 2) -> Any:
    """The ``distributed.LocalCluster`` a sweep starts: ``n_workers`` worker processes, one
    thread each, the settings :data:`LOCAL_CLUSTER_CONFIG` (CPU the points would
    otherwise use), the dashboard on a free port (with ``bokeh`` installed it shows the
    sweep's tasks). Close it when done.
    """
    distributed, _ = _require()
    import dask.config

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0")


def _connect(distributed: Any, scheduler: Any, n_workers: int) -> tuple[Any, Any, bool]:
    """``(client, cluster, owned)``: owned clients and clusters are closed by the sweep."""
    if scheduler is None:
        if not isinstance(n_workers, int) or n_workers < 1:
            raise SweepError(f"n_workers={n_workers!r}", fix="give a positive integer",
                             field="n_workers")
        cluster = local_cluster(n_workers)
        return distributed.Client(cluster), cluster, True
    if isinstance(scheduler, distributed.Client):
        return scheduler, None, False
    if not isinstance(scheduler, str):
        raise SweepError(f"scheduler of type {type(scheduler).__name__}", field="scheduler",
                         fix="pass None (a local cluster), an address or a distributed.Client")
    try:
        client = distributed.Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise SweepError(f"no Dask scheduler answers at {scheduler!r} within "
                         f"{SCHEDULER_TIMEOUT:g} s ({type(exc).__name__})", field="scheduler",
                         fix="start one (dask scheduler) and check the address, or pass "
                             "scheduler=None for a local cluster") from exc
    return client, None, True


def payload_of(spec: SweepSpec) -> dict[str, Any]:
    """What a sweep sends to every worker once: the spec, the compiled-system key, the
    state names and a registered task's function (:func:`run_chunk` takes it)."""
    import cloudpickle

    builtin = ("simulate", "verify", "train", "convergence")
    key, states = spec.system_key(), _state_names(spec)  # cached on the spec: copied too
    light = copy.copy(spec)  # the problem travels pickled: a worker that has it skips it
    object.__setattr__(light, "problem", None)
    return {"spec": light, "problem": cloudpickle.dumps(spec.problem),
            "key": key, "states": states,
            "fn": _TASKS.get(spec.task) if spec.task not in builtin else None}


def _workers(client: Any) -> int:
    """Threads of the cluster a client talks to (at least 1)."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - a cluster still starting: count it as one
        return 1


def chunks_of(missing: list[int], workers: int, chunk_size: int | None) -> list[list[int]]:
    """Split the missing points into the Dask tasks of a sweep.

    ``chunk_size=None``: about :data:`TASKS_PER_WORKER` tasks per worker (fewer tasks:
    less scheduler work per point; several per worker: the load still balances when
    points take different times), at most :data:`MAX_CHUNK` points each.

    Examples
    --------
    >>> [len(c) for c in chunks_of(list(range(64)), 2, None)]
    [8, 8, 8, 8, 8, 8, 8, 8]
    >>> chunks_of([0, 1, 2, 5], 2, 3)
    [[0, 1, 2], [5]]
    """
    if chunk_size is None:
        chunk_size = min(MAX_CHUNK, max(1, -(-len(missing) // (TASKS_PER_WORKER * workers))))
    return [missing[i:i + chunk_size] for i in range(0, len(missing), chunk_size)]


def run_sweep(spec: SweepSpec, store: str | os.PathLike[str], *, scheduler: Any = None,
              n_workers: int = 2, chunk_size: int | None = None,
              progress: Callable[[int, int, int], None] | None = None,
              on_start: Callable[[str | None], None] | None = None) -> Any:
    """Run every missing point of a sweep on Dask and return the assembled dataset.

    Parameters
    ----------
    spec
        The :class:`~cognitive_action.sweeps.spec.SweepSpec`.
    store
        A folder (created if needed); see the module docstring. Only points without a
        file in ``store/points`` run.
    scheduler
        ``None``: a ``LocalCluster`` of ``n_workers`` worker processes (one thread each),
        started and closed here; an address (``"tcp://host:8786"``): that scheduler
        (it must answer within :data:`SCHEDULER_TIMEOUT` seconds); or a
        ``distributed.Client`` (left open).
    n_workers
        Worker processes of the local cluster.
    chunk_size
        Points per Dask task (:func:`chunks_of`; ``None``: about
        :data:`TASKS_PER_WORKER` tasks per worker). A chunk's points are stored when
        the chunk returns; a worker lost mid-chunk re-runs the whole chunk elsewhere.
    progress
        Called as ``progress(done, failed, remaining)`` after every point is stored
        (an exception there stops the sweep; the stored points stay).
    on_start
        Called with the cluster's dashboard address (or ``None``) once it is connected,
        before the first point is submitted (not called when no point is missing).

    Returns
    -------
    xarray.Dataset
        The axes as coordinates, one variable per result (``time`` dimension for
        ``simulate`` outputs), ``status`` (``ok``/``failed``/``missing``) and ``error``
        per point; ``attrs['points_run']`` is the number of points this call ran. With
        ``spec.convergence`` the fitted order and its interval are in the attrs and the
        figure is ``store/convergence.png``.

    Raises
    ------
    SweepError
        A store holding another sweep, a scheduler that does not answer, or a bad
        ``n_workers``/``chunk_size`` (before any point runs).
    OptionalDependencyError
        Without the ``sweeps`` extra.
    """
    distributed, _ = _require()
    if not isinstance(spec, SweepSpec):
        raise SweepError(f"spec of type {type(spec).__name__}", fix="pass a SweepSpec",
                         field="spec")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(
            chunk_size, int) or chunk_size < 1):
        raise SweepError(f"chunk_size={chunk_size!r}", field="chunk_size",
                         fix="give a positive integer, or None for the default")
    store = Path(store)
    fingerprint = spec.fingerprint()  # hashes the problem's text: once per sweep
    done = _open_store(spec, store, fingerprint)
    missing = [i for i in range(spec.size) if i not in done]
    ran = failed = 0
    fresh: dict[int, tuple[dict[str, np.ndarray], str]] = {}
    payload = payload_of(spec)
    if missing:
        client, cluster, owned = _connect(distributed, scheduler, n_workers)
        futures: list[Any] = []
        try:
            if on_start is not None:
                on_start(getattr(client, "dashboard_link", None))
            [shared] = client.scatter([payload], broadcast=True, hash=False)
            workers = n_workers if cluster is not None else _workers(client)
            futures = [client.submit(run_chunk, shared, chunk, retries=2, pure=False,
                                     key=f"sweep-{fingerprint[:10]}-{chunk[0]}-{len(chunk)}")
                       for chunk in chunks_of(missing, workers, chunk_size)]
            for future in distributed.as_completed(futures):
                for index, result, error in future.result():
                    _write_point(store, index, result, error)
                    fresh[index] = ({} if error else {k: np.asarray(v) for k, v in
                                                      (result or {}).items()}, error)
                    ran += 1
                    failed += bool(error)
                    if progress is not None:
                        progress(len(done) + ran, failed, len(missing) - ran)
        finally:
            if futures and not owned:
                client.cancel(futures)
            if owned:
                client.close()
            if cluster is not None:
                cluster.close()
    ds = _assemble(spec, store, fingerprint, fresh)
    if spec.convergence is not None:
        from cognitive_action.sweeps.summary import convergence_summary

        ds.attrs.update(convergence_summary(ds, spec, store / "convergence.png"))
    _save_zarr(ds, store)
    with open(store / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"points_run": ran, "points_failed_now": failed,
                             "points_already_done": len(done)}) + "\n")
    ds.attrs["points_run"] = ran
    return ds
