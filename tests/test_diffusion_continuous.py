"""Continuous-time backprop diffusion (neurons 18-19 with speed c) -> backprop as c -> oo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cognitive_action.diffusion.continuous import derive_diffusion, speed_convergence
from cognitive_action.errors import DeclarationError, SimulationError


@pytest.fixture(scope="module")
def small():
    return derive_diffusion([2, 3, 1], frequency=0.5, seed=0)


def _hand_written(model, c, grid, y0):
    """Independent right-hand side: x_h' = c(tanh(W_h u) - x_h), x_o' = c(tanh(W_o x_h) - x_o),
    and the stable relaxation of design.md, mu' = -c (T mu + V_x), T = I - (sigma' W)^T,
    V = (x_o - y)^2 / 2; inputs u_i = sin(w t + pi k / n_in)."""
    net = model.network
    order = [str(x) for x in net.neurons]
    n = len(order)
    W = np.zeros((n, n))
    for (j, k), w in net.w.items():
        W[order.index(f"x{j}"), order.index(f"x{k}")] = model.weights_values[str(w)]
    ins = [order.index(f"x{i}") for i in net.inputs]
    outs = [order.index(f"x{o}") for o in net.outputs]
    comp = [i for i in range(n) if i not in ins]
    om = model.frequency

    def u(t):
        return np.array([np.sin(om * t + np.pi * k / len(ins)) for k in range(len(ins))])

    def f(t, z):
        x = np.zeros(n)
        x[ins] = u(t)
        x[comp] = z[:len(comp)]
        mu = np.zeros(n)
        mu[comp] = z[len(comp):]
        a = W @ x
        sp_ = 1 - np.tanh(a) ** 2
        xdot = c * (np.tanh(a) - x)
        Vx = np.zeros(n)
        Vx[outs] = x[outs] - 0.5
        Tmu = mu - (sp_[:, None] * W).T @ mu
        mudot = -c * (Tmu + Vx)
        return np.concatenate([xdot[comp], mudot[comp]])

    names = list(model.neurons)
    z0 = np.concatenate([[y0[names.index(order[i])] for i in comp], y0[len(names):]])
    sol = solve_ivp(f, (grid[0], grid[-1]), z0, t_eval=grid, method="DOP853",
                    rtol=1e-12, atol=1e-13)
    return order, comp, sol.y.T


def test_derived_relaxation_matches_hand_written_dynamics(small):
    c = 20.0
    run = small.simulate(c, t_end=4.0, n_points=41)
    order, comp, Z = _hand_written(small, c, run.times, small.initial_state())
    names = list(small.neurons)
    x_ours = run.x[:, [names.index(order[i]) for i in comp]]
    np.testing.assert_allclose(x_ours, Z[:, :len(comp)], atol=1e-7)
    # multipliers in the order of the computing neurons (mu_G<j> belongs to x<j>)
    mu_ours = run.multipliers[:, [list(small.multiplier_names).index("mu_G" + order[i][1:])
                                  for i in comp]]
    np.testing.assert_allclose(mu_ours, Z[:, len(comp):], atol=1e-7)


def test_estimate_converges_to_backprop_at_order_one_in_c(small):
    """Expected order 1: each neuron lags sigma(a) by O(omega/c) (first-order relaxation
    at rate c of a signal moving at speed omega), and the relaxed multipliers lag their
    equilibrium T mu = -V_x (the backprop delta) by O(omega/c) likewise; the estimate is
    a smooth function of both, so its error is O(1/c)."""
    conv = speed_convergence(small, [10, 20, 40, 80], t_end=8.0, n_points=81)
    assert conv.fit.order == pytest.approx(1.0, abs=0.1)
    assert conv.fit.r_squared > 0.99
    assert np.all(np.diff(conv.errors) < 0)
    assert "order" in conv.table()


def test_error_grows_with_input_frequency():
    errs = [derive_diffusion([2, 3, 1], frequency=om, seed=1).simulate(
        40.0, t_end=12.0, n_points=61).relative_error(6.0) for om in (0.2, 0.4, 0.8)]
    assert errs[0] < errs[1] < errs[2]


def test_constant_input_estimate_is_exact_at_rest():
    """frequency 0: the rest state is the forward pass and the backprop delta, so the
    estimate equals the AD gradient at every time, at any speed."""
    run = derive_diffusion([2, 2, 1], frequency=0.0, seed=2).simulate(5.0, t_end=2.0,
                                                                       n_points=11)
    np.testing.assert_allclose(run.estimate, run.reference, rtol=1e-8, atol=1e-12)


def test_adjoint_sweep_estimate_converges_to_backprop_at_order_one(small):
    """The derived eq. (20) run backward from mu(T) = 0 (compile.adjoint_sweep): the
    multipliers meet their final condition, and away from both boundary layers the
    estimate converges to the AD gradient at order 1 in 1/c (the neurons still lag
    sigma(a) by O(omega/c); the multipliers now anticipate their equilibrium by
    O(omega/c) instead of lagging it)."""
    from cognitive_action.verify import metrics

    speeds, errors = [10.0, 20.0, 40.0, 80.0], []
    for c in speeds:
        run = small.simulate(c, t_end=8.0, n_points=81, variant="adjoint")
        assert run.variant == "adjoint"
        assert np.abs(run.multipliers[-1]).max() < 1e-10
        inner = (run.times >= 2.0) & (run.times <= 6.0)
        errors.append(np.mean(metrics.relative_error(run.estimate[inner],
                                                     run.reference[inner], axis=1)))
    fit = metrics.convergence_order(1.0 / np.array(speeds), np.array(errors))
    assert fit.order == pytest.approx(1.0, abs=0.1) and fit.r_squared > 0.99


def test_forward_eq20_is_reported_as_a_blow_up(small):
    with pytest.raises(SimulationError) as info:
        small.simulate(20.0, t_end=6.0, n_points=31, variant="forward")
    assert "relaxation" in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(speed=-1.0), dict(speed=float("nan")),
                                    dict(speed=10.0, variant="backward"),
                                    dict(speed=10.0, t_end=0.0)])
def test_bad_simulation_settings(small, kwargs):
    with pytest.raises(DeclarationError):
        small.simulate(**kwargs)


def test_bad_derivation_settings():
    with pytest.raises(DeclarationError):
        derive_diffusion([2, 3, 1], frequency=-1.0)
    with pytest.raises(DeclarationError):
        speed_convergence(derive_diffusion([1, 1], frequency=0.3), [10, 20])
