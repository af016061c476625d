"""Derive-time scaling of the engine on dense learning systems (issue: derivation engine).

The learning system of a dense network of ``n`` neurons (every arc, self-loops
included, so ``n`` outputs and ``n²`` weights), with ``ϖ = exp(θt)`` and a squared loss
on one output, is derived by:

- ``naive``: plain SymPy matrices — ``G.jacobian(q)``, ``A = J M⁻¹ Jᵀ`` and ``b`` of
  eq. (10) expanded densely (the route the issue measured at 45-55 s for n = 30);
- ``generic``: ``euler_lagrange`` + ``multiplier_equation`` (sparse, memoized sweeps);
- ``templates``: ``derive_network`` (per-neuron templates; symbolic work independent
  of ``n``) and one numeric evaluation of eq. (10) from them;
- ``materialize``: the template route's full symbolic system (every entry a SymPy
  expression, linear in the number of arcs).

Declaring the problem (building the constraint expressions) is timed apart. All
methods run in one process; the script prints times and ratios to the naive route.
Usage: ``python benchmarks/bench_derive.py [--sizes 10 30 100 200] [--naive-max 10]``.
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np
import sympy as sp

from cognitive_action.declare import Network
from cognitive_action.declare.symbols import t
from cognitive_action.derive import (
    NetworkState,
    derive_network,
    euler_lagrange,
    multiplier_equation,
)

THETA = sp.Symbol("theta", real=True)


def dense_problem(n: int):
    g = nx.complete_graph(n, nx.DiGraph)
    g.add_edges_from((i, i) for i in range(n))
    net = Network(g, [], "tanh", outputs=[n - 1])
    return net, net.problem(weight=sp.exp(THETA * t), parameters=[THETA])


def naive(problem) -> None:
    """Dense SymPy: the Jacobian, A = J M⁻¹ Jᵀ and b of eq. (10), expanded."""
    q = sp.Matrix(problem.coordinates)
    G = sp.Matrix([c.expr for c in problem.constraints])
    J = G.jacobian(q)
    minv = sp.diag(*[1 / problem.action.masses[c] for c in problem.coordinates])
    A = J * minv * J.T
    F = problem.action.lagrangian / problem.action.weight
    f = sp.Matrix([sp.diff(F, c) for c in problem.coordinates])
    b = J * minv * f
    assert A.shape == (len(G), len(G)) and b.shape == (len(G), 1)


def generic(problem) -> None:
    me = multiplier_equation(euler_lagrange(problem))
    me.b_entries()


def templates(net, problem) -> None:
    ns = derive_network(problem)
    n, m = len(net.neurons), len(net.weights)
    rng = np.random.default_rng(0)
    state = NetworkState(rng.normal(size=n), rng.normal(size=n),
                         rng.normal(size=m) / n, rng.normal(size=m), 0.0)
    ns.evaluate(state, {"theta": 1.0, "m_x": 1.0, "m_W": 1.0, f"y{n - 1}": 0.5})


def materialize(problem) -> None:
    multiplier_equation(derive_network(problem).euler_lagrange()).b_entries()


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 200])
    ap.add_argument("--naive-max", type=int, default=10,
                    help="largest n for the naive route (30 takes about a minute)")
    ap.add_argument("--generic-max", type=int, default=30)
    ap.add_argument("--materialize-max", type=int, default=100)
    args = ap.parse_args()
    print(f"{'n':>4} {'coords':>7} {'declare':>8} {'naive':>8} {'generic':>8} "
          f"{'templates':>10} {'materialize':>12}   ratios to naive (generic, templates)")
    for n in args.sizes:
        t0 = time.perf_counter()
        net, problem = dense_problem(n)
        t_decl = time.perf_counter() - t0
        t_naive = timed(naive, problem) if n <= args.naive_max else float("nan")
        t_gen = timed(generic, problem) if n <= args.generic_max else float("nan")
        t_tpl = timed(templates, net, problem)
        t_mat = timed(materialize, problem) if n <= args.materialize_max else float("nan")
        ratio = (f"{t_naive / t_gen:7.1f}x {t_naive / t_tpl:9.1f}x"
                 if np.isfinite(t_naive) else "   (naive skipped)")
        print(f"{n:4d} {len(problem.coordinates):7d} {t_decl:7.2f}s {t_naive:7.2f}s "
              f"{t_gen:7.2f}s {t_tpl:9.3f}s {t_mat:11.2f}s   {ratio}", flush=True)


if __name__ == "__main__":
    main()
