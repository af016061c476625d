"""Benchmark: declare + derive + compile a dense network (issue 16: "≤ 2 s at 400 neurons").

The network is ``bench_compile.dense_problem(n)``: ``n`` neurons, 2 inputs, every arc and
self-loop into the ``n - 2`` others (``n (n - 2)`` weights: 159,200 at n = 400), ``tanh``,
``ϖ = exp(θ t)``, squared loss on the last neuron. Three stages, as a user runs them:

- ``declare``: ``dense_problem(n)`` (the networkx digraph, ``Network``,
  ``Network.problem``); ``graph`` is its networkx part alone, measured apart;
- ``derive``: ``derive_network`` (eq. 8-10 by per-neuron templates);
- ``compile``: ``compile_system`` (the CasADi network route).

Each repeat runs in a **fresh process** (the symbol and SymPy caches start empty, as in
a user's first call); sizes are interleaved across repeats. Printed: median and min-max
over the repeats of the wall time and of the process's CPU time (on a loaded machine the
CPU time is the steadier measure), with the load average before and after. Run:

    python benchmarks/bench_declare.py                 # n = 100 200 400, 3 repeats
    python benchmarks/bench_declare.py --sizes 400 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

STAGES = ("graph", "declare", "derive", "compile", "total")


def one(n: int) -> dict[str, dict[str, float]]:
    """Time the three stages once in this process."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import networkx as nx
    from bench_compile import N_IN, dense_problem

    from cognitive_action.compile import compile_system
    from cognitive_action.derive.network import derive_network

    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    marks: dict[str, list[float]] = {k: [] for k in clocks}

    def mark() -> None:
        for k, c in clocks.items():
            marks[k].append(c())

    mark()
    g = nx.DiGraph()  # the graph of dense_problem, timed alone
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(N_IN, n) for k in range(n))
    mark()
    net, problem = dense_problem(n)
    mark()
    system = derive_network(problem)
    mark()
    compile_system(system)
    mark()
    out = {}
    for k, m in marks.items():
        out[k] = {"graph": m[1] - m[0], "declare": m[2] - m[1], "derive": m[3] - m[2],
                  "compile": m[4] - m[3], "total": m[4] - m[1]}
    out["weights"] = len(net.weights)
    return out


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return
    if args.repeats < 3:
        ap.error("use at least 3 repeats (the report gives a median and a spread)")
    print(f"load average before: {_load()}")
    runs: dict[int, list[dict]] = {n: [] for n in args.sizes}
    for r in range(args.repeats):
        for n in args.sizes:  # interleaved: each size sees the same machine
            done = subprocess.run([sys.executable, __file__, "--one", str(n)],
                                  capture_output=True, text=True, check=True)
            runs[n].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  repeat {r + 1}, n = {n}: total {runs[n][-1]['wall']['total']:.3f} s "
                  f"wall, {runs[n][-1]['cpu']['total']:.3f} s CPU", flush=True)
    print(f"load average after: {_load()}")
    print(f"\nmedian (min-max) of {args.repeats} fresh processes, seconds; total = declare "
          "+ derive + compile (declare includes graph)")
    for clock in ("wall", "cpu"):
        print(f"\n{clock}:")
        print("| n | weights | " + " | ".join(STAGES) + " |")
        print("|---|---:|" + "---:|" * len(STAGES))
        for n in args.sizes:
            cells = [_fmt([run[clock][s] for run in runs[n]]) for s in STAGES]
            print(f"| {n} | {runs[n][0]['weights']:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
