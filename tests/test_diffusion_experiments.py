"""Speed sweep, figures and online learning of Section 2."""

from __future__ import annotations

import numpy as np
import pytest

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import gradient_errors
from cognitive_action.diffusion.nets import random_weights, teacher_targets
from cognitive_action.diffusion.online import _static_backprop_padded, online_learning
from cognitive_action.diffusion.reference import backprop_gradients, exact_window
from cognitive_action.diffusion.sweep import fit_scaling, format_table, speed_sweep
from cognitive_action.diffusion.waves import pad_weights, simulate_waves
from cognitive_action.errors import DeclarationError


@pytest.fixture(scope="module")
def small_sweep():
    return speed_sweep([2, 3, 4], np.geomspace(1e-3, 1e-2, 6), ticks=1500, seeds=2)


def test_sweep_error_first_order_in_speed(small_sweep):
    mean = small_sweep.layer_mean()
    assert np.all(np.diff(mean, axis=1) > 0)
    fit = fit_scaling(small_sweep, max_error=1.0)
    # at small speeds the error is first order in f at every depth
    for L, f in fit.per_depth.items():
        assert 0.85 < f.order < 1.1, (L, f)
    assert fit.collapse.ci[0] < fit.collapse.order < fit.collapse.ci[1]
    assert fit.speed_ci[0] < 1.0 < fit.speed_ci[1] or abs(fit.speed_order - 1) < 0.1
    table = format_table(small_sweep)
    assert table.count("\n") == 1 + 3 * 6 and "| 4 |" in table


def test_frames_sweep_exact_fraction_matches_window_closed_form():
    holds = np.array([4, 8, 16, 32])
    sw = speed_sweep([3, 5], holds, kind="frames", ticks=2000, seeds=1, supervision="output")
    np.testing.assert_allclose(sw.speeds, 1.0 / holds)
    for i, L in enumerate(sw.depths):
        for l in range(1, L + 1):
            lo, hi = exact_window(l, L, delay=L - 1)
            span = hi - lo
            predicted = np.maximum(0.0, 1.0 - span / holds)   # fraction of ticks inside a frame
            np.testing.assert_allclose(sw.exact_fraction[i, 0, l - 1], predicted, atol=0.02)


def test_fit_scaling_needs_two_depths():
    sw = speed_sweep([3], [1e-3, 2e-3, 4e-3], ticks=800, seeds=1)
    with pytest.raises(DeclarationError):
        fit_scaling(sw)


def test_teacher_is_a_fixed_point_only_with_output_aligned_supervision():
    """At the teacher every per-frame gradient is 0; the wave estimate is 0 too iff the
    supervision is that of the frame the output carries."""
    widths = [2, 3, 3, 2]
    teacher = random_weights(widths, rng=4)
    u = signals.frames(80, 2, 1, rng=5)
    y = teacher_targets(teacher, u)
    out = simulate_waves(teacher, u, y, supervision="output")
    paper = simulate_waves(teacher, u, y, supervision="paper")
    for l in range(1, 4):
        assert np.abs(out.estimate(l)[10:]).max() < 1e-15
        assert np.abs(paper.estimate(l)[10:]).max() > 1e-3


def test_padded_batched_backprop_matches_reference():
    rng = np.random.default_rng(0)
    widths = [3, 5, 2, 4]
    W = random_weights(widths, rng=1)
    P, wd = pad_weights(W, batch=4)
    state_mask = np.zeros((4, 5))
    for l, n in enumerate(wd):
        state_mask[l, :n] = 1
    u, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 4))
    from cognitive_action.diffusion.functions import get_activation, get_loss
    g = _static_backprop_padded(P, state_mask, u, y, get_activation("tanh"),
                                get_loss("squared"))
    ref = backprop_gradients(W, u, y)
    for l in range(3):
        np.testing.assert_allclose(g[:, l, :wd[l + 1], :wd[l]], ref[l], atol=1e-14, rtol=0)


def test_online_diffusion_learns_like_backprop_on_a_slow_stream():
    widths = [2, 4, 4, 1]
    teacher = random_weights(widths, gain=1.5, rng=0)
    student = random_weights(widths, gain=1.0, rng=1)
    u = signals.smooth_random(6000, 2, 40.0, rng=2, batch=2)
    test = signals.smooth_random(1000, 2, 40.0, rng=3)[:, 0]
    kw = dict(test_inputs=test, lr=0.03, eval_every=2000)
    bp = online_learning(teacher, student, u, method="backprop", **kw)
    dif = online_learning(teacher, student, u, method="diffusion", supervision="output", **kw)
    assert np.all(bp.test_loss[-1] < 0.2 * bp.test_loss[0])
    assert np.all(dif.test_loss[-1] < 0.2 * dif.test_loss[0])
    assert np.all(dif.test_loss[-1] < 2.0 * bp.test_loss[-1])


def test_online_blowup_is_a_typed_error():
    from cognitive_action.errors import SimulationError
    widths = [2, 3, 1]
    u = signals.smooth_random(300, 2, 5.0, rng=1)
    with pytest.raises(SimulationError):
        online_learning(random_weights(widths, rng=0), random_weights(widths, rng=1),
                        10 * u, test_inputs=u[:, 0], lr=1e6, activation="identity",
                        eval_every=10)


def test_paper_figures_are_png_images(tmp_path):
    pytest.importorskip("matplotlib")
    from cognitive_action.diffusion.figures import make_figures, sweep_figure

    paths = make_figures(tmp_path)
    sw = speed_sweep([2, 3], [2e-3, 4e-3, 8e-3], ticks=600, seeds=1)
    paths.append(sweep_figure(sw, tmp_path / "sweep.png", fit_scaling(sw, max_error=2.0)))
    assert len(paths) == 5
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, p


def test_gradient_errors_reuse_verifier_metrics():
    from cognitive_action.verify.metrics import cosine_similarity

    rng = np.random.default_rng(9)
    W = random_weights([2, 3, 2], rng=rng)
    u = signals.sinusoid(200, 2, [0.01, 0.05], rng=1)
    y = teacher_targets(random_weights([2, 3, 2], rng=2), u)
    res = simulate_waves(W, u, y)
    m = gradient_errors(res, start=50).metrics
    est = res.estimate(1)[50:, 1]
    ref = backprop_gradients(W, u[50:, 1], y[50:, 1])[0]
    assert m.cosine[0, 1] == pytest.approx(float(cosine_similarity(est, ref)), abs=1e-14)
