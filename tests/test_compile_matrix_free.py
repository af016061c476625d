"""CVODES BDF with matrix-free GMRES on a right-hand side with a declared Jacobian pattern.

References: the closed form of the weighted oscillator ``m ẍ + θ m ẋ + k x = 0``; central
finite differences of the compiled right-hand side for the Jacobian-vector products;
our Dormand-Prince and CVODES with a direct sparse Newton solve (the true Jacobian) on
the XOR learning system at tight tolerances.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import sympy as sp
from test_compile_explicit import oscillator, oscillator_solution

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.matrix_free import MatrixFreeRHS
from cognitive_action.declare import symbols as S


@pytest.fixture(scope="module")
def xor_run():
    net = ca_.xor()
    pr = net.problem(inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    given = {str(w): rng.normal() * 0.5 for w in net.weights} | {"m_x": 1.0, "m_W": 2.0}
    ic = ca_.complete_initial_conditions(el, given)
    return compile_system(pr), ic


def test_forward_derivative_is_the_jacobian_vector_product(xor_run):
    system, ic = xor_run
    y = system.state_vector(ic)
    p = system.parameter_vector(None, fallback=ic)
    f = MatrixFreeRHS(system.rhs)
    np.testing.assert_array_equal(np.asarray(f(0.3, y, p)).ravel(), system.evaluate(0.3, y, p))
    v = np.random.default_rng(0).normal(size=y.size)
    fwd = f.forward(1)
    out = np.asarray(f(0.3, y, p)).ravel()
    jv = np.asarray(fwd(0.3, y, p, out, 0.0, v, np.zeros(p.size))).ravel()
    eps = 1e-6
    fd = (system.evaluate(0.3, y + eps * v, p) - system.evaluate(0.3, y - eps * v, p)) / (2 * eps)
    np.testing.assert_allclose(jv, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("theta", [0.0, 5.0])
def test_gmres_weighted_oscillator_closed_form(theta):
    params = {"m": 1.5, "k": 6.0, "theta": theta}
    run = simulate(oscillator(), (0.0, 10.0), {"x": 1.0, "x_dot": -0.5}, params,
                   newton="gmres", rtol=1e-10, atol=1e-12, n_points=41)
    exact = oscillator_solution(run.times, 1.5, 6.0, theta, 1.0, -0.5)
    assert run.method == "cvodes (bdf, gmres)"
    assert np.max(np.abs(run["x"] - exact)) < 1e-6


def test_gmres_network_matches_the_direct_solve_and_dopri(xor_run):
    system, ic = xor_run
    gm = simulate(system, (0, 5), ic, newton="gmres", rtol=1e-10, atol=1e-12)
    direct = simulate(system, (0, 5), ic, newton="direct", rtol=1e-10, atol=1e-12)
    dp = simulate(system, (0, 5), ic, method="dopri", rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(gm.y - dp.y)) < 1e-6
    assert np.max(np.abs(direct.y - dp.y)) < 1e-6
    assert gm.max_drift < 1e-5
    chunked = simulate(system, (0, 5), ic, newton="gmres", rtol=1e-10, atol=1e-12,
                       progress=True)
    assert np.max(np.abs(chunked.y - gm.y)) < 1e-6


@pytest.mark.parametrize(("method", "newton"), [("erk", "auto"), ("adams", "auto")])
def test_explicit_and_functional_methods_through_the_wrapper(method, newton, monkeypatch):
    """Above ``_MATRIX_FREE_LIMIT`` states erk and Adams (functional iterations) run on
    the wrapper; lowered to 0 here so that the oscillator takes that path."""
    integration = importlib.import_module("cognitive_action.compile.integration")
    monkeypatch.setattr(integration, "_MATRIX_FREE_LIMIT", 0)
    system = compile_system(oscillator())
    params = {"m": 1.5, "k": 6.0, "theta": 0.4}
    run = simulate(system, (0.0, 10.0), {"x": 1.0, "x_dot": -0.5}, params, method=method,
                   newton=newton, rtol=1e-10, atol=1e-12, n_points=41)
    assert "matrix_free_rhs" in system._cache  # the wrapper was used
    exact = oscillator_solution(run.times, 1.5, 6.0, 0.4, 1.0, -0.5)
    assert np.max(np.abs(run["x"] - exact)) < 1e-7
