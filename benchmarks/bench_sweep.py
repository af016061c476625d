"""Benchmark: a sweep on a LocalCluster of 2 worker processes against the serial loop (issue 15).

The system is the layered net ``[10, 30, 10]`` (50 neurons, eq. 8-10 network route, 1300
states with the weights), inputs ``sin(i t)``, targets 0.5 on the outputs, integrated by
our Dormand-Prince (``method="dopri"``) over ``t ∈ [0, 1]`` with 11 output points, for
``--points`` values of the weight mass ``m_W`` in ``[0.5, 8]``. The consistent initial
state (``G = 0``, ``Ġ = 0``, zero weight velocities) does not depend on ``m_W``: it is
completed once before timing.

- ``serial``: a Python loop of :func:`simulate` calls in this process on a system
  compiled once before timing;
- ``dask``: :func:`~cognitive_action.sweeps.run_sweep` into a fresh store on a
  ``LocalCluster`` of 2 worker processes (one thread each; ``sweeps.engine.local_cluster``,
  the cluster ``run_sweep`` starts, with the profiler off and slower health checks;
  ``--profiler``: Dask's defaults) started once before timing, the points grouped into
  Dask tasks of
  ``--chunk`` points (default: the sweep's, about 4 tasks per worker; ``--chunk 1``: one
  task per point);
  the workers' compiled systems are built by a warm-up sweep (cluster start and that
  first build are printed separately). The timed run includes writing every point to
  the store and assembling the zarr dataset.

Repeats are interleaved (serial, dask, serial, dask, ...); medians and min-max are
printed, with the speed-up and the per-point overhead of the Dask path, defined as
``(2 · t_dask − t_serial) / t_serial``: the worker-seconds spent beyond the serial
computation, per second of computation (0 for a perfect split over 2 processes).
Results of both paths are compared (max abs difference).

On a machine shared with other work, wall-clock times measure the share of the cores
each path gets, so CPU seconds are printed too (``time.thread_time`` of the main thread
for the serial loop: this process also hosts the idle scheduler then; for the Dask
path the CPU seconds of both worker processes, read with psutil before and after, plus
this process's, which hosts the scheduler and the client), with the load average: the
CPU overhead ``(cpu_dask − cpu_serial) / cpu_serial`` does not depend on what else runs,
except through the idle cluster's periodic work
(heartbeats, health checks), which costs CPU per second of wall clock, not per point:
it is measured on the idle cluster before the repeats and printed, and the overhead is
also given without it.

    python benchmarks/bench_sweep.py                  # 64 points, 3 repeats
    python benchmarks/bench_sweep.py --points 16 --repeat 1
    python benchmarks/bench_sweep.py --chunk 1        # one Dask task per point
    python benchmarks/bench_sweep.py --method rk      # a method chunks batch (CasADi map)
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time

import casadi
import numpy as np
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile import SolverOptions, compile_system, simulate
from cognitive_action.declare import symbols as S
from cognitive_action.sweeps import SweepSpec, run_sweep
from cognitive_action.sweeps.engine import chunks_of, local_cluster


def setup():
    net = ca.layered([10, 30, 10])
    inputs = {i + 1: sp.sin((i + 1) * S.t) for i in range(10)}
    problem = net.problem(inputs=inputs, targets=dict.fromkeys(range(41, 51), 0.5))
    rng = np.random.default_rng(1)
    weights = {str(w): rng.normal() * 0.3 for w in net.weights}
    ic = ca.complete_initial_conditions(ca.euler_lagrange(problem),
                                        weights | {"m_x": 1.0, "m_W": 1.0})
    initial = {k: v for k, v in ic.items() if k not in ("m_x", "m_W")}
    return problem, initial


def _worker_cpu() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def main() -> None:
    import distributed

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None,
                    help="points per Dask task (default: the sweep's choice)")
    ap.add_argument("--method", default="dopri",
                    help="integration method of both paths (dopri: not batched in a chunk)")
    ap.add_argument("--idle", type=float, default=5.0,
                    help="seconds the idle cluster's CPU is measured before the repeats")
    ap.add_argument("--profiler", action="store_true",
                    help="keep the workers' statistical profiler on (Dask's default)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    problem, initial = setup()
    m_w = np.linspace(0.5, 8.0, args.points)
    spec = SweepSpec(problem, axes={"m_W": m_w}, values={"m_x": 1.0}, initial=initial,
                     times=(0.0, 1.0), n_points=11, outputs=("x41", "x50"),
                     options=SolverOptions(method=args.method))
    system = compile_system(problem)
    t_setup = time.perf_counter() - t0
    chunks = chunks_of(list(range(args.points)), 2, args.chunk)
    print(f"{datetime.date.today()}, CasADi {casadi.__version__}, dask.distributed "
          f"{distributed.__version__}, {os.cpu_count()} cores, {system.n_states} states, "
          f"{args.points} points, method {args.method}, {len(chunks)} Dask tasks of "
          f"{len(chunks[0])} points, setup {t_setup:.1f} s; load average at the start "
          f"{os.getloadavg()}")

    def serial():
        return np.stack([
            np.stack([(r := simulate(system, spec.output_times(), initial,
                                     {"m_x": 1.0, "m_W": float(v)},
                                     options=spec.options))["x41"], r["x50"]])
            for v in m_w])

    tc = time.perf_counter()
    cluster = local_cluster(2) if not args.profiler else distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    t_cluster = time.perf_counter() - tc
    with tempfile.TemporaryDirectory() as tmp:
        tw = time.perf_counter()
        warm = SweepSpec(problem, axes={"m_W": [1.0, 2.0]}, values={"m_x": 1.0},
                         initial=initial, times=(0.0, 1.0), n_points=11, outputs=("x41",),
                         options=spec.options)
        run_sweep(warm, os.path.join(tmp, "warm"), scheduler=client)
        t_warm = time.perf_counter() - tw
        print(f"cluster start {t_cluster:.1f} s; warm-up sweep (2 points, compiles on each "
              f"worker) {t_warm:.1f} s")

        w0, d0, t0 = sum(client.run(_worker_cpu).values()), time.process_time(), \
            time.perf_counter()
        time.sleep(args.idle)
        idle = (sum(client.run(_worker_cpu).values()) - w0 + time.process_time() - d0) / (
            time.perf_counter() - t0)
        print(f"idle cluster (workers + driver): {idle:.4f} CPU-s per second over "
              f"{args.idle:g} s")
        times: dict[str, list[float]] = {"serial": [], "dask": []}
        cpu: dict[str, list[float]] = {"serial": [], "dask": []}
        ref = out = None
        for i in range(args.repeat):
            ts, cs = time.perf_counter(), time.thread_time()
            ref = serial()
            times["serial"].append(time.perf_counter() - ts)
            cpu["serial"].append(time.thread_time() - cs)
            w0 = sum(client.run(_worker_cpu).values())
            td, cd = time.perf_counter(), time.process_time()
            ds = run_sweep(spec, os.path.join(tmp, f"run{i}"), scheduler=client,
                           chunk_size=args.chunk)
            times["dask"].append(time.perf_counter() - td)
            cpu["dask"].append(time.process_time() - cd
                               + sum(client.run(_worker_cpu).values()) - w0)
            assert ds.attrs["points_run"] == args.points and (ds.status == "ok").all()
            out = np.stack([ds.x41.values, ds.x50.values], axis=1)
    client.close()
    cluster.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    speedup = med["serial"] / med["dask"]
    overhead = (2 * med["dask"] - med["serial"]) / med["serial"]
    print(f"\n| path | median of {args.repeat} | min - max | per point |")
    print("|---|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.2f} s | {min(v):.2f} - {max(v):.2f} s "
              f"| {1e3 * med[k] / args.points:.1f} ms |")
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    print("\n| path | CPU s, median | min - max | CPU per point |")
    print("|---|---|---|---|")
    for k, v in cpu.items():
        print(f"| {k} | {cmed[k]:.2f} s | {min(v):.2f} - {max(v):.2f} s "
              f"| {1e3 * cmed[k] / args.points:.1f} ms |")
    print(f"\nload average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"CPU overhead of the Dask path {100 * (cmed['dask'] / cmed['serial'] - 1):.1f}%; "
          f"without the idle cluster's share ({idle:.4f} CPU-s/s x {med['dask']:.2f} s): "
          f"{100 * ((cmed['dask'] - idle * med['dask']) / cmed['serial'] - 1):.1f}%")
    print(f"speed-up {speedup:.2f}x (target >= 1.7); per-point overhead of the Dask path "
          f"{100 * overhead:.1f}% (target <= 5%); max abs diff dask vs serial "
          f"{float(np.max(np.abs(out - ref))):.1e}")


if __name__ == "__main__":
    main()
