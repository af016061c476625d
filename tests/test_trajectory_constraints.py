"""The vectorised drift report of network systems (``CompiledSystem.trajectory_constraints``,
issue 16): ``G`` and ``Ġ`` at a whole block of output points at once.

Reference: ``system.constraints`` (the CasADi function of one state, built by
:meth:`_NetworkGraph.build`) called once per point. The evaluator sums ``W x`` with
NumPy's BLAS instead of CasADi's sparse product, so agreement is to round-off (1e-13
absolute on values of order 1-10), not bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.integration import constraints_along
from cognitive_action.declare.network import Network
from cognitive_action.declare.symbols import t as T_SYM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_compile import dense_problem  # noqa: E402

ACTS = ("tanh", "logistic", "identity", "softplus",
        lambda a: a / sp.sqrt(1 + a ** 2),  # powers
        sp.atan)


def dense_system(n: int):
    """bench_compile's dense tanh network of ``n`` neurons (2 inputs), compiled."""
    return compile_system(ca_.derive_network(dense_problem(n)[1]))


def random_dag_system(rng, bias: bool, n: int = 9, n_in: int = 3):
    """Skip arcs, a random activation per neuron (mixed templates within a level), input
    signals that depend on ``t`` (one left a constant parameter)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(1, n + 1))
    for j in range(n_in + 1, n + 1):
        last = j - 1
        preds = {k for k in range(1, last) if rng.random() < 0.6} | {last}
        g.add_edges_from((k, j) for k in preds)
    acts = {j: ACTS[int(rng.integers(len(ACTS)))] for j in range(n_in + 1, n + 1)}
    net = Network(g, list(range(1, n_in + 1)), activations=acts, bias=bias,
                  outputs=[n - 1, n])
    w = float(rng.uniform(0.5, 2.0))
    signals = {"e1": sp.sin(w * T_SYM) + 0.3, "e2": sp.exp(-T_SYM / 3) * sp.cos(2 * T_SYM)}
    return compile_system(net.problem(), signals=signals)


def point_by_point(system, times, Y, p):
    G = np.empty((len(times), len(system.constraint_names)))
    Gd = np.empty_like(G)
    for k, (t, y) in enumerate(zip(times, Y)):
        g, gd = system.constraints(t, y, p)
        G[k], Gd[k] = np.asarray(g).ravel(), np.asarray(gd).ravel()
    return G, Gd


def random_points(system, rng, n_t: int, scale: float = 0.7):
    times = np.sort(rng.uniform(-1.0, 5.0, n_t))
    Y = rng.normal(size=(n_t, system.n_states)) * scale
    p = rng.uniform(0.2, 1.5, system.constraints.size1_in(2))
    return times, Y, p


def check(system, rng, n_t: int, block: int | None = None):
    tc = system.trajectory_constraints
    assert tc is not None
    if block is not None:
        tc.K = block  # several blocks and a partial last one
    times, Y, p = random_points(system, rng, n_t)
    G_ref, Gd_ref = point_by_point(system, times, Y, p)
    G, Gd = tc(times, Y, p)
    G0, none = tc(times, Y, p, rates=False)
    assert none is None
    assert np.abs(Gd_ref).max() > 0.1 and np.abs(G_ref).max() > 0.1  # not trivially zero
    np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(Gd, Gd_ref, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(G0, G)  # G alone: the same operations
    # the report's entry point, each output alone and both
    Gb, Gdb = constraints_along(system, times, Y, p)
    np.testing.assert_array_equal(Gb, G)
    np.testing.assert_array_equal(Gdb, Gd)
    np.testing.assert_array_equal(constraints_along(system, times, Y, p, 1)[0], Gd)


@pytest.mark.parametrize("n", [10, 50])
def test_dense_nets_equal_point_by_point_constraints(n):
    system = dense_system(n)
    assert system.trajectory_constraints.graph.block is not None  # the matmul path
    rng = np.random.default_rng([n, 3])
    check(system, rng, 40 if n == 50 else 200)
    check(system, rng, 23, block=5)


@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_with_skip_arcs_mixed_activations_bias_and_signals(seed):
    rng = np.random.default_rng([seed, 41])
    system = random_dag_system(rng, bias=seed % 2 == 0)
    graph = system.trajectory_constraints.graph
    assert graph.block is None  # the per-arc path
    assert len([rows for _, _, rows in graph.groups if rows]) >= 2  # mixed templates
    check(system, rng, 120)
    check(system, rng, 31, block=4)


def test_layered_net_with_bias_and_an_unordered_input_list():
    """A layered net (several blocks of arcs, not one) with the inputs listed out of the
    neurons' order."""
    g = nx.DiGraph()
    g.add_edges_from([(0, 5), (2, 5), (0, 6), (2, 6), (5, 7), (6, 7), (5, 8), (6, 8),
                      (2, 8)])
    net = Network(g, [2, 0], activations={5: "softplus", 6: "tanh", 7: "identity",
                                          8: "logistic"}, bias=True, outputs=[7, 8])
    system = compile_system(net.problem(), signals={"e2": sp.sin(3 * T_SYM)})
    check(system, np.random.default_rng(7), 50, block=6)


def test_simulation_report_uses_it_and_matches_the_constraints():
    """A run of a random graph with a time-dependent input: the report read from the
    Simulation against point-by-point calls."""
    rng = np.random.default_rng(11)
    system = random_dag_system(rng, bias=True, n=7)
    names = system.parameters
    values = {k: 1.0 for k in names}
    y0 = np.zeros(system.n_states)
    sim = simulate(system, np.linspace(0, 2, 51), y0, values, method="dopri",
                   check_initial=False, stability="ignore")
    G_ref, Gd_ref = point_by_point(system, sim.times, sim.y, sim.params)
    assert np.abs(G_ref).max() > 1e-3
    assert abs(sim.max_drift - np.abs(G_ref).max()) <= 1e-13
    np.testing.assert_allclose(sim.drift_rate, np.abs(Gd_ref).max(axis=1), rtol=0,
                               atol=1e-13)
    np.testing.assert_allclose(sim.constraint_values, G_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(sim.constraint_rates, Gd_ref, rtol=0, atol=1e-13)

