"""Per-layer metrics between an estimate and a reference gradient.

These are the numbers that equilibrium-propagation, predictive-coding and
feedback-alignment codebases report, so that results compare across projects
(see ``design.md``, "Verification metrics"): cosine similarity and angle to the
reference, relative error ``‖a - g‖/‖g‖``, sign agreement, and the fitted order of
convergence toward a limit (slope of log error against log parameter).

Every function takes an estimate ``a`` and a reference ``g`` of the same shape and an
optional ``axis``: ``None`` reduces over every entry (a whole weight matrix, or a whole
run of them), an int or a tuple of ints reduces over those axes only and keeps the
others, so one call gives, e.g., a value per layer or per run.

Bad input raises a typed error from :mod:`cognitive_action.errors`:
:class:`~cognitive_action.errors.ShapeError` when shapes differ and
:class:`~cognitive_action.errors.DeclarationError` when an entry is NaN or infinite, or
when a reference (or, for the cosine and angle, an estimate) is a zero vector, for which
the metric is undefined.

Examples
--------
>>> import numpy as np
>>> g = np.array([[1.0, 0.0], [0.0, 2.0]])
>>> a = np.array([[1.0, 0.1], [0.0, 2.0]])
>>> round(float(relative_error(a, g)), 6)
0.044721
>>> float(sign_agreement(a, g))
0.75
>>> float(angle_degrees(g, 3 * g))
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from cognitive_action.errors import DeclarationError, ShapeError

__all__ = [
    "cosine_similarity",
    "angle_degrees",
    "relative_error",
    "sign_agreement",
    "OrderFit",
    "convergence_order",
    "LayerMetrics",
    "layer_metrics",
]

Axis = int | tuple[int, ...] | None


def _pair(a: ArrayLike, g: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert to float arrays, check equal shapes and finiteness."""
    a_arr = np.asarray(a, dtype=float)
    g_arr = np.asarray(g, dtype=float)
    if a_arr.shape != g_arr.shape:
        raise ShapeError(
            f"estimate has shape {a_arr.shape} but reference has shape {g_arr.shape}",
            fix="compare arrays of the same shape (one estimate per reference entry)",
        )
    for name, arr in (("estimate", a_arr), ("reference", g_arr)):
        if not np.all(np.isfinite(arr)):
            raise DeclarationError(
                f"the {name} contains NaN or infinite entries",
                fix="check the computation that produced it (a blow-up or 0/0 upstream)",
            )
    return a_arr, g_arr


def _norm(x: NDArray[np.float64], axis: Axis) -> NDArray[np.float64]:
    return np.sqrt(np.sum(x * x, axis=axis))


def _require_nonzero(norm: NDArray[np.float64], name: str, metric: str) -> None:
    if np.any(norm == 0.0):
        raise DeclarationError(
            f"the {name} is a zero vector, for which the {metric} is undefined",
            fix="exclude entries with a zero reference (e.g. ticks before the pipeline fills)",
        )


def cosine_similarity(a: ArrayLike, g: ArrayLike, *, axis: Axis = None) -> NDArray[np.float64]:
    """Cosine of the angle between estimate and reference, ``<a, g>/(‖a‖ ‖g‖)``.

    Parameters
    ----------
    a, g
        Estimate and reference, same shape.
    axis
        Axes to reduce over; ``None`` reduces over all entries (Frobenius inner product).

    Returns
    -------
    numpy.ndarray
        Values in ``[-1, 1]``; a 0-d array when ``axis`` is ``None``.

    Raises
    ------
    ShapeError
        If the shapes differ.
    DeclarationError
        On NaN/inf entries or when ``a`` or ``g`` is zero along the reduced axes.

    Examples
    --------
    >>> float(cosine_similarity([1.0, 0.0], [1.0, 1.0]))  # doctest: +ELLIPSIS
    0.7071067811865...
    >>> cosine_similarity([[1.0, 2.0], [3.0, 4.0]], [[2.0, 4.0], [-3.0, -4.0]], axis=1)
    array([ 1., -1.])
    """
    a_arr, g_arr = _pair(a, g)
    na, ng = _norm(a_arr, axis), _norm(g_arr, axis)
    _require_nonzero(ng, "reference", "cosine similarity")
    _require_nonzero(na, "estimate", "cosine similarity")
    return np.clip(np.sum(a_arr * g_arr, axis=axis) / (na * ng), -1.0, 1.0)


def angle_degrees(a: ArrayLike, g: ArrayLike, *, axis: Axis = None) -> NDArray[np.float64]:
    """Angle between estimate and reference in degrees, ``arccos`` of the cosine.

    Parameters
    ----------
    a, g
        Estimate and reference, same shape.
    axis
        Axes to reduce over, as in :func:`cosine_similarity`.

    Returns
    -------
    numpy.ndarray
        Angles in ``[0, 180]``, computed as ``2 atan2(‖â - ĝ‖, ‖â + ĝ‖)`` on the unit
        vectors, which is exact for parallel vectors (``arccos`` of a rounded cosine
        is off by about 1e-6 degrees there).

    Examples
    --------
    >>> float(angle_degrees([1.0, 0.0], [0.0, 1.0]))
    90.0
    >>> float(angle_degrees([1.0, 1.0], [-2.0, -2.0]))
    180.0
    """
    a_arr, g_arr = _pair(a, g)
    na = np.sqrt(np.sum(a_arr * a_arr, axis=axis, keepdims=True))
    ng = np.sqrt(np.sum(g_arr * g_arr, axis=axis, keepdims=True))
    _require_nonzero(ng, "reference", "angle")
    _require_nonzero(na, "estimate", "angle")
    ua, ug = a_arr / na, g_arr / ng
    # Kahan's formula: accurate near 0 and 180 degrees, where arccos of the cosine is not.
    return np.degrees(2.0 * np.arctan2(_norm(ua - ug, axis), _norm(ua + ug, axis)))


def relative_error(a: ArrayLike, g: ArrayLike, *, axis: Axis = None) -> NDArray[np.float64]:
    """Relative error ``‖a - g‖ / ‖g‖`` (Euclidean/Frobenius norms over ``axis``).

    Reducing over a time axis too gives the error of a whole run, weighted by the
    size of the reference at each tick: ``sqrt(Σ‖a_t - g_t‖² / Σ‖g_t‖²)``.

    Parameters
    ----------
    a, g
        Estimate and reference, same shape.
    axis
        Axes to reduce over; ``None`` reduces over every entry.

    Returns
    -------
    numpy.ndarray
        Non-negative values; 0 means identical.

    Raises
    ------
    DeclarationError
        On NaN/inf entries or when the reference is zero along the reduced axes.

    Examples
    --------
    >>> float(relative_error([3.0, 4.0], [3.0, 0.0]))
    1.3333333333333333
    >>> relative_error([[1.0, 1.0], [0.0, 2.0]], [[1.0, 1.0], [0.0, 1.0]], axis=1)
    array([0., 1.])
    >>> relative_error([1.0], [0.0])
    Traceback (most recent call last):
    ...
    cognitive_action.errors.DeclarationError: the reference is a zero vector, for which the \
relative error is undefined. Fix: exclude entries with a zero reference (e.g. ticks before the \
pipeline fills)
    """
    a_arr, g_arr = _pair(a, g)
    ng = _norm(g_arr, axis)
    _require_nonzero(ng, "reference", "relative error")
    return _norm(a_arr - g_arr, axis) / ng


def sign_agreement(a: ArrayLike, g: ArrayLike, *, axis: Axis = None) -> NDArray[np.float64]:
    """Fraction of entries whose signs match, ``mean(sign(a) == sign(g))``.

    ``sign(0) = 0``, so an exact zero matches only an exact zero.

    Parameters
    ----------
    a, g
        Estimate and reference, same shape.
    axis
        Axes to average over; ``None`` averages over every entry.

    Returns
    -------
    numpy.ndarray
        Values in ``[0, 1]``.

    Examples
    --------
    >>> float(sign_agreement([1.0, -2.0, 3.0, 0.0], [2.0, 1.0, 1.0, 0.0]))
    0.75
    """
    a_arr, g_arr = _pair(a, g)
    if a_arr.size == 0:
        raise ShapeError("cannot compute a sign agreement of empty arrays",
                         fix="pass at least one entry")
    return np.mean(np.sign(a_arr) == np.sign(g_arr), axis=axis)


@dataclass(frozen=True)
class OrderFit:
    """Least-squares fit ``log(error) = order · log(parameter) + log(constant)``.

    Attributes
    ----------
    order
        Fitted slope (the convergence order when the parameter tends to 0).
    constant
        ``exp(intercept)``: the error predicted at parameter 1.
    stderr
        Standard error of the slope.
    ci
        Confidence interval of the slope (Student t with ``n - 2`` degrees of freedom).
    confidence
        Level of ``ci``.
    r_squared
        Coefficient of determination of the log-log fit.
    n
        Number of points fitted.
    """

    order: float
    constant: float
    stderr: float
    ci: tuple[float, float]
    confidence: float
    r_squared: float
    n: int

    def predict(self, parameter: ArrayLike) -> NDArray[np.float64]:
        """Error predicted by the fit, ``constant · parameter**order``."""
        return self.constant * np.asarray(parameter, dtype=float) ** self.order


def convergence_order(parameters: ArrayLike, errors: ArrayLike, *,
                      confidence: float = 0.95) -> OrderFit:
    """Fit the slope of log error against log parameter, with its confidence interval.

    Parameters
    ----------
    parameters
        Positive values of the parameter (a step, ``1/c``, a frequency ...), 1-d.
    errors
        Positive errors measured at those parameters, same length, at least 3 points.
    confidence
        Level of the returned confidence interval of the slope.

    Returns
    -------
    OrderFit
        Slope, constant, standard error, confidence interval and R².

    Raises
    ------
    ShapeError
        If the lengths differ or fewer than 3 points are given.
    DeclarationError
        If a parameter or an error is not positive and finite.

    Examples
    --------
    >>> h = np.array([0.1, 0.05, 0.025, 0.0125])
    >>> fit = convergence_order(h, 3.0 * h**2)
    >>> round(fit.order, 10), round(fit.constant, 10), fit.stderr < 1e-10
    (2.0, 3.0, True)
    """
    p = np.asarray(parameters, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if p.shape != e.shape:
        raise ShapeError(f"{p.size} parameters but {e.size} errors",
                         fix="pass one error per parameter value")
    if p.size < 3:
        raise ShapeError(f"a fit with a standard error needs at least 3 points, got {p.size}",
                         fix="measure the error at more parameter values")
    for name, arr in (("parameters", p), ("errors", e)):
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
            raise DeclarationError(
                f"all {name} must be positive and finite for a log-log fit",
                fix="drop zero errors (exact results) and non-positive parameters",
            )
    x, y = np.log(p), np.log(e)
    design = np.column_stack([x, np.ones_like(x)])
    coef, _, _, _ = np.linalg.lstsq(design, y, rcond=None)
    slope, intercept = float(coef[0]), float(coef[1])
    resid = y - design @ coef
    dof = p.size - 2
    sxx = float(np.sum((x - x.mean()) ** 2))
    if sxx == 0.0:
        raise DeclarationError("all parameter values are equal",
                               fix="measure at distinct parameter values")
    s2 = float(resid @ resid) / dof if dof > 0 else 0.0
    stderr = float(np.sqrt(s2 / sxx))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * stderr if dof > 0 else np.inf
    syy = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(resid @ resid) / syy if syy > 0 else 1.0
    return OrderFit(order=slope, constant=float(np.exp(intercept)), stderr=stderr,
                    ci=(slope - half, slope + half), confidence=confidence,
                    r_squared=r2, n=int(p.size))


@dataclass(frozen=True)
class LayerMetrics:
    """The four per-layer metrics of one comparison (see module docstring)."""

    cosine: NDArray[np.float64]
    angle: NDArray[np.float64]
    relative_error: NDArray[np.float64]
    sign_agreement: NDArray[np.float64]


def layer_metrics(a: ArrayLike, g: ArrayLike, *, axis: Axis = None) -> LayerMetrics:
    """All four metrics of :func:`cosine_similarity` & co. in one call.

    Examples
    --------
    >>> m = layer_metrics([[1.0, 2.0]], [[1.0, 2.0]])
    >>> round(float(m.cosine), 12), float(m.angle), float(m.relative_error)
    (1.0, 0.0, 0.0)
    >>> float(m.sign_agreement)
    1.0
    """
    return LayerMetrics(cosine=cosine_similarity(a, g, axis=axis),
                        angle=angle_degrees(a, g, axis=axis),
                        relative_error=relative_error(a, g, axis=axis),
                        sign_agreement=sign_agreement(a, g, axis=axis))
