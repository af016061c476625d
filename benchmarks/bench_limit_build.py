"""Benchmark: build time of the compiled limit law (issue 13's build targets).

For each net, in a fresh Python process per repeat (the symbol caches of a previous
build would flatter the next one), three stages are timed:

- ``declare``: ``Network`` / ``layered`` and ``Network.problem`` (the SymPy
  constraints of eq. 4 and the action; not part of the target, reported apart);
- ``derive``: :func:`~cognitive_action.derive.network.derive_network` (per-neuron
  templates, loss gradient);
- ``compile``: :class:`~cognitive_action.learn.kernel.LimitKernel` (templates solved
  and lambdified, levels, blocks, the loss and its gradient lambdified).

Targets (issue 13): derive + compile of the 64-32-10 limit law <= 1 s; of a dense
200-neuron net's <= 2 s. "Dense 200" in ``bench_compile.py``/``bench_integrate.py`` is a
*recurrent* net (every neuron feeds every non-input neuron, self-loops included), which
has no backprop limit (the limit law needs a feedforward graph); the nets here are the
200-neuron layered net 100-60-40 (8,400 weights) and the densest feedforward graph on 200
neurons, the complete DAG (2 inputs, every neuron fed by every earlier one: 19,899
weights, 198 levels).

Medians over ``--repeat`` processes with the min-max spread::

    python benchmarks/bench_limit_build.py
    python benchmarks/bench_limit_build.py --repeat 5 --nets 64-32-10 dag200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

NETS = ("64-32-10", "64-32-10 mixed", "100-60-40", "100-60-40 mixed", "dag200")
TARGET = {"64-32-10": 1.0, "64-32-10 mixed": 1.0}

CHILD = r"""
import json, sys, time
import networkx as nx
from cognitive_action.declare.network import Network, layered
from cognitive_action.derive.network import derive_network
from cognitive_action.learn.kernel import LimitKernel

def complete_dag(n, n_in=2):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(n_in, n) for k in range(j))
    return Network(g, list(range(n_in)), "tanh", outputs=[n - 1])

BUILD = {
    "64-32-10": lambda: layered([64, 32, 10]),
    "64-32-10 mixed": lambda: layered([64, 32, 10], output_activation="identity", bias=True),
    "100-60-40": lambda: layered([100, 60, 40]),
    "100-60-40 mixed": lambda: layered([100, 60, 40], output_activation="identity",
                                       bias=True),
    "dag200": lambda: complete_dag(200),
}
name = sys.argv[1]
t0 = time.perf_counter()
net = BUILD[name]()
problem = net.problem(loss="softmax_cross_entropy" if "mixed" in name else None)
t1 = time.perf_counter()
system = derive_network(problem)
t2 = time.perf_counter()
kernel = LimitKernel(system)
t3 = time.perf_counter()
print(json.dumps({"declare": t1 - t0, "derive": t2 - t1, "compile": t3 - t2,
                  "weights": len(net.w), "neurons": len(net.order), "blocks": len(kernel.blocks)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    runs: dict[str, list[dict]] = {name: [] for name in args.nets}
    for _ in range(args.repeat):  # interleaved: one process per net per round
        for name in args.nets:
            out = subprocess.run([sys.executable, "-c", CHILD, name], cwd=root, check=True,
                                 capture_output=True, text=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.repeat} fresh processes per net; seconds, median (min-max)")
    print(f"{'net':16s} {'neurons':>7s} {'weights':>7s} {'blocks':>6s} {'declare':>18s} "
          f"{'derive':>18s} {'compile':>18s} {'derive+compile':>18s} {'all three':>18s}  target")

    def cell(v: np.ndarray) -> str:
        return f"{np.median(v):6.3f} ({v.min():.3f}-{v.max():.3f})"

    for name, rs in runs.items():
        col = {k: np.array([r[k] for r in rs]) for k in ("declare", "derive", "compile")}
        build = col["derive"] + col["compile"]
        target = TARGET.get(name, 2.0)
        ok = "met" if np.median(build) <= target else "MISSED"
        r0 = rs[0]
        print(f"{name:16s} {r0['neurons']:7d} {r0['weights']:7d} {r0['blocks']:6d} "
              f"{cell(col['declare'])} {cell(col['derive'])} {cell(col['compile'])} "
              f"{cell(build)} {cell(build + col['declare'])}  <= {target:g} s {ok}")


if __name__ == "__main__":
    main()
