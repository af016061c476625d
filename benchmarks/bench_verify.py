"""Benchmark: ``verify()`` at size (issue 12, item 5).

Cases, each declared once before timing (the declaration is timed apart):

- ``64-32-10``: ``ca.layered([64, 32, 10])`` with tanh, 106 neurons, 2368 weights;
- ``dense-200``: a dense recurrent net of 200 neurons (10 inputs, 190 hidden neurons
  all connected to each other, self-loops included, and to every input; 38000 weights;
  outputs the last 5 neurons);
- ``2-4-3-1-ce``: the 2-4-3-1 logistic net with a cross-entropy loss that used to hang
  (the symbolic backprop check is skipped by size; with ``--symbolic`` it runs under
  its budget).

Runs are interleaved (case A, B, C, A, B, C, ...) so that drifts of a shared machine hit
every case alike; the table gives the median and the spread (min-max) over
``--repeat`` runs, and the verdict counts of the last run.

    python benchmarks/bench_verify.py                 # 5 repeats
    python benchmarks/bench_verify.py --repeat 3 --cases 64-32-10 dense-200
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S
from cognitive_action.verify import verify


def layered_64_32_10():
    return ca.layered([64, 32, 10]).problem()


def dense_200():
    n_in, n = 10, 200
    hidden = range(n_in + 1, n + 1)
    edges = [(i, j) for i in range(1, n_in + 1) for j in hidden]
    edges += [(k, j) for k in hidden for j in hidden]
    net = ca.Network(edges, inputs=range(1, n_in + 1), outputs=range(n - 4, n + 1))
    return net.problem()


def cross_entropy_2431():
    theta, = S.parameters("theta")
    net = ca.layered([2, 4, 3, 1], "logistic")
    x, y = net.x[10], S.symbol("y10")
    return net.problem(weight=sp.exp(theta * S.t), parameters=[theta],
                       loss=-(y * sp.log(x) + (1 - y) * sp.log(1 - x)))


CASES = {"64-32-10": layered_64_32_10, "dense-200": dense_200,
         "2-4-3-1-ce": cross_entropy_2431}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--symbolic", action="store_true",
                    help="verify(symbolic=True): symbolic checks at any size, under budget")
    ap.add_argument("--budget", type=float, default=20.0)
    args = ap.parse_args()
    print(f"# bench_verify {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
          f"UTC, {os.cpu_count()} cpus, repeat {args.repeat}, symbolic={args.symbolic}, "
          f"budget {args.budget:g} s")
    problems, declare = {}, {}
    for name in args.cases:
        t0 = time.perf_counter()
        problems[name] = CASES[name]()
        declare[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {n: [] for n in args.cases}
    counts: dict[str, dict[str, int]] = {}
    for _ in range(args.repeat):
        for name in args.cases:  # interleaved
            t0 = time.perf_counter()
            report = verify(problems[name], symbolic=True if args.symbolic else None,
                            budget=args.budget, progress=False)
            times[name].append(time.perf_counter() - t0)
            counts[name] = report.counts()
    print(f"{'case':12s} {'declare s':>9s} {'median s':>9s} {'min s':>7s} {'max s':>7s}  "
          "last verdict")
    for name in args.cases:
        ts = times[name]
        c = counts[name]
        print(f"{name:12s} {declare[name]:9.2f} {statistics.median(ts):9.2f} "
              f"{min(ts):7.2f} {max(ts):7.2f}  {c['pass']} pass, {c['fail']} fail, "
              f"{c['skip']} skip")


if __name__ == "__main__":
    main()
