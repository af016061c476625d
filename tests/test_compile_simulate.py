"""Simulations against closed forms and conservation laws, and the typed failures.

References: the closed-form solution of ``m ẍ + θ m ẋ + k x = 0``; the non-minimal
pendulum against the minimal-coordinate pendulum ``φ̈ = -(g/L) sin φ`` solved by SciPy,
with its energy; the knife edge's energy and constraint; the blow-up time of
``ẍ = 4x³`` from its energy integral (``scipy.integrate.quad``). Tolerances are stated
beside each assertion.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp
from references import G_ACC, oscillator, oscillator_solution, pendulum
from scipy.integrate import quad, solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import STABLE_VARIANTS, compile_system, simulate
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.errors import (
    CompileError,
    InconsistentInitialConditionsError,
    SimulationError,
    UnstableSystemError,
)


@pytest.fixture(scope="module")
def osc_system():
    return compile_system(oscillator())


# (method, options, tolerance on x against the closed form over t ∈ [0, 10])
METHOD_CASES = [
    ("cvodes", {}, 1e-7),
    ("adams", {}, 1e-7),
    ("idas", {}, 1e-6),
    ("erk", {}, 1e-7),
    ("rk", {"steps": 20}, 1e-6),
    ("collocation", {"steps": 4}, 1e-6),
]


@pytest.mark.parametrize(("method", "opts", "tol"), METHOD_CASES,
                         ids=[c[0] for c in METHOD_CASES])
@pytest.mark.parametrize("theta", [0.0, 0.4, 5.0])
def test_weighted_oscillator_closed_form(osc_system, method, opts, tol, theta):
    params = {"m": 1.5, "k": 6.0, "theta": theta}
    run = simulate(osc_system, (0.0, 10.0), {"x": 1.0, "x_dot": -0.5}, params,
                   method=method, rtol=1e-10, atol=1e-12, n_points=41, **opts)
    exact = oscillator_solution(run.times, 1.5, 6.0, theta, 1.0, -0.5)
    assert np.max(np.abs(run["x"] - exact)) < tol
    assert run.drift is None and run.max_drift == 0.0
    assert run.stats["run_time"] >= 0 and run.stats["output_points"] == 41


def test_output_grid_and_result_access(osc_system):
    grid = np.array([0.0, 0.1, 0.5, 2.0])
    run = simulate(osc_system, grid, [1.0, 0.0], {"m": 1.0, "k": 1.0, "theta": 0.0})
    np.testing.assert_array_equal(run.times, grid)
    np.testing.assert_allclose(run.states["x"], np.cos(grid), atol=1e-7)
    np.testing.assert_allclose(run["x_ddot"], -np.cos(grid), atol=1e-7)
    assert run.final["x"] == pytest.approx(np.cos(2.0), abs=1e-7)
    assert run.method == "cvodes (bdf, direct)" and run.stats["nsteps"] > 0
    with pytest.raises(KeyError):
        run["nope"]


# -- the non-minimal pendulum ------------------------------------------------------------------
@pytest.fixture(scope="module")
def pendulum_runs():
    system = compile_system(pendulum())
    params = {"m": 1.0, "g": G_ACC, "L": 1.0}
    phi0 = 1.0
    y0 = {"q1": np.cos(phi0), "q2": np.sin(phi0), "q1_dot": 0.0, "q2_dot": 0.0}
    runs = {stab: simulate(system, (0.0, 20.0), y0, params, rtol=1e-10, atol=1e-10,
                           n_points=201, stabilization=stab)
            for stab in (None, "baumgarte", "projection")}
    ref = solve_ivp(lambda t, s: [s[1], -G_ACC * np.sin(s[0])], (0, 20), [phi0, 0.0],
                    t_eval=runs[None].times, rtol=1e-12, atol=1e-12, method="DOP853")
    return runs, ref


def _energy(run):
    return 0.5 * (run["q1_dot"] ** 2 + run["q2_dot"] ** 2) - G_ACC * run["q1"]


@pytest.mark.parametrize("stab", [None, "baumgarte", "projection"])
def test_pendulum_trajectory_energy_and_drift(pendulum_runs, stab):
    runs, ref = pendulum_runs
    run = runs[stab]
    # the minimal-coordinate pendulum: q = L (cos φ, sin φ)
    assert np.max(np.abs(run["q1"] - np.cos(ref.y[0]))) < 1e-5
    assert np.max(np.abs(run["q2"] - np.sin(ref.y[0]))) < 1e-5
    E = _energy(run)
    assert np.max(np.abs(E - E[0])) < 1e-5  # energy conserved to 1e-5 (|E| ≈ 5.3)
    assert run.max_drift < 1e-6  # |G| stays below 1e-6 over 20 s (≈ 7 periods)


def test_stabilization_reduces_drift(pendulum_runs):
    runs, _ = pendulum_runs
    plain = runs[None].max_drift
    assert plain > 1e-9  # index reduction drifts (design notes: ~1e-7 at tolerance 1e-10)
    assert runs["baumgarte"].max_drift < plain / 10
    assert runs["projection"].max_drift < 1e-13
    assert runs["projection"].drift_rate.max() < 1e-12
    assert runs["baumgarte"].stabilization == "baumgarte"


def test_pendulum_every_method_keeps_energy():
    system = compile_system(pendulum())
    y0 = {"q1": 0.0, "q2": 1.0, "q1_dot": 0.0, "q2_dot": 0.0}
    params = {"m": 2.0, "g": G_ACC, "L": 1.0}
    for method, kw in (("idas", {}), ("erk", {}), ("adams", {}),
                       ("collocation", {"steps": 8}), ("rk", {"steps": 50})):
        run = simulate(system, (0, 5), y0, params, method=method, rtol=1e-10, atol=1e-10,
                       n_points=51, **kw)
        E = 0.5 * (run["q1_dot"] ** 2 + run["q2_dot"] ** 2) - G_ACC * run["q1"]
        assert np.max(np.abs(E - E[0])) < 1e-4, method
        assert run.max_drift < 1e-5, method
    # IDAS returns the multiplier trajectory as algebraic states; it matches the
    # linear-solve evaluation along the same trajectory
    run = simulate(system, (0, 5), y0, params, method="idas", rtol=1e-10, atol=1e-10)
    assert run.algebraic_names == ("q1_ddot", "q2_ddot", "lambda_rod")
    np.testing.assert_allclose(run.algebraic[:, 2], run.multipliers()["lambda_rod"],
                               rtol=1e-6, atol=1e-6)


def test_knife_edge_conserves_energy_and_the_constraint():
    x, y, phi = S.coordinates("x y phi")
    m, Iz = S.parameters("m I_z")
    p = Problem(Action([x, y, phi], masses=[m, m, Iz]),
                [Constraint(sp.cos(phi) * S.dot(y) - sp.sin(phi) * S.dot(x), name="blade")],
                parameters=[m, Iz], nonholonomic="dalembert")
    y0 = {"x": 0.0, "y": 0.0, "phi": 0.3, "x_dot": np.cos(0.3), "y_dot": np.sin(0.3),
          "phi_dot": 0.7}
    run = simulate(p, (0, 10), y0, {"m": 1.0, "I_z": 0.5}, rtol=1e-10, atol=1e-12)
    E = 0.5 * (run["x_dot"] ** 2 + run["y_dot"] ** 2) + 0.25 * run["phi_dot"] ** 2
    assert np.max(np.abs(E - E[0])) < 1e-8
    assert run.max_drift < 1e-8
    # closed form: φ̈ = 0 and the skate follows a circle of radius v/φ̇
    np.testing.assert_allclose(run["phi"], 0.3 + 0.7 * run.times, atol=1e-7)


# -- networks with finite masses ---------------------------------------------------------------
@pytest.fixture(scope="module")
def xor_setup():
    t = S.t
    net = ca_.xor()
    pr = net.problem(inputs={1: sp.sin(t), 2: sp.cos(2 * t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    given = {str(w): rng.normal() * 0.5 for w in net.weights} | {"m_x": 1.0, "m_W": 2.0}
    ic = ca_.complete_initial_conditions(el, given)
    return pr, ic


@pytest.mark.parametrize("route", ["network", "generic"])
def test_network_keeps_constraints_from_consistent_initial_conditions(xor_setup, route):
    pr, ic = xor_setup
    system = compile_system(pr, route=route)
    plain = simulate(system, (0, 10), ic, rtol=1e-10, atol=1e-12)
    assert plain.max_drift < 1e-5  # index-reduced drift over 10 time units
    proj = simulate(system, (0, 10), ic, rtol=1e-10, atol=1e-12, stabilization="projection")
    assert proj.max_drift < 1e-12
    baum = simulate(system, (0, 10), ic, rtol=1e-10, atol=1e-12, stabilization="baumgarte",
                    baumgarte=(5.0, 5.0))
    assert baum.max_drift < plain.max_drift / 10
    # the stabilized and plain trajectories agree to the size of the drift
    assert np.max(np.abs(proj.y - plain.y)) < 1e-4


def test_both_routes_give_the_same_trajectory(xor_setup):
    pr, ic = xor_setup
    a = simulate(compile_system(pr, route="network"), (0, 5), ic, rtol=1e-11, atol=1e-13)
    b = simulate(compile_system(pr, route="generic"), (0, 5), ic, rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(a.y - b.y)) < 1e-7
    ma, mb = a.multipliers(), b.multipliers()
    for k in ma:
        np.testing.assert_allclose(ma[k], mb[k], atol=1e-6)


def test_network_idas_returns_the_multipliers(xor_setup):
    pr, ic = xor_setup
    system = compile_system(pr)
    run = simulate(system, (0, 3), ic, method="idas", rtol=1e-10, atol=1e-12)
    assert run.algebraic_names == tuple(f"lambda_G{i}" for i in range(1, 6))
    np.testing.assert_allclose(run.algebraic, np.column_stack(list(run.multipliers().values())),
                               atol=1e-6)


def test_long_collocation_grid_runs_interval_by_interval():
    net = ca_.chain(3)
    pr = net.problem(inputs={1: sp.sin(S.t)}, targets={3: 0.2})
    el = ca_.euler_lagrange(pr)
    ic = ca_.complete_initial_conditions(el, {"w2_1": 0.5, "w3_2": -0.4, "m_x": 1.0,
                                              "m_W": 1.0})
    system = compile_system(pr)
    run = simulate(system, (0, 10), ic, method="collocation", n_points=1000)
    assert run.stats["segments"] == 999
    ref = simulate(system, (0, 10), ic, n_points=1000, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(run.y - ref.y)) < 1e-5


# -- the vakonomic rule: anti-stable multiplier dynamics -----------------------------------------
@pytest.fixture(scope="module")
def vakonomic_chain():
    c = sp.Symbol("c", positive=True)
    pr = ca_.chain(3, speed=c).problem(targets={3: 0.5})
    el = ca_.euler_lagrange(pr)
    given = {"w2_1": 0.5, "w3_2": -0.3, "e1": 1.0, "e1_dot": 0.0, "m_x": 1.0, "m_W": 1.0,
             "c": 10.0}
    ic = ca_.complete_initial_conditions(el, given) | {"mu_G2": 0.0, "mu_G3": 0.0}
    return compile_system(el), ic


def test_vakonomic_instability_is_detected(vakonomic_chain):
    system, ic = vakonomic_chain
    params = {"m_x": 1.0, "m_W": 1.0, "c": 10.0, "e1": 1.0}
    eig = system.eigenvalues(0.0, ic, params)
    assert eig.real.max() > 10.0  # the rate is of the order of c (design notes: +c)
    with pytest.raises(UnstableSystemError) as info:
        simulate(system, (0, 10), ic, params)
    err = info.value
    assert err.eigenvalue.real == pytest.approx(eig.real.max(), rel=1e-9)
    assert err.growth == pytest.approx(10 * eig.real.max(), rel=1e-9)
    for name in STABLE_VARIANTS:
        assert f"'{name}'" in str(err)
    assert isinstance(err, SimulationError) and err.time == 0.0


def test_vakonomic_forward_run_blows_up_with_a_typed_error(vakonomic_chain):
    system, ic = vakonomic_chain
    params = {"m_x": 1.0, "m_W": 1.0, "c": 10.0, "e1": 1.0}
    with pytest.warns(RuntimeWarning, match="unstable forward in time"):
        short = simulate(system, (0, 2.0), ic, params, stability="warn", max_norm=1e300)
    assert np.all(np.isfinite(short.y))
    with pytest.raises(SimulationError) as info:
        simulate(system, (0, 10), ic, params, stability="ignore")
    assert "blow-up" in str(info.value) or "failed" in str(info.value)
    assert 0 < info.value.time < 10 and info.value.state_norm > 1e6


# -- failures ----------------------------------------------------------------------------------
def quartic():
    x, = S.coordinates("x")
    m, = S.parameters("m")
    return Problem(Action([x], masses=m, lagrangian=x**4), parameters=[m], name="quartic")


# ẍ = 4x³ from x = 1 at rest: ½ẋ² = x⁴ - 1, blow-up at T = ∫_1^∞ dx / √(2(x⁴-1))
BLOWUP_TIME = quad(lambda x: 1 / np.sqrt(2 * (x**4 - 1)), 1, np.inf)[0]


@pytest.mark.parametrize("method", ["cvodes", "idas", "erk"])
def test_blow_up_reports_time_and_norm(method):
    with pytest.raises(SimulationError) as info:
        simulate(quartic(), (0, 3), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0}, method=method)
    err = info.value
    assert err.time == pytest.approx(BLOWUP_TIME, abs=1e-3)
    assert err.state_norm > 1e6
    assert "failed" in str(err) and "Fix:" in str(err)
    assert "Error in Function" not in str(err)  # no CasADi traceback text


def test_fixed_step_blow_up_is_caught_as_nan_or_norm():
    with pytest.raises(SimulationError) as info:
        simulate(quartic(), (0, 3), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0}, method="rk",
                 steps=2)
    assert BLOWUP_TIME - 0.1 < info.value.time < BLOWUP_TIME + 0.1


def test_bad_input_is_typed():
    system = compile_system(pendulum())
    y0 = {"q1": 1.0, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0.0}
    params = {"m": 1.0, "g": G_ACC, "L": 1.0}
    with pytest.raises(CompileError, match="parameter.*g"):
        simulate(system, (0, 1), y0, {"m": 1.0, "L": 1.0})
    with pytest.raises(CompileError, match="length 2"):
        simulate(system, (0, 1), [1.0, 0.0], params)
    with pytest.raises(CompileError, match="unknown method"):
        simulate(system, (0, 1), y0, params, method="euler")
    with pytest.raises(CompileError, match="increasing"):
        simulate(system, np.array([0.0, 1.0, 0.5]), y0, params)
    with pytest.raises(CompileError, match="increasing"):
        simulate(system, (1.0, 1.0), y0, params)
    with pytest.raises(CompileError, match="stabilization"):
        simulate(system, (0, 1), y0, params, stabilization="magic")
    with pytest.raises(CompileError, match="no constraints"):
        simulate(compile_system(oscillator()), (0, 1), [1.0, 0.0],
                 {"m": 1.0, "k": 1.0, "theta": 0.0}, stabilization="baumgarte")
    with pytest.raises(InconsistentInitialConditionsError, match="rod") as info:
        simulate(system, (0, 1), {"q1": 1.1, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0.0}, params)
    assert "rod" in info.value.violated
    with pytest.raises(InconsistentInitialConditionsError, match="drod/dt"):
        simulate(system, (0, 1), {"q1": 1.0, "q2": 0.0, "q1_dot": 1.0, "q2_dot": 0.0}, params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = simulate(system, (0, 1), {"q1": 1.0, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0.0},
                       params)
    assert run.max_drift < 1e-12


# -- Kane's rolling disc (the shipped problem file) ------------------------------------------
def test_rolling_disc_conserves_energy_and_the_rolling_constraints():
    """Lagrange-d'Alembert rolling constraints do no work: ``E = Σ q̇ L_q̇ - L`` is
    conserved (computed here from the file's Lagrangian with SymPy, not by compile)."""
    from cognitive_action.problem_files.loader import load_problem, shipped_problems

    spec = load_problem(shipped_problems()["rolling_disc"])
    pr = spec.problem
    L = pr.action.lagrangian
    vel = [S.dot(q) for q in pr.coordinates]
    E = sp.expand(sum(v * sp.diff(L, v) for v in vel) - L)
    syms = sorted(E.free_symbols, key=str)
    energy = sp.lambdify(syms, E, "numpy")
    system = compile_system(pr)
    y0 = dict(spec.initial["values"])
    y0["x_dot"] = spec.values["r"] * np.cos(y0["q1"]) * y0["q3_dot"]  # on N = 0
    y0["y_dot"] = spec.values["r"] * np.sin(y0["q1"]) * y0["q3_dot"]
    runs = {stab: simulate(system, (0, 5), y0, spec.values, rtol=1e-10, atol=1e-12,
                           n_points=201, stabilization=stab) for stab in (None, "projection")}
    for stab, run in runs.items():
        vals = [run[str(s)] if str(s) in system.states else spec.values[str(s)] for s in syms]
        e = energy(*vals)
        assert np.max(np.abs(e - e[0])) < 1e-6, stab  # |E| ≈ 3
        assert run.max_drift < 1e-7, stab
    assert runs["projection"].max_drift < 1e-13


@pytest.mark.parametrize("method", ["cvodes", "dopri"])
def test_drift_report_is_the_constraint_evaluated_on_the_trajectory(pendulum_runs, method):
    """``constraint_values``/``constraint_rates`` (evaluated through buffers, one call per
    output time) equal ``G = q1² + q2² − L²`` and ``Ġ = 2 (q1 q̇1 + q2 q̇2)`` written by
    hand on the returned states."""
    runs, _ = pendulum_runs
    run = simulate(runs[None].system, (0.0, 5.0), dict(zip(runs[None].system.states,
                   runs[None].y[0])), {"m": 1.0, "g": G_ACC, "L": 1.0}, method=method,
                   rtol=1e-6, atol=1e-8, n_points=333)
    q1, q2, v1, v2 = (run[k] for k in ("q1", "q2", "q1_dot", "q2_dot"))
    np.testing.assert_allclose(run.constraint_values[:, 0], q1**2 + q2**2 - 1.0,
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(run.constraint_rates[:, 0], 2 * (q1 * v1 + q2 * v2),
                               rtol=0, atol=1e-13)
    assert run.max_drift > 1e-12  # at rtol 1e-6 the drift is visible, not zeroed


def test_along_trajectory_densifies_sparse_outputs():
    import casadi as ca

    from cognitive_action.compile.simulate import along_trajectory

    t, y, p = ca.SX.sym("t"), ca.SX.sym("y", 3), ca.SX.sym("p", 0)
    out = ca.SX(3, 1)
    out[2] = y[0] * t  # entries 0 and 1 structurally zero
    f = ca.Function("f", [t, y, p], [out, y[1]])
    Y = np.arange(12.0).reshape(4, 3)
    a, b = along_trajectory(f, np.array([0.0, 1.0, 2.0, 3.0]), Y, np.zeros(0))
    np.testing.assert_array_equal(a, np.column_stack([np.zeros(4), np.zeros(4),
                                                      Y[:, 0] * np.arange(4.0)]))
    np.testing.assert_array_equal(b[:, 0], Y[:, 1])
