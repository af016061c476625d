"""Convergence orders toward the limits of Section 3, measured on simulations."""

from __future__ import annotations

import json

import pytest
import sympy as sp
from click.testing import CliRunner

import cognitive_action as ca
from cognitive_action.cli import main
from cognitive_action.compile import compile_system, simulate
from cognitive_action.declare import symbols as S
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.simulated_limits import (
    check_convergence_mass_x,
    check_convergence_theta,
    check_drift,
)

theta, = S.parameters("theta")


def _xor():
    return ca.xor().problem(weight=sp.exp(theta * S.t), parameters=[theta],
                            inputs={1: 1.0, 2: -0.5}, targets={5: 0.8})


def test_theta_to_infinity_gives_gradient_flow_at_order_one():
    """Expected order 1 in 1/theta: with theta m_W = gamma the weights' inertia
    (gamma/theta) W'' and the neurons' inertia m_x = r gamma/theta are first-order
    perturbations of gamma W' = -grad V (eq. 14); the reference integrates that flow with
    CasADi AD gradients through the forward pass and SciPy DOP853."""
    check = check_convergence_theta(_xor(), thetas=(10, 20, 40, 80))
    assert check.status == "pass", check.message
    assert check.value == pytest.approx(1.0, abs=0.1)
    errors = check.details["errors"]
    assert all(b < a for a, b in zip(errors, errors[1:])) and errors[-1] < 5e-3


def test_neuron_mass_to_zero_gives_eq_13_at_order_one():
    """Expected order 1 in m_x: m_x enters eq. (10) linearly as an O(m_x) correction of
    the multipliers, hence of the force on the weights (eq. 12-13 at m_x = 0)."""
    check = check_convergence_mass_x(ca.chain(3).problem(
        weight=sp.exp(theta * S.t), parameters=[theta], inputs={1: 0.9}, targets={3: 0.3}),
        w0={"w2_1": 0.7, "w3_2": -0.8})
    assert check.status == "pass", check.message
    assert check.value == pytest.approx(1.0, abs=0.1)


def test_drift_check_sees_projection():
    p = _xor()
    el = ca.euler_lagrange(p)
    vals = {"theta": 1.0, "m_W": 1.0, "m_x": 1e-2}
    y0 = ca.complete_initial_conditions(el, vals | {
        "w3_1": .3, "w3_2": -.2, "w4_1": .5, "w4_2": .1, "w5_3": -.4, "w5_4": .6},
        free=list(p.network.neurons))
    system = compile_system(p)
    loose = simulate(system, (0, 5), y0, vals, rtol=1e-4, atol=1e-6)
    tight = simulate(system, (0, 5), y0, vals, rtol=1e-4, atol=1e-6,
                     stabilization="projection")
    assert check_drift(tight, tol=1e-10).status == "pass"
    assert check_drift(loose, tol=1e-10).status == "fail"
    assert check_drift(loose, tol=1e-10).value == pytest.approx(loose.max_drift)


def test_bad_requests():
    with pytest.raises(DeclarationError, match="exp"):
        check_convergence_theta(ca.xor().problem())
    with pytest.raises(DeclarationError, match="three"):
        check_convergence_theta(_xor(), thetas=(10, 20))
    with pytest.raises(DeclarationError, match="w5_4"):
        check_convergence_mass_x(_xor(), w0={"w3_1": 0.1})


@pytest.mark.slow
def test_cli_verify_simulate_adds_the_simulated_checks():
    res = CliRunner().invoke(main, ["verify", "xor", "--simulate", "--json"])
    assert res.exit_code == 0, res.output
    names = {c["name"] for c in json.loads(res.output)["checks"]}
    assert {"convergence.theta", "convergence.mass_x", "drift"} <= names


@pytest.mark.slow
def test_at_a_fixed_mass_ratio_the_theta_error_levels_off():
    """Why convergence.theta shrinks m_x/m_W with 1/theta: at a fixed ratio r the
    multipliers keep an O(r) offset from backprop (eq. 10), so as theta -> oo the weights
    follow a gradient flow perturbed at O(r) and the error stops falling; with r ~ 1/theta
    it keeps falling at order 1. Reference: the AD gradient flow by DOP853."""
    import numpy as np
    from scipy.integrate import solve_ivp

    from cognitive_action.verify.convergence import gradient_function, simulate_learning

    p = _xor()
    w0 = {"w3_1": .3, "w3_2": -.2, "w4_1": .5, "w4_2": .1, "w5_3": -.4, "w5_4": .6}
    names = [str(w) for w in p.network.weights]
    w_init = np.array([w0[n] for n in names])
    grad = gradient_function(p)
    grid = np.linspace(0.0, 3.0, 31)
    ref = solve_ivp(lambda t, w: -grad(t, w), (0.0, 3.0), w_init, t_eval=grid,
                    method="DOP853", rtol=1e-11, atol=1e-13).y.T

    def error(theta_value: float, r: float) -> float:
        vals = {"theta": theta_value, "m_W": 1 / theta_value, "m_x": r / theta_value}
        run = simulate_learning(p, vals, w0, dict(zip(names, -grad(0.0, w_init))), grid)
        W = np.column_stack([run[n] for n in names])
        return float(np.linalg.norm(W - ref, axis=1).max())

    fixed = [error(th, 1e-2) for th in (160.0, 640.0)]
    scaled = [error(th, 1e-2 * 10 / th) for th in (160.0, 640.0)]
    assert fixed[0] / fixed[1] < 1.5            # order 1 would divide it by 4
    assert scaled[0] / scaled[1] == pytest.approx(4.0, rel=0.15)
