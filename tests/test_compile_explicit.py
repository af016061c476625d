"""Our Dormand-Prince 5(4) (``simulate(method="dopri")``) and the progress bar.

References: the closed form of ``m ẍ + θ m ẋ + k x = 0`` (the equations derived by the
engine from the ``exp(θt)``-weighted action); the minimal-coordinate pendulum
``φ̈ = -(g/L) sin φ`` solved by SciPy's DOP853 at rtol 1e-12; SciPy's ``RK45`` (the same
Dormand-Prince pair and step control) on a hand-written NumPy right-hand side, whose
errors and evaluation counts ours must match; the blow-up time of ``ẍ = 4x³`` from its
energy integral. Tolerances are stated beside each assertion.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import sympy as sp
from references import G_ACC, oscillator, oscillator_solution, pendulum
from scipy.integrate import quad, solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.errors import SimulationError


@pytest.fixture(scope="module")
def osc_system():
    return compile_system(oscillator())


@pytest.mark.parametrize("theta", [0.0, 0.4, 5.0])
def test_dopri_weighted_oscillator_closed_form(osc_system, theta):
    params = {"m": 1.5, "k": 6.0, "theta": theta}
    run = simulate(osc_system, (0.0, 10.0), {"x": 1.0, "x_dot": -0.5}, params,
                   method="dopri", rtol=1e-10, atol=1e-12, n_points=1001)
    exact = oscillator_solution(run.times, 1.5, 6.0, theta, 1.0, -0.5)
    # 1001 output points, most of them interpolated inside steps (dense output)
    assert run.stats["nsteps"] < 1000
    assert np.max(np.abs(run["x"] - exact)) < 1e-8
    assert run.method.startswith("dopri") and run.stats["output_points"] == 1001


def test_dopri_error_follows_the_tolerance_like_scipy_rk45(osc_system):
    """The same pair and control as SciPy's RK45: the error against the closed form
    decreases proportionally to the tolerance, and matches RK45's on a hand-written RHS."""
    m, k, theta = 1.0, 4.0, 0.3
    params = {"m": m, "k": k, "theta": theta}
    grid = np.linspace(0.0, 10.0, 201)
    exact = oscillator_solution(grid, m, k, theta, 1.0, 0.0)

    def f(t, s):  # m ẍ + θ m ẋ + k x = 0, written by hand
        return [s[1], -theta * s[1] - k / m * s[0]]

    tols = np.array([1e-4, 1e-6, 1e-8, 1e-10])
    ours, scipy_err = [], []
    for tol in tols:
        run = simulate(osc_system, grid, [1.0, 0.0], params, method="dopri", rtol=tol,
                       atol=tol * 1e-2)
        sol = solve_ivp(f, (0, 10), [1.0, 0.0], t_eval=grid, method="RK45", rtol=tol,
                        atol=tol * 1e-2)
        ours.append(np.max(np.abs(run["x"] - exact)))
        scipy_err.append(np.max(np.abs(sol.y[0] - exact)))
        # same steps: evaluation counts within one rejected step (6 evaluations)
        assert abs(run.stats["nfevals"] - sol.nfev) <= 6
    ours, scipy_err = np.array(ours), np.array(scipy_err)
    np.testing.assert_allclose(ours, scipy_err, rtol=0.5)
    slope = np.polyfit(np.log10(tols), np.log10(ours), 1)[0]
    assert 0.8 < slope < 1.2  # error ∝ tolerance (tolerance proportionality)
    assert np.all(ours < 100 * tols)


@pytest.mark.parametrize("stab", [None, "projection"])
def test_dopri_pendulum_against_minimal_coordinates(stab):
    system = compile_system(pendulum())
    phi0 = 1.0
    y0 = {"q1": np.cos(phi0), "q2": np.sin(phi0), "q1_dot": 0.0, "q2_dot": 0.0}
    run = simulate(system, (0.0, 10.0), y0, {"m": 1.0, "g": G_ACC, "L": 1.0},
                   method="dopri", rtol=1e-10, atol=1e-12, n_points=201,
                   stabilization=stab)
    ref = solve_ivp(lambda t, s: [s[1], -G_ACC * np.sin(s[0])], (0, 10), [phi0, 0.0],
                    t_eval=run.times, rtol=1e-12, atol=1e-12, method="DOP853")
    assert np.max(np.abs(run["q1"] - np.cos(ref.y[0]))) < 1e-6
    assert np.max(np.abs(run["q2"] - np.sin(ref.y[0]))) < 1e-6
    if stab == "projection":
        assert run.max_drift < 1e-12  # projected on G = 0 at every output time
    else:
        assert run.max_drift < 1e-6


def test_dopri_network_matches_cvodes():
    net = ca_.xor()
    pr = net.problem(inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    given = {str(w): rng.normal() * 0.5 for w in net.weights} | {"m_x": 1.0, "m_W": 2.0}
    ic = ca_.complete_initial_conditions(el, given)
    system = compile_system(pr)
    a = simulate(system, (0, 5), ic, method="dopri", rtol=1e-11, atol=1e-13)
    b = simulate(system, (0, 5), ic, method="cvodes", rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(a.y - b.y)) < 1e-7
    assert a.max_drift < 1e-6


def quartic():
    x, = S.coordinates("x")
    m, = S.parameters("m")
    return Problem(Action([x], masses=m, lagrangian=x**4), parameters=[m], name="quartic")


# ẍ = 4x³ from x = 1 at rest: ½ẋ² = x⁴ - 1, blow-up at T = ∫_1^∞ dx / √(2(x⁴-1))
BLOWUP_TIME = quad(lambda x: 1 / np.sqrt(2 * (x**4 - 1)), 1, np.inf)[0]


def test_dopri_blow_up_reports_time_and_norm():
    assert abs(BLOWUP_TIME - 0.92704) < 1e-5
    with pytest.raises(SimulationError) as info:
        simulate(quartic(), (0, 3), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0}, method="dopri")
    err = info.value
    assert err.time == pytest.approx(BLOWUP_TIME, abs=1e-3)
    assert err.state_norm > 1e6
    assert "dopri" in str(err) and "Fix:" in str(err)


def test_dopri_step_limit_is_a_typed_error(osc_system):
    with pytest.raises(SimulationError, match="max_steps") as info:
        simulate(osc_system, (0.0, 10.0), [1.0, 0.0], {"m": 1.0, "k": 4.0, "theta": 0.0},
                 method="dopri", rtol=1e-12, atol=1e-14, max_steps=20)
    assert 0.0 < info.value.time < 10.0


# -- progress ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "stab", "tol"), [
    ("dopri", None, 0.0),         # progress only reports: bitwise the same run
    ("cvodes", None, 1e-7),       # chunks restart the step-size control: agreement to
    ("erk", None, 1e-7),          # the size of the global error at rtol 1e-11
    ("cvodes", "projection", 1e-12),  # segmented: chunks of the same per-interval calls
])
def test_progress_chunks_do_not_change_the_result(method, stab, tol, capsys):
    system = compile_system(pendulum())
    phi0 = 1.0
    y0 = {"q1": np.cos(phi0), "q2": np.sin(phi0), "q1_dot": 0.0, "q2_dot": 0.0}
    kw = dict(method=method, rtol=1e-11, atol=1e-12, n_points=401, stabilization=stab)
    params = {"m": 1.0, "g": G_ACC, "L": 1.0}
    single = simulate(system, (0.0, 10.0), y0, params, progress=False, **kw)
    chunked = simulate(system, (0.0, 10.0), y0, params, progress=True, **kw)
    assert np.max(np.abs(chunked.y - single.y)) <= tol
    np.testing.assert_array_equal(chunked.times, single.times)
    if method != "dopri":
        assert chunked.stats["chunks"] == 20  # 400 intervals in 20 equal chunks
    assert "simulate" in capsys.readouterr().err  # the tqdm bar was drawn on stderr
    ref = solve_ivp(lambda t, s: [s[1], -G_ACC * np.sin(s[0])], (0, 10), [phi0, 0.0],
                    t_eval=single.times, rtol=1e-12, atol=1e-12, method="DOP853")
    assert np.max(np.abs(chunked["q1"] - np.cos(ref.y[0]))) < 1e-6


def test_progress_auto_is_off_without_a_terminal(osc_system, monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    simulate(osc_system, (0.0, 1.0), [1.0, 0.0], {"m": 1.0, "k": 1.0, "theta": 0.0},
             method="dopri", n_points=2000)
    import sys

    assert sys.stderr.getvalue() == ""
