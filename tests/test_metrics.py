"""Tests of cognitive_action.verify.metrics against closed forms and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from cognitive_action.errors import DeclarationError, ShapeError
from cognitive_action.verify.metrics import (
    angle_degrees,
    convergence_order,
    cosine_similarity,
    layer_metrics,
    relative_error,
    sign_agreement,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_cosine_matches_scipy(rng):
    a, g = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    expected = 1.0 - distance.cosine(a.ravel(), g.ravel())
    assert float(cosine_similarity(a, g)) == pytest.approx(expected, abs=1e-14)
    per_row = cosine_similarity(a, g, axis=1)
    assert per_row.shape == (7,)
    for i in range(7):
        assert per_row[i] == pytest.approx(1.0 - distance.cosine(a[i], g[i]), abs=1e-14)


@pytest.mark.parametrize("theta", [0.0, 1e-9, 0.3, np.pi / 2, 2.5, np.pi - 1e-9, np.pi])
def test_angle_of_a_rotation(theta):
    g = np.array([2.0, 0.0, 0.0])
    a = 5.0 * np.array([np.cos(theta), np.sin(theta), 0.0])
    assert float(angle_degrees(a, g)) == pytest.approx(np.degrees(theta), abs=1e-10)


def test_angle_per_axis_and_scale_invariance(rng):
    a, g = rng.normal(size=(4, 3, 6)), rng.normal(size=(4, 3, 6))
    ang = angle_degrees(a, g, axis=(1, 2))
    assert ang.shape == (4,)
    np.testing.assert_allclose(ang, angle_degrees(3.0 * a, 0.5 * g, axis=(1, 2)), atol=1e-10)
    cos = cosine_similarity(a, g, axis=(1, 2))
    np.testing.assert_allclose(np.cos(np.radians(ang)), cos, atol=1e-12)


def test_relative_error_closed_form(rng):
    g = rng.normal(size=(3, 4))
    e = rng.normal(size=(3, 4))
    e *= 0.25 * np.linalg.norm(g) / np.linalg.norm(e)
    assert float(relative_error(g + e, g)) == pytest.approx(0.25, rel=1e-12)
    assert float(relative_error(g, g)) == 0.0
    # aggregated over a time axis: sqrt(sum |a_t-g_t|^2 / sum |g_t|^2)
    a, g2 = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    expected = np.sqrt(np.sum((a - g2) ** 2) / np.sum(g2**2))
    assert float(relative_error(a, g2)) == pytest.approx(expected, rel=1e-13)


def test_sign_agreement_counts(rng):
    g = rng.normal(size=1000)
    flip = rng.random(1000) < 0.3
    a = np.where(flip, -g, 2.0 * g)
    assert float(sign_agreement(a, g)) == pytest.approx(1.0 - flip.mean(), abs=1e-15)
    assert float(sign_agreement(np.zeros(4), np.array([0.0, 0.0, 1.0, -1.0]))) == 0.5


def test_layer_metrics_bundle(rng):
    a, g = rng.normal(size=(5, 2, 2)), rng.normal(size=(5, 2, 2))
    m = layer_metrics(a, g, axis=(1, 2))
    np.testing.assert_allclose(m.relative_error, relative_error(a, g, axis=(1, 2)))
    np.testing.assert_allclose(m.angle, angle_degrees(a, g, axis=(1, 2)))
    np.testing.assert_allclose(m.sign_agreement, sign_agreement(a, g, axis=(1, 2)))


@pytest.mark.parametrize("fn", [cosine_similarity, angle_degrees, relative_error])
def test_zero_reference_is_a_typed_error(fn):
    with pytest.raises(DeclarationError, match="zero vector"):
        fn(np.ones(3), np.zeros(3))


@pytest.mark.parametrize("fn", [cosine_similarity, angle_degrees])
def test_zero_estimate_has_no_angle(fn):
    with pytest.raises(DeclarationError, match="estimate is a zero vector"):
        fn(np.zeros(3), np.ones(3))


def test_zero_row_only_along_axis():
    g = np.array([[1.0, 1.0], [0.0, 0.0]])
    with pytest.raises(DeclarationError):
        relative_error(g, g, axis=1)
    assert float(relative_error(g, g)) == 0.0  # the whole array is not zero


@pytest.mark.parametrize("fn", [cosine_similarity, angle_degrees, relative_error,
                                sign_agreement])
def test_nan_and_shape_errors(fn):
    with pytest.raises(DeclarationError, match="NaN"):
        fn(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(DeclarationError, match="NaN"):
        fn(np.ones(2), np.array([np.inf, 1.0]))
    with pytest.raises(ShapeError, match="shape"):
        fn(np.ones(2), np.ones(3))


def test_convergence_order_exact_power_law():
    h = np.logspace(-4, -1, 9)
    fit = convergence_order(h, 0.7 * h**1.5)
    assert fit.order == pytest.approx(1.5, abs=1e-12)
    assert fit.constant == pytest.approx(0.7, rel=1e-10)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(fit.predict(h), 0.7 * h**1.5, rtol=1e-10)


def test_convergence_order_matches_linregress_and_covers_truth():
    rng = np.random.default_rng(7)
    h = np.logspace(-3, 0, 25)
    covered = 0
    for _ in range(200):
        err = 2.0 * h**1.0 * np.exp(0.1 * rng.normal(size=h.size))
        fit = convergence_order(h, err, confidence=0.9)
        ref = stats.linregress(np.log(h), np.log(err))
        assert fit.order == pytest.approx(ref.slope, abs=1e-12)
        assert fit.stderr == pytest.approx(ref.stderr, rel=1e-9)
        assert fit.r_squared == pytest.approx(ref.rvalue**2, abs=1e-12)
        covered += fit.ci[0] <= 1.0 <= fit.ci[1]
    # a 90% interval covers the true order about 90% of the time (binomial sd ~ 2%)
    assert 0.82 <= covered / 200 <= 0.97


def test_convergence_order_rejects_bad_input():
    with pytest.raises(ShapeError):
        convergence_order([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ShapeError):
        convergence_order([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DeclarationError, match="positive"):
        convergence_order([1.0, 2.0, 3.0], [1.0, 0.0, 2.0])
    with pytest.raises(DeclarationError, match="positive"):
        convergence_order([1.0, np.nan, 3.0], [1.0, 1.0, 2.0])
