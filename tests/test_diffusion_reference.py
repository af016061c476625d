"""The static backprop reference against CasADi autodiff and finite differences."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from cognitive_action.diffusion.reference import (
    backprop_gradients,
    exact_window,
    frame_loss,
    signal_frames,
    supervision_delay,
)
from cognitive_action.errors import ActivationError, DeclarationError, ShapeError

CASADI_ACT = {
    "tanh": ca.tanh,
    "logistic": lambda a: 1.0 / (1.0 + ca.exp(-a)),
    "identity": lambda a: a,
    "softplus": lambda a: ca.log(1.0 + ca.exp(a)),
}


def _net(rng, widths, gain=1.2):
    return [gain * rng.normal(size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
            for i in range(len(widths) - 1)]


def _casadi_gradients(weights, u, y, act, loss):
    """∂V/∂W_l by CasADi's reverse-mode AD on a symbolic network."""
    syms = [ca.SX.sym(f"W{i}", *w.shape) for i, w in enumerate(weights)]
    x = ca.DM(u)
    for s in syms:
        x = CASADI_ACT[act](ca.mtimes(s, x))
    V = 0.5 * ca.sumsqr(x - ca.DM(y)) if loss == "squared" else -ca.dot(ca.DM(y), x)
    flat = ca.vertcat(*[ca.vec(s) for s in syms])
    f = ca.Function("g", [flat], [ca.jacobian(V, flat)])
    vals = np.concatenate([w.ravel(order="F") for w in weights])
    jac = np.asarray(f(vals)).ravel()
    out, i = [], 0
    for w in weights:
        out.append(jac[i:i + w.size].reshape(w.shape, order="F"))
        i += w.size
    return out


@pytest.mark.parametrize("act", ["tanh", "logistic", "identity", "softplus"])
@pytest.mark.parametrize("loss", ["squared", "linear"])
def test_backprop_matches_casadi_autodiff(act, loss):
    rng = np.random.default_rng(3)
    widths = [3, 5, 4, 2]
    W = _net(rng, widths)
    u, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    grads = backprop_gradients(W, u, y, activation=act, loss=loss)
    for k in range(6):
        ref = _casadi_gradients(W, u[k], y[k], act, loss)
        for l in range(3):
            np.testing.assert_allclose(grads[l][k], ref[l], rtol=0, atol=1e-12)


def test_backprop_matches_finite_differences():
    rng = np.random.default_rng(4)
    widths = [2, 3, 3, 3, 1]
    W = _net(rng, widths, gain=1.5)
    u, y = rng.normal(size=2), rng.normal(size=1)
    grads = backprop_gradients(W, u, y)
    h = 1e-6
    for l, w in enumerate(W):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            wp = [v.copy() for v in W]
            wm = [v.copy() for v in W]
            wp[l][idx] += h
            wm[l][idx] -= h
            fd[idx] = (frame_loss(wp, u, y) - frame_loss(wm, u, y)) / (2 * h)
        np.testing.assert_allclose(grads[l], fd, rtol=0, atol=1e-8)


def test_bad_networks_are_typed_errors():
    with pytest.raises(ShapeError):
        backprop_gradients([np.ones((2, 3)), np.ones((1, 3))], np.ones(3), np.ones(1))
    with pytest.raises(ShapeError):
        backprop_gradients([], np.ones(3), np.ones(1))
    with pytest.raises(ShapeError):
        backprop_gradients([np.ones((1, 3))], np.ones(3), np.ones(2))
    with pytest.raises(ActivationError):
        backprop_gradients([np.ones((1, 3))], np.ones(3), np.ones(1), activation="relu")
    with pytest.raises(DeclarationError):
        supervision_delay("later", 3, "incoming")
    with pytest.raises(DeclarationError):
        signal_frames(4, 3)


def test_frame_bookkeeping_closed_forms():
    # with the paper's supervision the input and supervision frames meet at l_s = (L+1)/2
    for L in (3, 5, 9):
        ls = (L + 1) // 2
        fr = signal_frames(ls, L, delay=0)
        assert fr["forward"] == fr["supervision"]
        for l in range(1, L + 1):
            lo, hi = exact_window(l, L, derivative="incoming", delay=0)
            assert lo == l - 2 * L + 1                       # the output value's frame
            assert hi == max(1 - l, l - L)                   # input or supervision
            lo_s, hi_s = exact_window(l, L, derivative="state", delay=0)
            assert (lo_s, hi_s) == (lo - 1, hi)
        # supervision of the output's frame: window of 2(L-l)+1 ticks, the top layer exact
        d = supervision_delay("output", L, "incoming")
        assert [exact_window(l, L, delay=d)[1] - exact_window(l, L, delay=d)[0]
                for l in range(1, L + 1)] == [2 * (L - l) for l in range(1, L + 1)]
