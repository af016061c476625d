"""Run a :class:`~cognitive_action.sweeps.spec.SweepSpec` on Dask, point by point, resumably.

:func:`run_sweep` starts a ``distributed.LocalCluster`` of worker processes (one thread
each) and closes it at the end, or connects to an existing scheduler by address. Every
point is one Dask task (``retries=2``; the scheduler also re-runs the tasks of a worker
that dies). Workers compile the problem once per process: a module-level cache keyed by
:meth:`~cognitive_action.sweeps.spec.SweepSpec.system_key`.

The store
---------
``store/`` holds

``sweep.json``
    The spec's fingerprint: a store refuses a different sweep.
``points/NNNNNN.npz``
    One file per finished point, written by the driver as the point completes (to a
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
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cognitive_action.errors import OptionalDependencyError, SweepError
from cognitive_action.sweeps.spec import _TASKS, SweepSpec, TaskContext

__all__ = ["run_sweep", "run_point", "load_sweep", "local_cluster", "SCHEDULER_TIMEOUT"]

#: Seconds a scheduler address has to answer before the sweep fails (before any work).
SCHEDULER_TIMEOUT = 5.0

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
def _system(spec: SweepSpec, key: str) -> Any:
    if key not in _SYSTEMS:
        from cognitive_action.compile.system import compile_system

        _SYSTEMS[key] = compile_system(spec.problem)
        BUILDS["count"] += 1
    return _SYSTEMS[key]


def _simulate(ctx: TaskContext) -> dict[str, Any]:
    from cognitive_action.compile.simulate import simulate

    spec = ctx.spec
    run = simulate(ctx.system, spec.output_times(), ctx.initial, ctx.values,
                   options=spec.options)
    names = spec.outputs or tuple(ctx.system.states)
    return {name: np.asarray(run[name], dtype=float) for name in names}


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


def run_point(payload: dict[str, Any], index: int) -> tuple[int, dict[str, Any] | None, str]:
    """Run point ``index`` of a sweep (in a worker); ``(index, results, error)``.

    A point that raises returns ``(index, None, "ErrorType: message")``; the sweep goes on.
    """
    spec: SweepSpec = payload["spec"]
    states = payload["states"]
    point = spec.point(index)
    try:
        values = {**spec.values, **{k: v for k, v in point.items() if k != "seed"
                                    and k not in states}}
        initial = {**spec.initial, **{k: v for k, v in point.items() if k in states}}
        seed = point.get("seed")
        system = None if spec.task == "verify" else _system(spec, payload["key"])
        ctx = TaskContext(spec.problem, system, values, initial, seed, spec)
        if spec.task == "simulate":
            result = _simulate(ctx)
        elif spec.task == "verify":
            result = _verify(ctx)
        else:
            result = dict(payload["fn"](ctx, dict(point)))
        return index, {k: np.asarray(v) for k, v in result.items()}, ""
    except Exception as exc:  # noqa: BLE001 - a failed point records its error
        return index, None, f"{type(exc).__name__}: {exc}"


def _state_names(spec: SweepSpec) -> set[str]:
    coords = [str(q) for q in spec.problem.coordinates]
    return set(coords) | {f"{q}_dot" for q in coords}


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


def _assemble(spec: SweepSpec, store: Path, fingerprint: str) -> Any:
    _, xr = _require()
    shape = spec.shape
    n = spec.size
    status = np.full(n, "missing", dtype="<U7")
    errors = np.full(n, "", dtype=object)
    results: dict[int, dict[str, np.ndarray]] = {}
    for i in range(n):
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
            elif sample.ndim == 1 and spec.task == "simulate" and sample.size == times.size:
                extra = ("time",)
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
def local_cluster(n_workers: int = 2) -> Any:
    """The ``distributed.LocalCluster`` a sweep starts: ``n_workers`` worker processes, one
    thread each, no dashboard, the workers' statistical profiler off (it samples every
    thread's stack periodically: CPU the points would use). Close it when done.
    """
    distributed, _ = _require()
    import dask.config

    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None)


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


def run_sweep(spec: SweepSpec, store: str | os.PathLike[str], *, scheduler: Any = None,
              n_workers: int = 2,
              progress: Callable[[int, int, int], None] | None = None) -> Any:
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
    progress
        Called as ``progress(done, failed, remaining)`` after every point is stored
        (an exception there stops the sweep; the stored points stay).

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
        A store holding another sweep, or a scheduler that does not answer (before
        any point runs).
    OptionalDependencyError
        Without the ``sweeps`` extra.
    """
    distributed, _ = _require()
    if not isinstance(spec, SweepSpec):
        raise SweepError(f"spec of type {type(spec).__name__}", fix="pass a SweepSpec",
                         field="spec")
    store = Path(store)
    fingerprint = spec.fingerprint()  # hashes the problem's text: once per sweep
    done = _open_store(spec, store, fingerprint)
    missing = [i for i in range(spec.size) if i not in done]
    ran = failed = 0
    payload = {"spec": spec, "key": spec.system_key(), "states": _state_names(spec),
               "fn": _TASKS.get(spec.task) if spec.task not in ("simulate", "verify") else None}
    if missing:
        client, cluster, owned = _connect(distributed, scheduler, n_workers)
        futures: list[Any] = []
        try:
            [shared] = client.scatter([payload], broadcast=True, hash=False)
            futures = [client.submit(run_point, shared, i, retries=2, pure=False,
                                     key=f"sweep-{fingerprint[:10]}-{i}")
                       for i in missing]
            for future in distributed.as_completed(futures):
                index, result, error = future.result()
                _write_point(store, index, result, error)
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
    ds = _assemble(spec, store, fingerprint)
    if spec.convergence is not None:
        from cognitive_action.sweeps.summary import convergence_summary

        ds.attrs.update(convergence_summary(ds, spec, store / "convergence.png"))
    _save_zarr(ds, store)
    with open(store / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"points_run": ran, "points_failed_now": failed,
                             "points_already_done": len(done)}) + "\n")
    ds.attrs["points_run"] = ran
    return ds
