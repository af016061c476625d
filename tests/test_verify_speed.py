"""Speed-c neurons (eq. 18-20): the c -> oo limit as a verifier check (issue 12, item 1).

The reference is independent of the derivation: backprop deltas of the frozen-weight
network at each time, by CasADi AD through a forward pass
(``verify.reference.casadi_gradients``), itself checked here against deltas written
by hand for a chain.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.speed import (
    SpeedLimitSetup,
    check_speed_limit,
    speed_limit_setup,
)

c, = S.parameters("c")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_layered_leaky_nets_converge_at_order_one_in_one_over_c(seed):
    """Expected order 1 in 1/c: each neuron lags sigma(a) by O(omega/c) and the relaxed
    multipliers lag their equilibrium T mu = -V_x (the backprop delta) by O(omega/c)."""
    rng = np.random.default_rng(100 + seed)
    sizes = [int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(1, 3))]
    act = ["tanh", "logistic", "softplus"][seed]
    p = ca.layered(sizes, act, speed=c).problem(parameters=[c])
    check = check_speed_limit(p, seed=seed)
    assert check.status == "pass", (sizes, act, check.message)
    assert check.value == pytest.approx(1.0, abs=0.1)
    lo, hi = check.details["ci"]
    assert lo <= check.value <= hi and hi - lo < 0.2
    assert check.details["parameter"] == "1/c" and check.details["range"][1] <= 1 / 80
    errors = check.details["errors"]
    assert np.all(np.diff(errors) < 0) and errors[-1] < 0.05
    assert "1/c in [" in check.message


def _chain_deltas(w21: float, w32: float, e1: np.ndarray, y3: float) -> np.ndarray:
    """Hand-written backprop deltas (delta2, delta3) of chain(3): V = (x3 - y3)^2 / 2."""
    x2 = np.tanh(w21 * e1)
    x3 = np.tanh(w32 * x2)
    d3 = y3 - x3
    d2 = (1 - x3**2) * w32 * d3
    return np.column_stack([d2, d3])


def test_chain_multipliers_tend_to_hand_written_deltas_like_one_over_c():
    """The setup's reference equals hand-written deltas along the moving input, and the
    simulated multipliers approach them: error(c) * c roughly constant (order 1)."""
    p = ca.chain(3, speed=c).problem(parameters=[c])
    setup = speed_limit_setup(p, seed=3, values={"y3": 0.4})
    assert isinstance(setup, SpeedLimitSetup)
    assert setup.multipliers == ("mu_G2", "mu_G3") and set(setup.signals) == {"e1"}
    e1 = sp.lambdify([S.t], sp.sympify(setup.signals["e1"]))(setup.grid)
    w21, w32 = setup.params["w2_1"], setup.params["w3_2"]
    hand = _chain_deltas(w21, w32, np.broadcast_to(e1, setup.grid.shape), 0.4)
    np.testing.assert_allclose(setup.reference, hand, rtol=1e-12, atol=1e-14)
    late = setup.grid >= 2.0
    scaled = []
    for speed in (40.0, 160.0, 640.0):
        mu = setup.multipliers_at(speed)
        err = np.abs(mu[late] - hand[late]).max() / np.abs(hand[late]).max()
        scaled.append(err * speed)
    assert scaled[-1] / speed < 0.02
    assert max(scaled) / min(scaled) < 1.2


def test_a_limit_missed_at_another_order_is_caught(monkeypatch):
    """Planted: multipliers off by a fixed 20 % plus the true lag: the error tends to a
    constant, a stable order 0, which fails."""
    p = ca.layered([2, 2, 1], speed=c).problem(parameters=[c])
    real = SpeedLimitSetup.multipliers_at

    def off(self, speed, **kw):
        return 1.2 * real(self, speed, **kw)
    monkeypatch.setattr(SpeedLimitSetup, "multipliers_at", off)
    check = check_speed_limit(p, seed=1)
    assert check.status == "fail", check.message
    assert abs(check.value) < 0.1


def test_when_the_check_does_not_apply_it_says_why():
    assert "no speed" in check_speed_limit(ca.layered([1, 2, 1]).problem()).message
    fixed = check_speed_limit(ca.chain(2, speed=50.0).problem())
    assert fixed.status == "skip" and "number" in fixed.message
    still = check_speed_limit(ca.chain(2, speed=c).problem(parameters=[c]),
                              values={"e1": 0.3, "y2": 0.1})
    assert still.status == "skip" and "moves in time" in still.message
    assert check_speed_limit("not a problem").status == "skip"
    big = check_speed_limit(ca.layered([3, 3, 3], speed=c).problem(parameters=[c]),
                            max_neurons=8)
    assert big.status == "skip" and "9 neurons" in big.message
    with pytest.raises(DeclarationError, match="speeds"):
        check_speed_limit(ca.chain(2, speed=c).problem(parameters=[c]), speeds=(10, 5, 20))
    with pytest.raises(DeclarationError, match="t_from"):
        check_speed_limit(ca.chain(2, speed=c).problem(parameters=[c]), t_from=9.0)


def test_time_weight_is_run_at_weight_one():
    """exp(theta t) with theta not given runs at theta = 0 (weight 1)."""
    theta, = S.parameters("theta")
    p = ca.chain(3, speed=c).problem(weight=sp.exp(theta * S.t), parameters=[c, theta])
    setup = speed_limit_setup(p, seed=0)
    assert setup.params.get("theta", 0.0) == 0.0
    check = check_speed_limit(p, seed=0)
    assert check.status == "pass", check.message


@pytest.mark.parametrize("sizes, act", [([2, 3, 1], "tanh"), ([3, 2, 2], "logistic"),
                                        ([1, 3, 2, 1], "softplus")])
def test_the_c_to_infinity_limit_is_backprop_at_random_states(sizes, act):
    """m_x -> 0 and c -> oo together: the reduced multipliers are the AD backprop deltas
    and the weight rows m_W w'' = -dV/dW (eq. 12-13 with the deltas of eq. 17)."""
    from cognitive_action.verify.speed import check_speed_backprop

    p = ca.layered(sizes, act, speed=c).problem(parameters=[c])
    check = check_speed_backprop(p, seed=sum(sizes))
    assert check.status == "pass", check.message
    assert check.value < 1e-12 and len(check.details["errors"]) == 3


def test_the_c_to_infinity_limit_with_a_time_weight_and_hand_written_deltas():
    """chain(3), weight exp(theta t): the reduced output multiplier is y3 - x3 and the
    hidden one (1 - x3^2) w32 (y3 - x3), written by hand."""
    from cognitive_action.derive.limits import reduce
    from cognitive_action.verify.speed import check_speed_backprop, speed_backprop_limit

    theta, = S.parameters("theta")
    p = ca.chain(3, speed=c).problem(weight=sp.exp(theta * S.t), parameters=[c, theta])
    assert check_speed_backprop(p).status == "pass"
    red = reduce(ca.euler_lagrange(p), speed_backprop_limit(p))
    sol = red.solve()
    x2, x3, y3, w32 = (S.symbol(n) for n in ("x2", "x3", "y3", "w3_2"))
    mu3, mu2 = red.multiplier_of("G3"), red.multiplier_of("G2")
    assert sp.simplify(sol[mu3] - (y3 - x3)) == 0
    on_forward = {x3: sp.tanh(w32 * x2)}
    hand = ((1 - x3**2) * w32 * (y3 - x3)).xreplace(on_forward)
    assert sp.simplify(sol[mu2].xreplace(on_forward) - hand) == 0


def test_a_limit_that_is_not_backprop_fails(monkeypatch):
    """Planted: the reference's hidden deltas halved: the check must see the difference
    and say where."""
    import cognitive_action.verify.reference as reference
    from cognitive_action.verify.speed import check_speed_backprop

    real = reference.casadi_gradients

    def halved(problem, w, values):
        r = real(problem, w, values)
        d = r.delta.copy()
        d[:-1] *= 0.5
        return reference.CasadiReference(r.x, d, r.grad_w, r.loss)
    monkeypatch.setattr(reference, "casadi_gradients", halved)
    check = check_speed_backprop(ca.layered([2, 2, 1], speed=c).problem(parameters=[c]))
    assert check.status == "fail" and "not backprop" in check.message
    assert check.details["errors"][0]["weights"] < 1e-12
    assert check.details["errors"][0]["multipliers"] > 0.1


def test_speed_backprop_says_why_it_does_not_apply():
    from cognitive_action.verify.speed import check_speed_backprop, speed_backprop_limit

    assert check_speed_backprop(ca.chain(3).problem()).status == "skip"
    big = check_speed_backprop(ca.layered([3, 3, 3], speed=c).problem(parameters=[c]),
                               max_neurons=8)
    assert big.status == "skip" and "9 neurons" in big.message
    with pytest.raises(DeclarationError, match="number"):
        speed_backprop_limit(ca.chain(2, speed=50.0).problem())
