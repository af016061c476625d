"""The wave simulator (eq. 1-3) against the independent static-backprop reference."""

from __future__ import annotations

import numpy as np
import pytest

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import gradient_errors, per_tick_errors
from cognitive_action.diffusion.reference import (
    backprop_gradients,
    exact_window,
    static_forward,
)
from cognitive_action.diffusion.waves import (
    fill_ticks,
    init_state,
    pad_weights,
    simulate_waves,
    unpad_weights,
    wave_step,
)
from cognitive_action.errors import DeclarationError, ShapeError


def _net(rng, widths, gain=1.3):
    return [gain * rng.normal(size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
            for i in range(len(widths) - 1)]


@pytest.mark.parametrize("L", [1, 2, 3, 6, 9])
@pytest.mark.parametrize("act", ["tanh", "logistic", "softplus", "identity"])
@pytest.mark.parametrize("derivative", ["incoming", "state"])
def test_constant_input_exact_after_fill(L, act, derivative):
    rng = np.random.default_rng(L)
    widths = [3] + [4] * (L - 1) + [2]
    # logistic has σ' <= 1/4: a larger gain keeps deep layers sensitive to their input
    W = _net(rng, widths, gain=4.0 if act == "logistic" else 1.3)
    T = 2 * L + 6
    u0, y0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    res = simulate_waves(W, signals.constant(T, u0), signals.constant(T, y0),
                         activation=act, derivative=derivative)
    ref = backprop_gradients(W, u0, y0, activation=act)      # independent static backprop
    t_fill = fill_ticks(L, derivative)
    assert t_fill == 2 * L - 2 + (derivative == "state")
    for l in range(1, L + 1):
        est = res.estimate(l)
        np.testing.assert_allclose(est[t_fill:], np.broadcast_to(ref[l - 1], est[t_fill:].shape),
                                   rtol=0, atol=1e-12)
    # one tick earlier the bottom layer still sees the network's rest state (the trace
    # of the rest state shrinks layer by layer in contractive nets, hence a small bound)
    if t_fill > 0:
        assert np.abs(res.estimate(1)[t_fill - 1] - ref[0]).max() > 1e-10
    else:  # L = 1 with the incoming derivative: no delay on the way back, exact at once
        assert L == 1


def test_per_tick_engine_equals_layer_sweep_engine():
    rng = np.random.default_rng(5)
    widths = [3, 5, 2, 4, 1]
    W = _net(rng, widths)
    T = 40
    u = signals.sinusoid(T, 3, [0.01, 0.2, 0.37], rng=1)
    y = static_forward(_net(rng, widths), u)[0][-1]
    for derivative in ("incoming", "state"):
        for sup in ("paper", "output", 2):
            res = simulate_waves(W, u, y, activation="logistic", derivative=derivative,
                                 supervision=sup)
            stacked, wd = pad_weights(W, batch=3)
            assert [np.array_equal(a, b) for a, b in zip(unpad_weights(stacked, wd), W,
                                                         strict=True)] == [True] * 4
            state = init_state(wd, 3, activation="logistic")
            for t in range(T):
                ysup = y[t - res.delay] if t >= res.delay else None
                state, g = wave_step(state, stacked, u[t], ysup, activation="logistic",
                                     derivative=derivative)
                for l in range(1, 5):
                    np.testing.assert_allclose(g[:, l - 1, :wd[l], :wd[l - 1]],
                                               res.estimate(l)[t], rtol=0, atol=1e-13)
                    # padded entries stay exactly zero
                    assert not np.any(g[:, l - 1, wd[l]:, :])
                    assert not np.any(g[:, l - 1, :, wd[l - 1]:])


@pytest.mark.parametrize("derivative", ["incoming", "state"])
@pytest.mark.parametrize("supervision", ["paper", "output"])
def test_exact_exactly_when_the_frame_window_is_constant(derivative, supervision):
    """Frames held k ticks: g_{t,l} equals the reference of frame t-l+1 iff u and y are
    constant on the window of :func:`exact_window`, and is off by O(1) otherwise."""
    rng = np.random.default_rng(11)
    L, widths = 5, [3, 4, 4, 3, 4, 2]
    W = _net(rng, widths)
    T, holds = 90, [1, 3, 7, 12]
    u = signals.frames(T, 3, holds, rng=2)
    y = static_forward(_net(rng, widths), u)[0][-1]
    res = simulate_waves(W, u, y, derivative=derivative, supervision=supervision)
    errs = per_tick_errors(res)
    n_exact = 0
    for l in range(1, L + 1):
        lo, hi = exact_window(l, L, derivative=derivative, delay=res.delay)
        for b, k in enumerate(holds):
            for t in range(fill_ticks(L, derivative, res.delay), T):
                constant = (t + lo) // k == (t + hi) // k       # window inside one frame
                if constant:
                    assert errs[l - 1, t, b] < 1e-12
                    n_exact += 1
                else:
                    assert errs[l - 1, t, b] > 1e-4
    assert n_exact > 200


def test_ls_exact_for_linear_net_and_linear_loss_at_any_speed():
    """The paper's l_s = (L+1)/2 claim holds exactly when the backward wave carries the
    supervision alone: identity activations, a loss whose gradient ignores the output,
    and supervision entering with its input (d = 0). Input changes every tick."""
    rng = np.random.default_rng(2)
    for L in (3, 5, 9):
        widths = [3] + [4] * (L - 1) + [2]
        W = _net(rng, widths)
        T = 80
        u, y = signals.frames(T, 3, 1, rng=L), signals.frames(T, 2, 1, rng=L + 100)
        ls = (L + 1) // 2
        rel = gradient_errors(simulate_waves(W, u, y, activation="identity", loss="linear")
                              ).metrics.relative_error[:, 0]
        assert rel[ls - 1] < 1e-13
        assert np.all(np.delete(rel, ls - 1) > 0.3)


def test_ls_not_exact_for_tanh_or_squared_loss():
    rng = np.random.default_rng(3)
    widths = [3, 4, 4, 4, 4, 2]
    W = _net(rng, widths)
    T = 120
    u = signals.frames(T, 3, 1, rng=1)
    y = signals.frames(T, 2, 1, rng=2)
    for act, loss in (("tanh", "linear"), ("identity", "squared"), ("tanh", "squared")):
        for derivative in ("incoming", "state"):
            rel = gradient_errors(simulate_waves(W, u, y, activation=act, loss=loss,
                                                 derivative=derivative)
                                  ).metrics.relative_error[:, 0]
            assert rel[2] > 0.1, (act, loss, derivative)


def test_top_layer_exact_with_incoming_derivative_and_output_supervision():
    rng = np.random.default_rng(4)
    widths = [2, 3, 3, 3, 2]
    W = _net(rng, widths)
    u = signals.frames(60, 2, 1, rng=3)
    y = static_forward(_net(rng, widths), u)[0][-1]
    rel = gradient_errors(simulate_waves(W, u, y, supervision="output")
                          ).metrics.relative_error[:, 0]
    assert rel[-1] < 1e-13 and np.all(rel[:-1] > 0.1)
    rel_state = gradient_errors(simulate_waves(W, u, y, supervision="output",
                                               derivative="state")).metrics.relative_error
    assert rel_state[-1, 0] > 0.1


def test_error_grows_monotonically_with_speed_at_small_speeds():
    rng = np.random.default_rng(6)
    for L in (3, 6):
        widths = [2] + [4] * (L - 1) + [2]
        W, teacher = _net(rng, widths), _net(rng, widths)
        freqs = np.geomspace(5e-4, 2e-2, 9)                    # cycles per tick
        T = 2500
        u = signals.sinusoid(T, 2, freqs, rng=7)
        y = static_forward(teacher, u)[0][-1]
        rel = gradient_errors(simulate_waves(W, u, y)).metrics.relative_error  # (L, F)
        assert np.all(np.diff(rel, axis=1) > 0), rel
        # first order in the speed: doubling f about doubles the error
        ratio = rel[:, -1] / rel[:, 0]
        assert np.all((ratio > 0.5 * 40) & (ratio < 2 * 40))


def test_bad_signals_are_typed_errors():
    W = [np.ones((2, 3)), np.ones((1, 2))]
    with pytest.raises(ShapeError):
        simulate_waves(W, np.ones((5, 2)), np.ones((5, 1)))
    with pytest.raises(ShapeError):
        simulate_waves(W, np.ones((5, 3)), np.ones((5, 2)))
    with pytest.raises(ShapeError):
        simulate_waves(W, np.ones((5, 2, 3)), np.ones((4, 2, 1)))
    with pytest.raises(DeclarationError, match="NaN"):
        simulate_waves(W, np.full((5, 3), np.nan), np.ones((5, 1)))
    with pytest.raises(DeclarationError):
        simulate_waves(W, np.ones((5, 3)), np.ones((5, 1)), derivative="later")
    res = simulate_waves(W, np.ones((5, 3)), np.ones((5, 1)))
    with pytest.raises(DeclarationError):
        res.estimate(0)
    with pytest.raises(DeclarationError, match="past the end"):
        gradient_errors(res, start=5)
