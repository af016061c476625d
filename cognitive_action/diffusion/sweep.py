"""The claim of Section 2 quantified: per-layer gradient error against input speed.

"Synchronization approximatively holds whenever ``u_t`` is not too fast with respect to
``L``": :func:`speed_sweep` measures, for several depths, the relative error of the wave
estimate (3) at every layer against the exact per-frame gradient
(:mod:`cognitive_action.diffusion.compare`) over a range of input speeds, on a
teacher-student stream (``y_k`` is a random teacher network's output for ``u_k``, so the
supervision moves as fast as the input). :func:`fit_scaling` turns it into numbers: the
collapse ``error ≈ C (f (L-1))^p`` the paper suggests, and the free fit
``error ≈ C f^p (L-1)^q`` that tests it.

Speeds: ``kind="sinusoid"`` uses frequencies ``f`` in cycles per tick;
``kind="frames"`` uses piecewise-constant random frames held ``k`` ticks, speed ``1/k``.

Examples
--------
>>> sw = speed_sweep([2, 3], [0.002, 0.004, 0.008], ticks=600, seeds=1)
>>> sw.errors.shape                     # (depth, seed, layer, speed)
(2, 1, 3, 3)
>>> bool(np.all(np.diff(sw.layer_mean(), axis=1) > 0))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import aligned_rows, per_tick_errors, reference_of
from cognitive_action.diffusion.nets import random_weights, teacher_targets
from cognitive_action.diffusion.waves import fill_ticks, simulate_waves
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.metrics import (
    OrderFit,
    convergence_order,
    cosine_similarity,
    relative_error,
)

__all__ = ["SpeedSweep", "speed_sweep", "ScalingFit", "fit_scaling", "format_table"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class SpeedSweep:
    """Per-layer errors of the wave estimate over depths, seeds and speeds.

    Attributes
    ----------
    depths
        ``L`` values.
    speeds
        Frequencies (cycles/tick) for ``kind="sinusoid"``, ``1/hold`` for ``"frames"``.
    kind
        ``"sinusoid"`` or ``"frames"``.
    errors
        Relative error, shape ``(depth, seed, layer, speed)``; layer ``l`` at index
        ``l - 1``, NaN above the depth.
    cosines
        Cosine similarity, same shape.
    exact_fraction
        For frames: fraction of ticks at which the estimate is exact (relative error
        below 1e-12), same shape; NaN for sinusoids.
    supervision, derivative, activation
        The conventions used.
    """

    depths: tuple[int, ...]
    speeds: Array
    kind: str
    errors: Array
    cosines: Array
    exact_fraction: Array
    supervision: str | int
    derivative: str
    activation: str

    def layer_errors(self, depth: int) -> Array:
        """Seed-averaged relative error of every layer, shape ``(L, speed)``."""
        i = self.depths.index(depth)
        return np.mean(self.errors[i, :, :depth], axis=0)

    def layer_mean(self) -> Array:
        """Error averaged over layers and seeds, shape ``(depth, speed)``."""
        return np.nanmean(np.nanmean(self.errors, axis=2), axis=1)

    def layer_max(self) -> Array:
        """Worst layer (after averaging seeds), shape ``(depth, speed)``."""
        return np.nanmax(np.mean(self.errors, axis=1), axis=1)


def speed_sweep(depths: Sequence[int], speeds: ArrayLike, *, kind: str = "sinusoid",
                width: int = 4, ticks: int = 2500, seeds: int = 3,
                activation: str = "tanh", derivative: str = "incoming",
                supervision: str | int = "paper", gain: float = 1.3,
                rng: int = 0) -> SpeedSweep:
    """Measure per-layer gradient errors against input speed for several depths.

    Every depth and seed draws a student network (whose gradient is estimated) and a
    teacher network (whose outputs are the supervision), both of width ``width`` at every
    level; all speeds of one depth and seed run as one batch.

    Parameters
    ----------
    depths
        Values of ``L``.
    speeds
        Frequencies in cycles per tick (``kind="sinusoid"``) or frame holds in ticks
        (``kind="frames"``; stored as speeds ``1/hold``).
    kind
        ``"sinusoid"`` or ``"frames"``.
    width, ticks, seeds
        Layer width, ticks per run, independent networks per depth.
    activation, derivative, supervision
        As in :func:`~cognitive_action.diffusion.waves.simulate_waves`.
    gain
        Weight scale of :func:`~cognitive_action.diffusion.nets.random_weights`.
    rng
        Base seed.

    Returns
    -------
    SpeedSweep
    """
    if kind not in ("sinusoid", "frames"):
        raise DeclarationError(f"unknown kind {kind!r}", fix="use 'sinusoid' or 'frames'")
    raw = np.asarray(speeds, dtype=float).ravel()
    depths = tuple(int(L) for L in depths)
    Lmax, S = max(depths), raw.size
    shape = (len(depths), seeds, Lmax, S)
    errors, cosines = np.full(shape, np.nan), np.full(shape, np.nan)
    exact = np.full(shape, np.nan)
    for i, L in enumerate(depths):
        widths = [width] * (L + 1)
        for s in range(seeds):
            seed = rng + 1000 * L + s
            W = random_weights(widths, gain=gain, rng=seed)
            teacher = random_weights(widths, gain=gain, rng=seed + 500)
            if kind == "sinusoid":
                u = signals.sinusoid(ticks, width, raw, rng=seed)
            else:
                u = signals.frames(ticks, width, raw.astype(int), rng=seed)
            y = teacher_targets(teacher, u, activation=activation)
            res = simulate_waves(W, u, y, activation=activation, derivative=derivative,
                                 supervision=supervision)
            ref = reference_of(res)
            t0 = fill_ticks(L, derivative, res.delay)
            for l in range(1, L + 1):
                est, g = aligned_rows(res, ref, l, t0)
                errors[i, s, l - 1] = relative_error(est, g, axis=1)
                cosines[i, s, l - 1] = cosine_similarity(est, g, axis=1)
            if kind == "frames":
                per_tick = per_tick_errors(res, reference=ref)[:, t0:]
                exact[i, s, :L] = np.mean(per_tick < 1e-12, axis=1)
    out_speeds = raw if kind == "sinusoid" else 1.0 / raw
    return SpeedSweep(depths=depths, speeds=out_speeds, kind=kind, errors=errors,
                      cosines=cosines, exact_fraction=exact, supervision=supervision,
                      derivative=derivative, activation=activation)


@dataclass(frozen=True)
class ScalingFit:
    """Power laws fitted to the layer-mean error of a sweep (small-error points only).

    Attributes
    ----------
    collapse
        Fit of ``error ≈ C (f (L-1))^p`` over all depths
        (:func:`~cognitive_action.verify.metrics.convergence_order`).
    speed_order, speed_ci
        ``p`` in the free fit ``error ≈ C f^p (L-1)^q``, with its confidence interval.
    depth_order, depth_ci
        ``q`` and its confidence interval. The paper's statement, error a function of
        ``f (L-1)``, predicts ``q = p``.
    constant
        ``C`` of the free fit.
    r_squared
        R² of the free fit (in logs).
    per_depth
        ``{L: OrderFit}`` of error against ``f`` for each depth.
    n
        Points used.
    """

    collapse: OrderFit
    speed_order: float
    speed_ci: tuple[float, float]
    depth_order: float
    depth_ci: tuple[float, float]
    constant: float
    r_squared: float
    per_depth: dict[int, OrderFit]
    n: int


def fit_scaling(sweep: SpeedSweep, *, max_error: float = 0.3,
                confidence: float = 0.95, statistic: str = "mean") -> ScalingFit:
    """Fit the error's dependence on speed and depth.

    Parameters
    ----------
    sweep
        Output of :func:`speed_sweep` with at least two depths ``L >= 2``.
    max_error
        Only points whose error is below this are fitted (the small-speed regime, before
        the error saturates at O(1)).
    confidence
        Level of the confidence intervals.
    statistic
        ``"mean"`` (layer mean) or ``"max"`` (worst layer).

    Returns
    -------
    ScalingFit
    """
    err = sweep.layer_mean() if statistic == "mean" else sweep.layer_max()
    fs, ls, es, per_depth = [], [], [], {}
    for i, L in enumerate(sweep.depths):
        if L < 2:
            continue
        sel = (err[i] < max_error) & (err[i] > 0)
        if sel.sum() >= 3:
            per_depth[L] = convergence_order(sweep.speeds[sel], err[i, sel],
                                             confidence=confidence)
        fs += list(sweep.speeds[sel])
        ls += [L - 1] * int(sel.sum())
        es += list(err[i, sel])
    f, lm, e = np.array(fs), np.array(ls, dtype=float), np.array(es)
    if len(set(ls)) < 2 or e.size < 4:
        raise DeclarationError("a scaling fit needs small-error points at two depths or more",
                               fix="sweep slower speeds or raise max_error")
    collapse = convergence_order(f * lm, e, confidence=confidence)
    X = np.column_stack([np.log(f), np.log(lm), np.ones_like(f)])
    y = np.log(e)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = e.size - 3
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(X.T @ X)
    se = np.sqrt(np.diag(cov))
    tq = float(stats.t.ppf(0.5 + confidence / 2.0, dof))
    r2 = 1.0 - float(resid @ resid) / float(np.sum((y - y.mean()) ** 2))
    return ScalingFit(collapse=collapse, speed_order=float(coef[0]),
                      speed_ci=(float(coef[0] - tq * se[0]), float(coef[0] + tq * se[0])),
                      depth_order=float(coef[1]),
                      depth_ci=(float(coef[1] - tq * se[1]), float(coef[1] + tq * se[1])),
                      constant=float(np.exp(coef[2])), r_squared=r2, per_depth=per_depth,
                      n=int(e.size))


def format_table(sweep: SpeedSweep, *, every: int = 1, digits: int = 2) -> str:
    """A Markdown table: one row per depth and speed, errors at layers 1, ``l_s``, ``L``.

    ``l_s = (L+1)/2`` for odd ``L`` (the paper's synchronized layer); for even ``L`` the
    column shows layer ``L/2``.
    """
    speed_name = "f (cycles/tick)" if sweep.kind == "sinusoid" else "hold k (ticks)"
    scaled = "f·(L-1)" if sweep.kind == "sinusoid" else "(L-1)/k"
    head = (f"| L | {speed_name} | {scaled} | layer 1 | layer l_s | layer L | mean | worst |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = [head]
    for L in sweep.depths:
        le = sweep.layer_errors(L)
        ls = (L + 1) // 2
        for j in range(0, sweep.speeds.size, every):
            sp = sweep.speeds[j]
            label = f"{sp:.3g}" if sweep.kind == "sinusoid" else f"{round(1 / sp)}"
            vals = [le[0, j], le[ls - 1, j], le[L - 1, j], le[:, j].mean(), le[:, j].max()]
            cells = " | ".join(f"{v:.{digits}g}" for v in vals)
            rows.append(f"| {L} | {label} | {sp * (L - 1):.3g} | {cells} |")
    return "\n".join(rows)
