"""Wave estimates (eq. 3) against the exact per-frame gradient, per layer.

The estimate ``g_{t,l}`` is compared with the gradient of frame ``k = t - l + 1``, the
frame its presynaptic signal ``x_{t,l-1}`` carries (see
:mod:`cognitive_action.diffusion.reference`), using the verifier's metrics
(:mod:`cognitive_action.verify.metrics`).

Examples
--------
>>> import numpy as np
>>> from cognitive_action.diffusion.waves import simulate_waves, fill_ticks
>>> rng = np.random.default_rng(0)
>>> W = [rng.normal(size=(2, 2)), rng.normal(size=(1, 2))]
>>> res = simulate_waves(W, np.ones((10, 2)), np.zeros((10, 1)))
>>> errs = gradient_errors(res)                    # from the fill tick on
>>> errs.metrics.relative_error.shape              # (layer, run)
(2, 1)
>>> bool(np.all(errs.metrics.relative_error < 1e-12))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cognitive_action.diffusion.reference import BackpropFactors, backprop_factors
from cognitive_action.diffusion.waves import WaveResult, fill_ticks
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.metrics import LayerMetrics, layer_metrics, relative_error

__all__ = ["LayerErrors", "gradient_errors", "reference_of", "per_tick_errors",
           "aligned_rows"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class LayerErrors:
    """Per-layer metrics of a wave run against the exact per-frame gradient.

    Attributes
    ----------
    metrics
        :class:`~cognitive_action.verify.metrics.LayerMetrics` with arrays of shape
        ``(L, B)`` (layer ``l`` at index ``l - 1``, run), aggregated over ticks
        ``start .. T-1``.
    start
        First tick compared.
    """

    metrics: LayerMetrics
    start: int


def reference_of(result: WaveResult) -> BackpropFactors:
    """Exact per-frame backprop factors for the frames and supervision of ``result``."""
    return backprop_factors(result.weights, result.inputs, result.targets,
                            activation=result.activation, loss=result.loss)


def _aligned(result: WaveResult, ref: BackpropFactors, layer: int, start: int
             ) -> tuple[Array, Array]:
    T = result.ticks
    est = result.estimate(layer)[start:]
    k0 = start - layer + 1                              # reference frame of tick `start`
    if k0 < 0:
        raise DeclarationError(
            f"tick {start} at layer {layer} carries no input frame yet",
            fix=f"compare from tick >= {layer - 1}")
    return est, ref.gradient(layer)[k0:T - layer + 1]


def gradient_errors(result: WaveResult, *, start: int | None = None,
                    reference: BackpropFactors | None = None) -> LayerErrors:
    """Cosine, angle, relative error and sign agreement per layer and run.

    Parameters
    ----------
    result
        A run of :func:`~cognitive_action.diffusion.waves.simulate_waves`.
    start
        First tick compared; defaults to
        :func:`~cognitive_action.diffusion.waves.fill_ticks`, when the pipeline has
        filled.
    reference
        Precomputed :func:`reference_of` (else computed).

    Returns
    -------
    LayerErrors
        Metrics aggregated over ticks and matrix entries (the relative error is
        ``sqrt(Σ_t‖g_t - g*_t‖² / Σ_t‖g*_t‖²)``).
    """
    L = result.depth
    if start is None:
        start = fill_ticks(L, result.derivative, result.delay)
    if start >= result.ticks:
        raise DeclarationError(f"start tick {start} is past the end of the run "
                               f"({result.ticks} ticks)", fix="simulate more ticks")
    ref = reference_of(result) if reference is None else reference
    per_layer = [layer_metrics(*aligned_rows(result, ref, l, start), axis=1)
                 for l in range(1, L + 1)]
    return LayerErrors(
        metrics=LayerMetrics(*(np.stack([getattr(m, f) for m in per_layer])
                               for f in ("cosine", "angle", "relative_error",
                                         "sign_agreement"))),
        start=start)


def aligned_rows(result: WaveResult, reference: BackpropFactors, layer: int, start: int
                 ) -> tuple[Array, Array]:
    """Estimates and aligned references of one layer from tick ``start``, one row per run.

    Returns
    -------
    estimate, reference
        Shape ``(B, (T - start) n_l n_{l-1})``, contiguous, so metrics reduce along
        ``axis=1`` (the fast axis).
    """
    est, g = _aligned(result, reference, layer, start)
    B = est.shape[1]
    return tuple(np.ascontiguousarray(np.moveaxis(v, 1, 0)).reshape(B, -1)  # type: ignore
                 for v in (est, g))


def per_tick_errors(result: WaveResult, *, reference: BackpropFactors | None = None) -> Array:
    """Relative error of ``g_{t,l}`` at every tick, shape ``(L, T, B)``.

    Ticks that carry no input frame yet (``t < l - 1``) are NaN.
    """
    ref = reference_of(result) if reference is None else reference
    L, T, B = result.depth, result.ticks, result.inputs.shape[1]
    out = np.full((L, T, B), np.nan)
    for l in range(1, L + 1):
        est, g = _aligned(result, ref, l, l - 1)
        out[l - 1, l - 1:] = relative_error(est, g, axis=(2, 3))
    return out
