"""The adjoint sweep (compile.adjoint_sweep): eq. (20) backward in time from a final
condition, the primal states (18)-(19) forward from their initial condition.

References, all independent of the derivation: the closed form of the linear multiplier
equation at constant input (scipy.linalg.expm), the backprop delta by CasADi AD of the
loss through the forward pass, hand-written NumPy equations of a three-neuron chain
integrated with scipy.integrate.solve_ivp (backward in time) and solved as a two-point
problem with scipy.integrate.solve_bvp.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_bvp, solve_ivp
from scipy.linalg import expm

import cognitive_action as cog
from cognitive_action.compile import compile_system, simulate, stable_variant
from cognitive_action.compile.adjoint import adjoint_sweep
from cognitive_action.declare import symbols as S
from cognitive_action.derive import complete_initial_conditions
from cognitive_action.errors import CompileError, SimulationError
from cognitive_action.problem_files.loader import load_problem
from cognitive_action.verify.reference import casadi_gradients
from cognitive_action.workflow import derive_spec

c, = S.parameters("c")
W21, W32, TARGET = 0.8, -1.1, 0.5


def _dsig(a):
    return 1.0 - np.tanh(a) ** 2


def _chain(inputs):
    net = cog.chain(3, speed=c)
    problem = net.problem(inputs={1: inputs}, targets={3: TARGET}, parameters=[c])
    el = cog.euler_lagrange(problem)
    return net, problem, el, compile_system(el)


@pytest.fixture(scope="module")
def constant_chain():
    """Chain 1 -> 2 -> 3 (tanh), constant input 0.7, target 0.5."""
    return _chain(0.7)


@pytest.fixture(scope="module")
def varying_chain():
    """The same chain with the input e(t) = 0.7 + 0.3 sin(2t)."""
    return _chain(sp.Rational(7, 10) + sp.Rational(3, 10) * sp.sin(2 * S.t))


def _e(t):
    return 0.7 + 0.3 * np.sin(2 * t), 0.6 * np.cos(2 * t)


def _state(speed, x2, x3, e0=0.7, e0_dot=0.0, v21=0.0, v32=0.0, w21=W21, w32=W32):
    """A consistent state by hand: x1 = e(0), ẋ_j = c (tanh(w x_{j-1}) - x_j) (eq. 19)."""
    x2d = speed * (np.tanh(w21 * e0) - x2)
    x3d = speed * (np.tanh(w32 * x2) - x3)
    return {"x1": e0, "x2": x2, "x3": x3, "w2_1": w21, "w3_2": w32, "x1_dot": e0_dot,
            "x2_dot": x2d, "x3_dot": x3d, "w2_1_dot": v21, "w3_2_dot": v32,
            "mu_G2": 0.0, "mu_G3": 0.0}


def test_closed_form_at_constant_input(constant_chain):
    """x at its fixed point, frozen weights: eq. (20) is linear, μ̇ = c(A μ + b) with
    A = I - (σ'W)ᵀ, b = V_x, and from μ(T) = μ_T its solution is
    μ(t) = μ* + expm(cA(t - T))(μ_T - μ*), μ* = -A⁻¹ b."""
    *_, system = constant_chain
    speed, T = 10.0, 1.0
    x2 = np.tanh(W21 * 0.7)
    x3 = np.tanh(W32 * x2)
    values = {"c": speed, "m_x": 1e-3, "m_W": 1e12}
    mu_T = np.array([0.3, -0.2])
    run = adjoint_sweep(system, (0.0, T), _state(speed, x2, x3), values, n_points=11,
                        final={"mu_G2": mu_T[0], "mu_G3": mu_T[1]})
    A = np.array([[1.0, -W32 * _dsig(W32 * x2)], [0.0, 1.0]])
    b = np.array([0.0, x3 - TARGET])
    mu_star = -np.linalg.solve(A, b)
    want = np.array([mu_star + expm(speed * A * (t - T)) @ (mu_T - mu_star)
                     for t in run.times])
    got = np.c_[run["mu_G2"], run["mu_G3"]]
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(run["x3"], x3, atol=1e-9)  # x stays at its fixed point
    assert run.variant == "adjoint" and run.stats["iterations"] == 2


def test_plateau_is_the_backprop_delta_and_the_relaxation_agrees(constant_chain):
    """Away from the start transient of x and from the final boundary layer of μ
    (t and T - t >> 1/c), the swept μ is the backprop delta T μ = -V_x (CasADi AD of
    the loss through the forward pass), the equilibrium the relaxation variant reaches."""
    net, problem, el, system = constant_chain
    speed, T = 20.0, 3.0
    values = {"c": speed, "m_x": 1e-4, "m_W": 1e12}
    given = values | {"w2_1": W21, "w3_2": W32, "w2_1_dot": 0.0, "w3_2_dot": 0.0,
                      "mu_G2": 0.0, "mu_G3": 0.0}
    y0 = complete_initial_conditions(el, given, free=[S.symbol(n) for n in ("x1", "x2", "x3")])
    run = adjoint_sweep(system, (0.0, T), y0, values, n_points=31)
    relaxed = simulate(stable_variant(system), (0.0, T), y0, values, n_points=31,
                       rtol=1e-10, atol=1e-12)
    ref = casadi_gradients(problem, np.array([W21, W32]), {"e1": 0.7, "y3": TARGET})
    order = [str(x) for x in net.neurons]
    delta = ref.delta[[order.index("x2"), order.index("x3")]]
    # The sweep looks ahead (μ(t) sees x on [t, T]), the relaxation behind (from μ = 0 at
    # t = 0), both through the chain's (ct)^k e^{-ct} transients: at ct >= 24 both are
    # on the plateau (measured: the relaxation's error is 3.5e-5 at ct = 16, 4e-8 at 24).
    window = (run.times >= 1.2) & (run.times <= 1.8)
    for got in (np.c_[run["mu_G2"], run["mu_G3"]][window],
                np.c_[relaxed["mu_G2"], relaxed["mu_G3"]][window]):
        np.testing.assert_allclose(got, np.tile(delta, (window.sum(), 1)), rtol=1e-6,
                                   atol=1e-9)
    # in the final boundary layer the sweep leaves the plateau for μ(T) = 0
    np.testing.assert_allclose([run["mu_G2"][-1], run["mu_G3"][-1]], 0.0, atol=1e-12)
    assert abs(run["mu_G3"][-2] - delta[1]) > 0.1 * abs(delta[1])  # e^{-c·0.1} = e^{-2}


def _hand_forward(speed, T, x0):
    """x2, x3 of eq. (19) with frozen weights and e(t) = 0.7 + 0.3 sin 2t (NumPy)."""
    def f(t, x):
        e, _ = _e(t)
        return [speed * (np.tanh(W21 * e) - x[0]), speed * (np.tanh(W32 * x[0]) - x[1])]
    return solve_ivp(f, (0.0, T), x0, method="DOP853", rtol=1e-12, atol=1e-13,
                     dense_output=True).sol


def _hand_reverse(speed, T, m_x, xs, times):
    """Eq. (20) by hand for the chain, m_x ẍ included, along the forward pass ``xs``:
    μ̇₂ = c(μ₂ - μ₃ w₃₂ σ'(w₃₂ x₂) + m_x ẍ₂), μ̇₃ = c(μ₃ + x₃ - y + m_x ẍ₃),
    integrated backward from μ(T) = 0 by solve_ivp; rows at ``times``."""
    def mu_rate(t, mu):
        x2, x3 = xs(t)
        e, e_dot = _e(t)
        x2d = speed * (np.tanh(W21 * e) - x2)
        x3d = speed * (np.tanh(W32 * x2) - x3)
        x2dd = speed * (_dsig(W21 * e) * W21 * e_dot - x2d)
        x3dd = speed * (_dsig(W32 * x2) * W32 * x2d - x3d)
        return [speed * (mu[0] - mu[1] * W32 * _dsig(W32 * x2) + m_x * x2dd),
                speed * (mu[1] + x3 - TARGET + m_x * x3dd)]

    back = solve_ivp(mu_rate, (T, times[0]), [0.0, 0.0], method="DOP853", rtol=1e-12,
                     atol=1e-13, t_eval=times[::-1])
    return back.y[:, ::-1].T


def test_backward_sweep_matches_hand_written_reverse_integration(varying_chain):
    """Eq. (20) by hand for the chain, m_x ẍ included:
    μ̇₂ = c(μ₂ - μ₃ w₃₂ σ'(w₃₂ x₂) + m_x ẍ₂), μ̇₃ = c(μ₃ + x₃ - y + m_x ẍ₃),
    integrated backward from μ(T) = 0 by solve_ivp along the hand-written forward pass."""
    *_, system = varying_chain
    speed, T, m_x = 10.0, 2.0, 1e-3
    x2_0, x3_0 = 0.1, -0.2
    e0, e0_dot = _e(0.0)
    run = adjoint_sweep(system, (0.0, T), _state(speed, x2_0, x3_0, e0, e0_dot),
                        {"c": speed, "m_x": m_x, "m_W": 1e12}, n_points=21)
    xs = _hand_forward(speed, T, [x2_0, x3_0])
    want = _hand_reverse(speed, T, m_x, xs, run.times)
    np.testing.assert_allclose(np.c_[run["mu_G2"], run["mu_G3"]], want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.c_[run["x2"], run["x3"]], xs(run.times).T, atol=1e-7)
    assert np.abs(run["mu_G3"]).max() > 0.1  # not a trivially small solution


def test_interpolation_error_is_fourth_order(varying_chain):
    """The stated accuracy: inside an internal interval the other block is a cubic
    Hermite interpolant, so the error against the hand-written reverse integration
    falls like h⁴ with the number of substeps (RK4 with 10 steps per interval, whose
    own error is far below)."""
    *_, system = varying_chain
    speed, T, m_x = 10.0, 2.0, 1e-3
    e0, e0_dot = _e(0.0)
    y0 = _state(speed, 0.1, -0.2, e0, e0_dot)
    grid = np.linspace(0.0, T, 21)
    ref = _hand_reverse(speed, T, m_x, _hand_forward(speed, T, [0.1, -0.2]), grid)
    errors = []
    for substeps in (2, 4, 8):
        run = adjoint_sweep(system, grid, y0, {"c": speed, "m_x": m_x, "m_W": 1e12},
                            method="rk", substeps=substeps)
        errors.append(np.abs(np.c_[run["mu_G2"], run["mu_G3"]] - ref).max())
    order = -np.polyfit(np.log([2, 4, 8]), np.log(errors), 1)[0]
    assert 3.7 < order < 4.3, (order, errors)


def _hand_bvp_rhs(speed, m_x, m_w):
    """The coupled system by hand (ϖ = 1, constant input 0.7): eq. (19) for x, the
    weight rows m_W ẅ_jk = μ_j x_k σ'(w_jk x_k), eq. (20) for μ."""
    e = 0.7

    def rhs(t, z):
        x2, x3, w21, w32, v21, v32, mu2, mu3 = z
        s2, s3 = _dsig(w21 * e), _dsig(w32 * x2)
        x2d = speed * (np.tanh(w21 * e) - x2)
        x3d = speed * (np.tanh(w32 * x2) - x3)
        x2dd = speed * (s2 * v21 * e - x2d)
        x3dd = speed * (s3 * (v32 * x2 + w32 * x2d) - x3d)
        return np.array([x2d, x3d, v21, v32, mu2 * e * s2 / m_w, mu3 * x2 * s3 / m_w,
                         speed * (mu2 - mu3 * w32 * s3 + m_x * x2dd),
                         speed * (mu3 + x3 - TARGET + m_x * x3dd)])
    return rhs


def test_coupled_sweep_converges_to_the_two_point_solution(constant_chain):
    """Learning weights (m_W = 1): the primal states feel μ, the sweep iterates; its
    fixed point satisfies the boundary-value problem x, W, Ẇ given at 0 and μ(T) = 0,
    solved independently by solve_bvp on the hand-written equations."""
    *_, system = constant_chain
    speed, T, m_x, m_w = 5.0, 1.5, 1e-3, 1.0
    x2_0, x3_0 = 0.1, -0.2
    run = adjoint_sweep(system, (0.0, T), _state(speed, x2_0, x3_0),
                        {"c": speed, "m_x": m_x, "m_W": m_w}, n_points=16)
    assert 3 <= run.stats["iterations"] < 50
    assert run.stats["changes"][-1] <= 1e-9
    ref = _solve_hand_bvp(speed, T, m_x, m_w, np.array([x2_0, x3_0, W21, W32, 0.0, 0.0])
                          )(run.times).T
    names = ["x2", "x3", "w2_1", "w3_2", "w2_1_dot", "w3_2_dot", "mu_G2", "mu_G3"]
    got = np.c_[tuple(run[n] for n in names)]
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    assert np.abs(run["w3_2"] - W32).max() > 1e-2  # the weights did learn


def _solve_hand_bvp(speed, T, m_x, m_w, z0):
    mesh = np.linspace(0.0, T, 301)
    guess = np.tile(np.r_[z0, 0.0, 0.0][:, None], (1, mesh.size))
    sol = solve_bvp(_hand_bvp_rhs(speed, m_x, m_w), lambda za, zb: np.r_[za[:6] - z0, zb[6:]],
                    mesh, guess, tol=1e-8, max_nodes=100_000)
    assert sol.success, sol.message
    return sol.sol


_LIGHT = {"c": 5.0, "m_x": 1e-3, "m_W": 0.01}  # light weights: strong coupling


def test_strong_coupling_oscillation_is_reported(constant_chain):
    """Light weights (m_W = 0.01): the plain sweep falls into a 2-cycle (changes
    alternating about 2.3 and 1.2) and is reported as not converging, with the fix."""
    *_, system = constant_chain
    with pytest.raises(SimulationError, match="did not converge in 12 iterations") as err:
        adjoint_sweep(system, (0.0, 1.5), _state(5.0, 0.1, -0.2), _LIGHT, n_points=16,
                      method="rk", iterations=12)
    assert "damping" in err.value.fix and err.value.time == 1.5


@pytest.mark.slow
def test_damping_converges_under_strong_coupling(constant_chain):
    """The damped sweep (damping = 0.6, 44 sweeps) reaches the two-point solution of the
    light-weight case, solved independently by solve_bvp (about 5 s in all)."""
    *_, system = constant_chain
    run = adjoint_sweep(system, (0.0, 1.5), _state(5.0, 0.1, -0.2), _LIGHT, n_points=16,
                        method="rk", damping=0.6, tol=1e-8)
    ref = _solve_hand_bvp(5.0, 1.5, _LIGHT["m_x"], _LIGHT["m_W"],
                          np.array([0.1, -0.2, W21, W32, 0.0, 0.0]))
    names = ["x2", "x3", "w2_1", "w3_2", "w2_1_dot", "w3_2_dot", "mu_G2", "mu_G3"]
    np.testing.assert_allclose(np.c_[tuple(run[n] for n in names)], ref(run.times).T,
                               atol=1e-5, rtol=0)


def test_bad_input_is_named(constant_chain):
    *_, system = constant_chain
    values = {"c": 5.0, "m_x": 1e-3, "m_W": 1.0}
    y0 = _state(5.0, 0.1, -0.2)
    pendulum = compile_system(derive_spec(load_problem("pendulum")))
    with pytest.raises(CompileError, match="no multiplier states") as err:
        adjoint_sweep(pendulum, (0.0, 1.0), {}, {})
    assert err.value.fix
    with pytest.raises(CompileError, match="final has 3 values.*2 multiplier states"):
        adjoint_sweep(system, (0.0, 1.0), y0, values, final=[0.0, 0.0, 0.0])
    with pytest.raises(CompileError, match="final names mu_G9"):
        adjoint_sweep(system, (0.0, 1.0), y0, values, final={"mu_G9": 1.0})
    with pytest.raises(CompileError, match="times must be .* strictly increasing"):
        adjoint_sweep(system, [0.0, 0.5, 0.4], y0, values)
    with pytest.raises(CompileError, match="relaxation"):
        adjoint_sweep(stable_variant(system), (0.0, 1.0), y0, values)
    with pytest.raises(CompileError, match="unknown method"):
        adjoint_sweep(system, (0.0, 1.0), y0, values, method="euler")
    with pytest.raises(SimulationError, match="did not converge in 2 iterations: the last "
                       "change was") as err:
        adjoint_sweep(system, (0.0, 1.5), y0, values, n_points=16, iterations=2)
    assert "damping" in err.value.fix
