"""Figures 1-3 of the paper as wave diagrams, and the figures of the speed sweep.

A wave diagram has time on the horizontal axis and the level ``l`` on the vertical
axis, for one run of :func:`~cognitive_action.diffusion.waves.simulate_waves`:

* top: forward activity ``x_{t,l}`` (one unit, normalized per level);
* middle: backward activity ``δ_{t,l}`` (one unit, normalized per level);
* bottom: ``log10`` of the relative error of ``g_{t,l}`` (eq. 3) against the exact
  gradient of frame ``t - l + 1``.

The level ``l_s = (L+1)/2`` is marked, as are the paths of one frame ``k``: its input
reaches level ``l`` at tick ``k + l`` (forward wave), its supervision (entering with the
paper's alignment at tick ``k``) reaches level ``l`` at tick ``k + L - l``; the two meet
between levels ``l_s - 1`` and ``l_s``, the synapse ``W_{l_s - 1}`` whose estimate is
``g_{·,l_s}``.

Matplotlib is imported lazily (the rest of the package works without it) and used
through its object API with the Agg canvas, so no global backend is changed.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> p = paper_figure("constant", d / "fig1.png")
>>> p.stat().st_size > 10000
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import per_tick_errors
from cognitive_action.diffusion.nets import random_weights, teacher_targets
from cognitive_action.diffusion.waves import WaveResult, fill_ticks, simulate_waves
from cognitive_action.errors import DeclarationError

__all__ = ["wave_diagram", "paper_figure", "sweep_figure", "ls_figure", "make_figures",
           "SCENARIOS"]

#: Scenarios of Figures 1-3: (title, ticks, input description).
SCENARIOS: dict[str, dict[str, Any]] = {
    "constant": {"title": "Figure 1: constant input and supervision", "ticks": 40},
    "slow": {"title": "Figure 2: slowly varying input (f = 0.004 cycles/tick)", "ticks": 300,
             "frequency": 0.004},
    "fast": {"title": "Figure 3: rapidly varying input (f = 0.15 cycles/tick)", "ticks": 60,
             "frequency": 0.15},
}


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _normalize_rows(a: np.ndarray) -> np.ndarray:
    scale = np.max(np.abs(a), axis=1, keepdims=True)
    return np.divide(a, scale, out=np.zeros_like(a), where=scale > 0)


def wave_diagram(result: WaveResult, *, title: str = "", run: int = 0, unit: int = 0,
                 frame: int | None = None, path: str | Path | None = None):
    """Draw the forward, backward and error diagrams of one run.

    Parameters
    ----------
    result
        A simulation.
    title
        Figure title.
    run, unit
        Which run of the batch and which unit of each level to show.
    frame
        A frame ``k`` whose forward and backward paths are drawn (default: the first
        frame after the pipeline fills).
    path
        Where to save (format from the suffix, e.g. ``.png`` or ``.svg``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    L, T = result.depth, result.ticks
    ls = (L + 1) / 2
    fwd = np.stack([x[:, run, min(unit, x.shape[2] - 1)] for x in result.x])   # (L+1, T)
    bwd = np.stack([d[:, run, min(unit, d.shape[2] - 1)] for d in result.delta[1:]])
    err = per_tick_errors(result)[:, :, run]                                    # (L, T)
    with np.errstate(divide="ignore"):
        lerr = np.log10(np.maximum(err, 1e-16))
    t_fill = fill_ticks(L, result.derivative, result.delay)
    k = t_fill if frame is None else frame

    fig = _new_figure(9.0, 10.0)
    axes = fig.subplots(3, 1, sharex=True)
    ext_f = (-0.5, T - 0.5, -0.5, L + 0.5)
    ext_b = (-0.5, T - 0.5, 0.5, L + 0.5)
    im0 = axes[0].imshow(_normalize_rows(fwd), origin="lower", aspect="auto", extent=ext_f,
                         cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(im0, ax=axes[0], label=rf"$x_{{t,l}}$ (unit {unit}) / max$_t|x|$")
    axes[0].set_title(r"forward wave $x_{t+1,l+1}=\sigma(W_l x_{t,l})$ (eq. 1)")
    im1 = axes[1].imshow(_normalize_rows(bwd), origin="lower", aspect="auto", extent=ext_b,
                         cmap="PuOr_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(im1, ax=axes[1], label=rf"$\delta_{{t,l}}$ (unit {unit}) / max$_t|\delta|$")
    axes[1].set_title(r"backward wave $\delta_{t,l}=\sigma'\,W_l^T\delta_{t-1,l+1}$ "
                      "(system after eq. 2)")
    im2 = axes[2].imshow(lerr, origin="lower", aspect="auto", extent=ext_b, cmap="viridis",
                         vmin=-6, vmax=0.5, interpolation="nearest")
    fig.colorbar(im2, ax=axes[2], extend="min",
                 label=r"log$_{10}$ rel. error of $g_{t,l}$ (exact: dark)")
    axes[2].set_title(r"$g_{t,l}=\delta_{t,l}x_{t,l-1}^T$ (eq. 3) vs exact gradient of "
                      r"frame $t-l+1$")
    levels = np.arange(L + 1)
    for ax in axes:
        ax.axhline(ls, color="k", ls="--", lw=1.2)
        ax.text(T - 1, ls + 0.1, rf"$l_s=(L+1)/2={ls:g}$", ha="right", va="bottom",
                fontsize=9, bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.axvline(t_fill - 0.5, color="0.3", ls=":", lw=1)
        ax.set_ylabel("level $l$")
        if k + L < T:
            ax.plot(k + levels, levels, color="tab:green", lw=2,
                    label=f"input of frame {k} (forward)")
            ax.plot(k + result.delay + L - levels, levels, color="tab:orange", lw=2,
                    label=f"supervision of frame {k} (backward)")
    axes[0].legend(loc="lower right", fontsize=8, framealpha=0.8)
    axes[2].text(t_fill, 0.6, f" pipeline filled (t={t_fill})", fontsize=8, color="w")
    axes[2].set_xlabel("tick $t$")
    fig.suptitle(title or f"waves on a {L + 1}-level network", fontsize=12)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def _scenario_run(kind: str, *, depth: int = 9, width: int = 3, seed: int = 3,
                  activation: str = "tanh") -> WaveResult:
    if kind not in SCENARIOS:
        raise DeclarationError(f"unknown scenario {kind!r}",
                               fix=f"use one of {', '.join(SCENARIOS)}")
    sc = SCENARIOS[kind]
    widths = [width] * (depth + 1)
    W = random_weights(widths, gain=1.5, rng=seed)
    teacher = random_weights(widths, gain=1.5, rng=seed + 1)
    T = sc["ticks"]
    if kind == "constant":
        u = signals.constant(T, np.random.default_rng(seed).normal(size=width))
    else:
        u = signals.sinusoid(T, width, sc["frequency"], rng=seed)
    y = teacher_targets(teacher, u, activation=activation)
    return simulate_waves(W, u, y, activation=activation)


def paper_figure(kind: str, path: str | Path, **kwargs: Any) -> Path:
    """Reproduce Figure 1 (``"constant"``), 2 (``"slow"``) or 3 (``"fast"``).

    A ten-level network (``L = 9``, so ``l_s = 5``), tanh, width 3, random student and
    teacher; saved to ``path``.
    """
    res = _scenario_run(kind, **kwargs)
    wave_diagram(res, title=SCENARIOS[kind]["title"], path=path)
    return Path(path)


def sweep_figure(sweep, path: str | Path, fit=None) -> Path:
    """Per-layer error against speed, one panel per depth, plus the collapse on f·(L-1).

    Parameters
    ----------
    sweep
        A :class:`~cognitive_action.diffusion.sweep.SpeedSweep`.
    path
        Output file.
    fit
        Optional :class:`~cognitive_action.diffusion.sweep.ScalingFit` to draw.
    """
    import matplotlib as mpl

    n = len(sweep.depths)
    fig = _new_figure(4.0 * (n + 1), 4.2)
    axes = fig.subplots(1, n + 1)
    xlabel = "f (cycles/tick)" if sweep.kind == "sinusoid" else "1/hold (1/ticks)"
    for ax, L in zip(axes, sweep.depths, strict=False):
        le = sweep.layer_errors(L)
        cmap = mpl.colormaps["viridis"]
        for l in range(1, L + 1):
            lw = 2.5 if 2 * l == L + 1 else 1.2
            ax.loglog(sweep.speeds, np.maximum(le[l - 1], 1e-16), color=cmap((l - 1) / L),
                      lw=lw, label=f"l={l}" + (" (l_s)" if 2 * l == L + 1 else ""))
        ax.set_title(f"L = {L}")
        ax.set_xlabel(xlabel)
        ax.set_ylim(1e-4, 5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    axes[0].set_ylabel("relative error of $g_{t,l}$")
    ax = axes[-1]
    mean = sweep.layer_mean()
    for i, L in enumerate(sweep.depths):
        ax.loglog(sweep.speeds * (L - 1), mean[i], "o-", ms=3, label=f"L={L}")
    if fit is not None:
        x = np.geomspace(np.min(sweep.speeds) * (min(sweep.depths) - 1), 0.1, 20)
        c = fit.collapse
        ax.loglog(x, c.predict(x), "k--",
                  label=f"fit: {c.constant:.3g}·(f(L-1))^{c.order:.2f}")
    ax.set_xlabel("f·(L-1)" if sweep.kind == "sinusoid" else "(L-1)/hold")
    ax.set_ylabel("layer-mean relative error")
    ax.set_title("collapse on speed × (L-1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"gradient error against input speed ({sweep.kind}, supervision="
                 f"{sweep.supervision}, derivative={sweep.derivative})")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def ls_figure(path: str | Path, *, depth: int = 9, ticks: int = 300, seed: int = 0) -> Path:
    """Per-layer error under input that changes every tick, for four model variants.

    Shows that ``l_s`` is exact only for identity activations with a loss whose gradient
    does not depend on the output (here ``V = -yᵀx``), under the paper's supervision.
    """
    from cognitive_action.diffusion.compare import gradient_errors

    widths = [3] + [4] * (depth - 1) + [2]
    W = random_weights(widths, rng=seed)
    u = signals.frames(ticks, widths[0], 1, rng=seed + 1)
    y = signals.frames(ticks, widths[-1], 1, rng=seed + 2)
    fig = _new_figure(7.5, 4.5)
    ax = fig.subplots()
    layers = np.arange(1, depth + 1)
    for act, loss, mk in (("identity", "linear", "o"), ("identity", "squared", "s"),
                          ("tanh", "linear", "^"), ("tanh", "squared", "v")):
        rel = gradient_errors(simulate_waves(W, u, y, activation=act, loss=loss)
                              ).metrics.relative_error[:, 0]
        ax.semilogy(layers, np.maximum(rel, 1e-17), mk + "-", label=f"σ={act}, V={loss}")
    ax.axvline((depth + 1) / 2, color="k", ls="--", lw=1)
    ax.text((depth + 1) / 2 + 0.1, 1e-15, r"$l_s$", fontsize=11)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel("relative error of $g_{t,l}$ (floored at 1e-17)")
    ax.set_title(f"Input and supervision change every tick (L={depth}, paper alignment)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def make_figures(directory: str | Path, *, sweep=None, fit=None,
                 formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Write Figures 1-3, the l_s figure and (if given) the sweep figure to ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        for i, kind in enumerate(("constant", "slow", "fast"), start=1):
            out.append(paper_figure(kind, d / f"waves_fig{i}_{kind}.{fmt}"))
        out.append(ls_figure(d / f"waves_ls.{fmt}"))
        if sweep is not None:
            out.append(sweep_figure(sweep, d / f"waves_sweep_{sweep.kind}.{fmt}", fit))
    return out
