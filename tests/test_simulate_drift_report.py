"""The per-call work of ``simulate(method="dopri")`` on a compiled system: the drift
report and the step loop (issue 16).

References: ``system.constraints`` called point by point (the drift report must be its
values at every output point, bit for bit, whichever of ``G`` and ``Ġ`` is read first);
a hand-written NumPy right-hand side of eq. (8)-(10) for a dense tanh network, run by
SciPy's ``RK45`` (the same Dormand-Prince pair, error norm, step control and continuous
extension: ours must take the same steps and agree to round-off) and by SciPy's
``DOP853`` at rtol 1e-12 (the accuracy).
"""

from __future__ import annotations

import sys
from pathlib import Path

import casadi as ca
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.integration import one_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_compile import N_IN, VALUES, dense_problem  # noqa: E402
from bench_compile import numpy_rhs_factory as numpy_rhs  # noqa: E402


def dense_system(n: int):
    """bench_compile's dense tanh network of ``n`` neurons, compiled."""
    return compile_system(ca_.derive_network(dense_problem(n)[1]))


def consistent_state(n: int, seed: int) -> np.ndarray:
    """``x = tanh(W x)`` on the hidden neurons, every velocity 0 (then Ġ = 0 too)."""
    rng = np.random.default_rng(seed)
    nh = n - N_IN
    w = rng.normal(size=(nh, n)) * 0.8 / np.sqrt(n)
    W = np.zeros((n, n))
    W[N_IN:] = w
    x = np.zeros(n)
    x[:N_IN] = [VALUES["e0"], VALUES["e1"]]
    for _ in range(300):
        x[N_IN:] = np.tanh(W @ x)[N_IN:]
    return np.concatenate([x, w.ravel(), np.zeros(n), np.zeros(nh * n)])


@pytest.fixture(scope="module")
def dense10():
    return dense_system(10)


def _run(system, n, seed, **kw):
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n, seed)
    grid = np.linspace(0.0, 10.0, 301)
    opts = dict(rtol=1e-6, atol=1e-9, method="dopri", max_steps=10**6) | kw
    return simulate(system, grid, y0, values, **opts), values, y0, grid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drift_report_is_the_constraints_at_every_output_point(dense10, seed):
    """G and Ġ of the report against one call of ``system.constraints`` per output point
    (to 1e-13: the network's vectorised evaluator sums ``W x`` in BLAS's order), read in
    either order (both are computed together on the first read), the same numbers
    either way; ``max_drift`` and ``drift_rate`` from them."""
    first_g, _, _, _ = _run(dense10, 10, seed)
    first_gd, _, _, _ = _run(dense10, 10, seed)
    np.testing.assert_array_equal(first_g.y, first_gd.y)
    Gd_first = first_gd.constraint_rates  # Ġ first: G comes with it
    G_first = first_g.constraint_values  # G first: Ġ comes with it
    sim = first_g
    G = np.empty_like(G_first)
    Gd = np.empty_like(Gd_first)
    for k, (t, y) in enumerate(zip(sim.times, sim.y)):
        g, gd = dense10.constraints(t, y, sim.params)
        G[k], Gd[k] = np.asarray(g).ravel(), np.asarray(gd).ravel()
    assert np.abs(G).max() > 1e-12  # the drift is not trivially zero on this run
    np.testing.assert_allclose(G_first, G, rtol=0, atol=1e-13)
    np.testing.assert_allclose(Gd_first, Gd, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(first_gd.constraint_values, G_first)
    np.testing.assert_array_equal(first_g.constraint_rates, Gd_first)
    assert sim.max_drift == np.abs(G_first).max()
    assert abs(sim.max_drift - np.abs(G).max()) <= 1e-13
    np.testing.assert_array_equal(sim.drift_rate, np.abs(Gd_first).max(axis=1))


def test_drift_report_is_computed_on_read_and_given_arrays_are_kept(dense10,
                                                                     monkeypatch):
    """Nothing is evaluated along the trajectory until the report is read; max_drift
    evaluates G and Ġ together, once; a Simulation built with explicit arrays (batched runs, the
    adjoint sweep) keeps them as given."""
    import sys

    module = sys.modules["cognitive_action.compile.simulate"]
    calls = []
    real = module.constraints_along

    def counting(system, times, Y, p, output=None):
        calls.append(output)
        return real(system, times, Y, p, output)

    monkeypatch.setattr(module, "constraints_along", counting)
    sim, _, _, _ = _run(dense10, 10, 0)
    assert calls == []
    drift = sim.max_drift
    assert calls == [None] and drift == np.abs(sim.constraint_values).max()
    G = sim.constraint_values
    assert sim.constraint_values is G and calls == [None]  # computed once
    assert sim.constraint_rates is not None and calls == [None]  # Ġ came with G
    other = type(sim)(system=sim.system, times=sim.times, y=sim.y, params=sim.params,
                      method=sim.method, stats={}, constraint_values=G[:2],
                      constraint_rates=None)
    assert other.constraint_values.shape == (2, G.shape[1])
    assert other.constraint_rates is None and other.drift_rate is None


def test_one_output_is_that_output_bit_for_bit():
    """:func:`one_output` of an MX function (inlined and pruned) and of an SX one,
    against the whole function at random points, for each output."""
    rng = np.random.default_rng(3)
    for sym in (ca.MX, ca.SX):
        t, y, p = sym.sym("t"), sym.sym("y", 4), sym.sym("p", 2)
        a = ca.mtimes(ca.reshape(y, 2, 2), p)
        f = ca.Function("f", [t, y, p], [ca.tanh(a) - p * t, ca.sin(a) * y[0]])
        for i in range(2):
            g = one_output(f, i, {})
            assert g.n_out() == 1 and g.n_instructions() < f.n_instructions()
            for _ in range(5):
                args = (rng.normal(), rng.normal(size=4), rng.normal(size=2))
                np.testing.assert_array_equal(np.asarray(g(*args)),
                                              np.asarray(f(*args)[i]))


def test_dopri_takes_scipy_rk45_steps_on_a_dense_network(dense10):
    """The same method as SciPy's RK45 on the hand-written right-hand side: the same
    number of steps and rejections (SciPy: nfev = 6 per attempt + 2), the same states
    to round-off; and within 1e-6 of DOP853 at rtol 1e-12."""
    n = 10
    sim, values, y0, grid = _run(dense10, n, 1)
    f = numpy_rhs(n, values)
    np.testing.assert_allclose(f(0.3, sim.y[40]), np.asarray(dense10.rhs(
        0.3, sim.y[40], sim.params)).ravel(), rtol=1e-10, atol=1e-12)
    rk = solve_ivp(f, (grid[0], grid[-1]), y0, t_eval=grid, method="RK45", rtol=1e-6,
                   atol=1e-9)
    assert sim.stats["nfevals"] == rk.nfev
    scale = np.abs(rk.y).max()
    assert np.abs(sim.y - rk.y.T).max() / scale < 1e-13  # measured 6e-16
    ref = solve_ivp(f, (grid[0], grid[-1]), y0, t_eval=grid, method="DOP853", rtol=1e-12,
                    atol=1e-13)
    assert np.abs(sim.y - ref.y.T).max() / scale < 1e-6  # measured 6e-8 (rtol 1e-6)


def test_small_steps_without_a_linear_solve_run_in_scalar_form():
    """The oscillator's step is expanded to SX (no linear solve in its right-hand side):
    the same numbers as the MX step, bit for bit, at random inputs; the dense network's
    step (eq. 10 is a linear solve) stays MX."""
    from references import oscillator

    from cognitive_action.compile.explicit import dopri_step_function
    from cognitive_action.compile.integration import dopri_function

    osc = compile_system(oscillator())
    step = dopri_function(osc)
    assert step.is_a("SXFunction")
    mx = dopri_step_function(osc.rhs, osc.n_states, osc.n_parameters)
    rng = np.random.default_rng(5)
    for _ in range(5):
        args = (rng.normal(), rng.normal(size=2), rng.uniform(1e-3, 0.5),
                rng.uniform(0.5, 2.0, size=osc.n_parameters), rng.normal(size=2), 1e-6,
                1e-9)
        for a, b in zip(step(*args), mx(*args)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert dopri_function(dense_system(6)).is_a("MXFunction")


def test_steps_without_output_points_skip_the_dense_output(dense10):
    """On a coarse grid most steps hold no output point and run the step function without
    ``Q``: the same steps and states, bit for bit, as with ``Q`` at every step, and the
    end state within 1e-6 of DOP853 at rtol 1e-12."""
    from cognitive_action.compile.explicit import integrate_dopri
    from cognitive_action.compile.integration import dopri_function

    n = 10
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n, 2)
    grid = np.array([0.0, 4.0, 10.0])
    p = dense10.parameter_vector(values)
    runs = [integrate_dopri(dopri_function(dense10), dense10.rhs, grid, y0, p, rtol=1e-6,
                            atol=1e-9, plain_step=plain)
            for plain in (None, dopri_function(dense10, dense=False))]
    assert runs[0].stats == runs[1].stats and runs[0].stats["nsteps"] > 10
    np.testing.assert_array_equal(runs[0].y, runs[1].y)
    sim = simulate(dense10, grid, y0, values, rtol=1e-6, atol=1e-9, method="dopri")
    np.testing.assert_array_equal(sim.y, runs[1].y)
    ref = solve_ivp(numpy_rhs(n, values), (0.0, 10.0), y0, t_eval=grid, method="DOP853",
                    rtol=1e-12, atol=1e-13)
    assert np.abs(sim.y - ref.y.T).max() / np.abs(ref.y).max() < 1e-6
