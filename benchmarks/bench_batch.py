"""Benchmark: batched runs (issue 3, item 4): 64 parameter values, serial against ``map``.

The system is the XOR net with finite masses (eq. 8-10, network route, 22 states,
inputs ``sin t`` and ``cos 2t``, target 0.5 on the output), integrated by CVODES BDF
(rtol 1e-8, atol 1e-10) over ``t ∈ [0, T]`` with 101 output points, for 64 values of the
weight mass ``m_W`` in ``[0.5, 8]``. Consistent initial states (``G = 0``, ``Ġ = 0``) are
completed once per value before timing.

Side by side, in one process, same compiled system:

- ``serial simulate``: a Python loop of 64 :func:`simulate` calls (each with its own
  checks and drift evaluation);
- ``batch, 1 thread``: :func:`simulate_batch` with a serial ``map`` (one call);
- ``batch, 2 threads``: :func:`simulate_batch` with ``map(64, "thread", 2)`` (one call);
- ``batch, 2 threads, chunks of c``: the same in chunks of ``c`` runs (what a progress
  bar costs: one mapped call per chunk).

Every batch is checked against the serial runs (max |Δ| printed; identical integrators
give identical numbers). Each variant runs ``--repeat`` times; the best time is
reported, with the ratio to the serial loop (< 1 is faster). The integrator and the
mapped functions are built once before timing (``build`` column: the first call).

    python benchmarks/bench_batch.py              # T = 10, 64 values
    python benchmarks/bench_batch.py --tf 5 --values 16 --repeat 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import casadi
import numpy as np
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate, simulate_batch
from cognitive_action.declare import symbols as S


def setup(n_values: int):
    net = ca_.xor()
    pr = net.problem(inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    weights = {str(w): rng.normal() * 0.5 for w in net.weights}
    values = np.linspace(0.5, 8.0, n_values)
    ics = {float(v): ca_.complete_initial_conditions(el, weights | {"m_x": 1.0, "m_W": v})
           for v in values}
    return compile_system(pr), values, ics


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--values", type=int, default=64)
    ap.add_argument("--tf", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunks", type=int, nargs="*", default=[2, 8, 32])
    args = ap.parse_args()

    t0 = time.perf_counter()
    system, values, ics = setup(args.values)
    print(f"{datetime.date.today()}, CasADi {casadi.__version__}, {os.cpu_count()} cores, "
          f"system {system.name!r} ({system.n_states} states), {args.values} values of m_W, "
          f"t in [0, {args.tf:g}], 101 points, cvodes BDF; setup {time.perf_counter() - t0:.1f} s")
    span, opts = (0.0, args.tf), {"rtol": 1e-8, "atol": 1e-10, "n_points": 101}

    def serial():
        return np.stack([simulate(system, span, ics[float(v)], **opts).y for v in values])

    def batch(threads: int, chunk: int | None = None):
        def run():
            b = simulate_batch(system, span, lambda p: ics[p["m_W"]], grid={"m_W": values},
                               n_threads=threads, chunk_size=chunk, progress=False, **opts)
            assert not b.failed.any(), b.failures
            return b.values
        return run

    variants = [("serial simulate", serial), ("batch, 1 thread", batch(1)),
                ("batch, 2 threads", batch(2))]
    variants += [(f"batch, 2 threads, chunks of {c}", batch(2, c)) for c in args.chunks]
    rows, ref, t_serial = [], None, None
    for name, fn in variants:
        tb = time.perf_counter()
        first = fn()  # builds the integrator / mapped functions
        build = time.perf_counter() - tb
        t, out = best_of(args.repeat, fn)
        if ref is None:
            ref, t_serial = first, t
        delta = float(np.max(np.abs(out - ref)))
        rows.append((name, build, t, t / t_serial, delta))

    print(f"\n| variant | first call | best of {args.repeat} | per run | ratio to serial "
          f"| max abs diff to serial |")
    print("|---|---|---|---|---|---|")
    for name, build, t, ratio, delta in rows:
        print(f"| {name} | {build:.3f} s | {t:.3f} s | {1e3 * t / args.values:.2f} ms "
              f"| {ratio:.2f} | {delta:.1e} |")


if __name__ == "__main__":
    main()
