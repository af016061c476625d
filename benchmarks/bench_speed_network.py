"""Benchmark: building a speed-c network (eq. 18-20, vakonomic), template route vs generic.

The network is dense and recurrent: ``n`` neurons, 2 of them inputs (constant signals),
every other neuron receiving arcs from all ``n`` neurons (self-loops included), ``tanh``
neurons of eq. (19) with the speed ``c`` as a parameter, time weight ``ϖ = exp(θ t)``,
squared error on the last neuron. States: ``x, W, ẋ, Ẇ`` and the multipliers ``ν`` of the
``n − 2`` neuron constraints (``2 (n + n (n − 2)) + n − 2``).

Side by side, in one process:

- ``template``: :func:`~cognitive_action.compile.network_speed.compile_speed_network`
  (derive on a one-neuron template, then MX matrix-vector operations on the sparse ``W``;
  no linear solve);
- ``generic``: ``compile_system(problem, route="generic")``: ``euler_lagrange`` derives
  every entry of the mass-matrix form, each is translated into a scalar SX graph, the
  unknowns come from a sparse QR linear-solve node.

Columns: build time (derive + compile; declaring the problem is reported apart, it is the
same for both), the time of one right-hand-side evaluation (ordinary call on
CasADi ``DM`` arguments, best of several) and the maximal relative difference of the two
right-hand sides at a random state (a sanity check, the tests assert 1e-12). Ratios are
generic / template. Run:

    python benchmarks/bench_speed_network.py                  # generic at 10, 20, 50
    python benchmarks/bench_speed_network.py --generic 10 20 --template 200
"""

from __future__ import annotations

import argparse
import time
import timeit

import casadi
import networkx as nx
import numpy as np
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_speed_network, compile_system

N_IN = 2
C = sp.Symbol("c", positive=True)
THETA = sp.Symbol("theta", real=True)


def dense_problem(n: int):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(N_IN, n) for k in range(n))
    net = ca_.Network(g, list(range(N_IN)), "tanh", speed=C, outputs=[n - 1])
    return net.problem(weight=sp.exp(THETA * ca_.t), parameters=[C, THETA])


def values(n: int) -> dict[str, float]:
    return {"c": 8.0, "theta": 0.5, "m_x": 0.7, "m_W": 1.3, "e0": 0.4, "e1": -0.3,
            f"y{n - 1}": 0.2}


def call_time(system, y, p, number: int = 20) -> float:
    """Seconds per call of the right-hand side on CasADi DM arguments (converting an
    80,000-long NumPy array at each call costs 6 ms by itself at n = 200)."""
    f, y, p = system.rhs, casadi.DM(y), casadi.DM(p)
    return min(timeit.repeat(lambda: f(0.3, y, p), number=number, repeat=3)) / number


def run(n: int, with_generic: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    problem = dense_problem(n)
    declare = time.perf_counter() - t0
    t0 = time.perf_counter()
    tpl = compile_speed_network(problem)
    build_t = time.perf_counter() - t0
    rng = np.random.default_rng(n)
    y = rng.normal(size=tpl.n_states) / np.sqrt(n)
    p = tpl.parameter_vector(values(n))
    out = {"n": n, "states": tpl.n_states, "declare": declare, "template_build": build_t,
           "template_call": call_time(tpl, y, p)}
    if with_generic:
        t0 = time.perf_counter()
        gen = compile_system(problem, route="generic")
        out["generic_build"] = time.perf_counter() - t0
        out["generic_call"] = call_time(gen, y, p)
        a = np.asarray(tpl.rhs(0.3, y, p)).ravel()
        b = np.asarray(gen.rhs(0.3, y, p)).ravel()
        out["max_rel_diff"] = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generic", type=int, nargs="*", default=[10, 20, 50],
                    help="sizes built by both routes")
    ap.add_argument("--template", type=int, nargs="*", default=[200],
                    help="sizes built by the template route alone")
    args = ap.parse_args()
    print(f"{'n':>4} {'states':>7} {'declare s':>9} {'template s':>10} {'generic s':>10} "
          f"{'build ratio':>11} {'rhs tpl ms':>10} {'rhs gen ms':>10} {'rhs ratio':>9} "
          f"{'max rel diff':>12}")
    for n in args.generic + args.template:
        r = run(n, n in args.generic)
        gen = "generic_build" in r
        print(f"{r['n']:>4} {r['states']:>7} {r['declare']:>9.3f} {r['template_build']:>10.3f} "
              + (f"{r['generic_build']:>10.3f} {r['generic_build'] / r['template_build']:>11.1f} "
                 if gen else f"{'-':>10} {'-':>11} ")
              + f"{1e3 * r['template_call']:>10.3f} "
              + (f"{1e3 * r['generic_call']:>10.3f} "
                 f"{r['generic_call'] / r['template_call']:>9.1f} {r['max_rel_diff']:>12.1e}"
                 if gen else f"{'-':>10} {'-':>9} {'-':>12}"), flush=True)


if __name__ == "__main__":
    main()
