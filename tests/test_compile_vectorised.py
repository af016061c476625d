"""The vectorised evaluations of the performance work (issue 16) against per-point ones.

Each path is compared with an independent evaluation: the compiled function called
point by point through its ordinary call (``G``, ``Ġ`` of the drift report, in blocks of
points through a CasADi map), on random dense networks and several seeds; the buffered
direct right-hand sides of ``dopri`` on a function with structural zeros against the
closed-form solution.
"""

from __future__ import annotations

import casadi as ca
import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_system
from cognitive_action.compile import integration as integ
from cognitive_action.compile.explicit import dopri_step_function, integrate_dopri


def _dense_system(n: int, n_in: int = 2):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(n_in, n) for k in range(n))
    net = ca_.Network(g, list(range(n_in)), "tanh", outputs=[n - 1])
    theta = sp.Symbol("theta", real=True)
    pr = net.problem(weight=sp.exp(theta * ca_.t), parameters=[theta])
    return compile_system(ca_.derive_network(pr))


@pytest.mark.parametrize("elements", [10**9, 900, 200])  # one block; blocks + remainder
@pytest.mark.parametrize("seed", [0, 1])
def test_drift_blocks_equal_point_by_point_calls(monkeypatch, elements, seed):
    s = _dense_system(6)
    rng = np.random.default_rng(seed)
    n_t = 37
    times = np.sort(rng.uniform(0, 3, n_t))
    Y = rng.normal(size=(n_t, s.n_states))
    p = rng.uniform(0.2, 1.5, s.n_parameters)
    monkeypatch.setattr(integ, "MAP_ELEMENTS", elements)
    cache: dict = {}
    G, Gd = integ.along_trajectory(s.constraints, times, Y, p, cache)
    G2, Gd2 = integ.along_trajectory(s.constraints, times, Y, p, cache)  # cached map
    for k in range(n_t):
        g, gd = s.constraints(times[k], Y[k], p)
        assert np.abs(G[k] - np.asarray(g).ravel()).max() <= 1e-12
        assert np.abs(Gd[k] - np.asarray(gd).ravel()).max() <= 1e-12
    assert np.array_equal(G, G2) and np.array_equal(Gd, Gd2)


def test_dopri_with_structurally_zero_rhs_entries():
    # ẏ = (y₂, 0) with the second entry a structural zero: y = (2t, 2) exactly
    t, y, p = ca.SX.sym("t"), ca.SX.sym("y", 2), ca.SX.sym("p", 0)
    f = ca.Function("f", [t, y, p], [ca.vertcat(y[1], ca.SX(1, 1))])
    assert f.nnz_out(0) == 1
    grid = np.linspace(0.0, 3.0, 7)
    res = integrate_dopri(dopri_step_function(f, 2, 0), f, grid, np.array([0.0, 2.0]),
                          np.zeros(0), rtol=1e-10, atol=1e-12)
    assert np.abs(res.y[:, 0] - 2 * grid).max() <= 1e-12
    assert np.abs(res.y[:, 1] - 2.0).max() == 0.0
