"""Benchmark: the drift report of a network system, mapped constraint function against
the vectorised evaluator (issue 16).

The dense learning system of ``bench_compile.py`` / ``bench_integrate.py`` (``n``
neurons, ``2(n + n(n-2))`` states), 1000 output points. Interleaved, per repeat:

- ``G``: ``max_drift``'s work. *map*: CasADi's ``map`` of ``constraints`` pruned to
  ``G`` (``along_trajectory(one_output(constraints, 0))``, what the report did before);
  *vectorised*: ``system.trajectory_constraints(..., rates=False)``;
- ``G + Ġ``: the whole report, ``along_trajectory(constraints)`` against
  ``trajectory_constraints(...)``;
- (n = 10, 50) a whole ``simulate(method="dopri")`` call plus reading ``max_drift`` and
  ``drift_rate``, with the system as compiled and with ``trajectory_constraints=None``
  (the map).

At n = 10 and 50 the points are the trajectory of ``bench_integrate.reference``; at
n = 200 (637 MB of states) the consistent initial state with noise of 1e-3 at every
point (the cost does not depend on the values). Also printed: the largest difference of
the two evaluations (round-off: the sums of ``W x`` run in a different order).

Run:  python benchmarks/bench_drift_report.py                 # n = 10, 50, 200
      python benchmarks/bench_drift_report.py --sizes 10 50 --repeats 9
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_compile import dense_problem  # noqa: E402
from bench_integrate import ATOL, RTOL, reference  # noqa: E402

import cognitive_action as ca_  # noqa: E402
from cognitive_action.compile import compile_system, simulate  # noqa: E402
from cognitive_action.compile.integration import along_trajectory, one_output  # noqa: E402

N_POINTS = 1000


def spread(ts) -> str:
    ms = 1e3 * np.asarray(ts)
    return f"{np.median(ms):8.2f} ({ms.min():.2f}-{ms.max():.2f})"


def timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def run_size(n: int, repeats: int) -> None:
    values, y0, grid, *_ = reference(n, N_POINTS) if n <= 50 else (
        None, None, np.linspace(0.0, 10.0, N_POINTS))
    _net, pr = dense_problem(n)
    system = compile_system(ca_.derive_network(pr))
    old = dataclasses.replace(system, trajectory_constraints=None, _cache={})
    if n <= 50:
        sim = simulate(system, grid, y0, values, rtol=RTOL, atol=ATOL, method="dopri")
        Y, p = sim.y, sim.params
    else:
        from bench_integrate import consistent_state
        rng = np.random.default_rng(0)
        Y = consistent_state(n)[None, :] + 1e-3 * rng.standard_normal((N_POINTS,
                                                                      system.n_states))
        p = np.concatenate([[1.3, 0.7, 0.5, 0.4, -0.3, 0.25], [0.0, 0.0]])[
            :system.constraints.size1_in(2)]
    tc = system.trajectory_constraints
    g_fn = one_output(system.constraints, 0, system._cache)
    cases = {
        "G map": lambda: along_trajectory(g_fn, grid, Y, p, system._cache),
        "G vectorised": lambda: tc(grid, Y, p, rates=False),
        "G+Gd map": lambda: along_trajectory(system.constraints, grid, Y, p, system._cache),
        "G+Gd vectorised": lambda: tc(grid, Y, p),
    }
    if n <= 50:
        def whole(s):
            def f():
                r = simulate(s, grid, y0, values, rtol=RTOL, atol=ATOL, method="dopri")
                return r.max_drift, r.drift_rate
            return f
        cases["simulate + report, map"] = whole(old)
        cases["simulate + report, vectorised"] = whole(system)
    for f in cases.values():  # warm: functions built, caches filled
        f()
    G0, Gd0 = along_trajectory(system.constraints, grid, Y, p, system._cache)
    G1, Gd1 = tc(grid, Y, p)
    times = {k: [] for k in cases}
    for _ in range(repeats):
        for k, f in cases.items():
            times[k].append(timed(f))
    print(f"\nn = {n}: {system.n_states} states, {len(grid)} points, {repeats} interleaved "
          f"repeats; max |ΔG| = {np.abs(G1 - G0).max():.1e}, "
          f"max |ΔĠ| = {np.abs(Gd1 - Gd0).max():.1e}")
    print(f"{'case':32s} {'median ms (min-max)':>26s}")
    for k, v in times.items():
        print(f"{k:32s} {spread(v):>26s}")
    for a, b in (("G map", "G vectorised"), ("G+Gd map", "G+Gd vectorised"),
                 ("simulate + report, map", "simulate + report, vectorised")):
        if a in times:
            r = np.asarray(times[a]) / np.asarray(times[b])
            print(f"  {a} / {b}: {np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--repeats", type=int, default=0,
                    help="interleaved repeats (default: 21 at n ≤ 10, 11 at 50, 5 above)")
    args = ap.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
          subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for n in args.sizes:
        run_size(n, args.repeats or (21 if n <= 10 else 11 if n <= 50 else 5))
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
