"""Backprop diffusion (Section 2 of Betti & Gori): forward and backward waves.

Run ``python examples/waves_demo.py`` for a quick tour (a few seconds), or
``python examples/waves_demo.py --docs`` to regenerate the figures in ``docs/figures/`` and
print the tables of ``docs/waves.md`` (about a minute).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import gradient_errors
from cognitive_action.diffusion.nets import random_weights, teacher_targets
from cognitive_action.diffusion.online import online_learning
from cognitive_action.diffusion.sweep import fit_scaling, format_table, speed_sweep
from cognitive_action.diffusion.waves import fill_ticks, simulate_waves


def tour(out: Path) -> None:
    L = 9                                           # a ten-level network, l_s = 5
    widths = [3] * (L + 1)
    W, teacher = random_weights(widths, rng=0), random_weights(widths, rng=1)
    # constant input: exact once the pipeline has filled
    u = signals.constant(40, np.ones(3))
    res = simulate_waves(W, u, teacher_targets(teacher, u))
    t_fill = fill_ticks(L)
    rel = gradient_errors(res, start=t_fill).metrics.relative_error[:, 0]
    print(f"constant input, L={L}: pipeline filled at tick {t_fill}; "
          f"max relative error over layers {rel.max():.1e}")
    # sinusoids of several speeds in one batch
    freqs = [0.001, 0.003, 0.01, 0.03]
    u = signals.sinusoid(3000, 3, freqs, rng=2)
    rel = gradient_errors(simulate_waves(W, u, teacher_targets(teacher, u))
                          ).metrics.relative_error
    print("relative error per layer (rows) and frequency (columns):")
    for l in range(L):
        print(f"  l={l + 1}: " + "  ".join(f"{v:7.3f}" for v in rel[l]))
    try:
        from cognitive_action.diffusion.figures import make_figures
    except ImportError:  # pragma: no cover
        return
    for p in make_figures(out):
        print("wrote", p)


def docs(out: Path) -> None:
    from cognitive_action.diffusion.figures import ls_figure, make_figures, sweep_figure

    t0 = time.perf_counter()
    freqs = np.geomspace(5e-4, 0.15, 17)
    for sup in ("paper", "output"):
        sw = speed_sweep([3, 5, 7, 9], freqs, seeds=4, supervision=sup)
        fit = fit_scaling(sw)
        fit_max = fit_scaling(sw, statistic="max")
        print(f"\n### sinusoid sweep, supervision={sup}\n")
        print(format_table(sw, every=2))
        c = fit.collapse
        print(f"\ncollapse (layer mean) on f(L-1): order {c.order:.3f} "
              f"[{c.ci[0]:.3f}, {c.ci[1]:.3f}], C = {c.constant:.3g}, R² = {c.r_squared:.3f},"
              f" n = {c.n}")
        print(f"free fit (layer mean): p = {fit.speed_order:.3f} [{fit.speed_ci[0]:.3f}, "
              f"{fit.speed_ci[1]:.3f}], q = {fit.depth_order:.3f} [{fit.depth_ci[0]:.3f}, "
              f"{fit.depth_ci[1]:.3f}], C = {fit.constant:.3g}, R² = {fit.r_squared:.3f}")
        print(f"free fit (worst layer): p = {fit_max.speed_order:.3f} "
              f"[{fit_max.speed_ci[0]:.3f}, {fit_max.speed_ci[1]:.3f}], q = "
              f"{fit_max.depth_order:.3f} [{fit_max.depth_ci[0]:.3f}, {fit_max.depth_ci[1]:.3f}]")
        for L, f in fit.per_depth.items():
            print(f"  L={L}: order in f {f.order:.3f} [{f.ci[0]:.3f}, {f.ci[1]:.3f}]")
        sweep_figure(sw, out / f"waves_sweep_sinusoid_{sup}.png", fit)
    sw_state = speed_sweep([3, 5, 7, 9], freqs[:4], seeds=4, derivative="state",
                           supervision="output")
    sw_inc = speed_sweep([3, 5, 7, 9], freqs[:4], seeds=4, supervision="output")
    print("\n### derivative convention, supervision=output, f = "
          + ", ".join(f"{f:.3g}" for f in freqs[:4]))
    for L in (3, 5, 7, 9):
        print(f"L={L}: incoming mean {np.round(sw_inc.layer_errors(L).mean(0), 4)}, "
              f"state mean {np.round(sw_state.layer_errors(L).mean(0), 4)}")
    holds = np.array([2, 4, 8, 16, 32, 64, 128])
    fr = speed_sweep([3, 5, 9], holds, kind="frames", seeds=2, ticks=4000)
    print("\n### frames held k ticks (supervision=paper)\n")
    print(format_table(fr))
    for L in (3, 5, 9):
        print(f"L={L} exact fraction layer 1..L at k=32:",
              np.round(np.mean(fr.exact_fraction[fr.depths.index(L), :, :L, 4], axis=0), 3))
    sweep_figure(fr, out / "waves_sweep_frames.png")
    print("\n### online learning (widths 3-6-6-6-1, lr 0.02, 30000 ticks, 4 streams)\n")
    widths = [3, 6, 6, 6, 1]
    teacher = random_weights(widths, gain=1.5, rng=0)
    student = random_weights(widths, gain=1.0, rng=1)
    print("| ℓ (ticks) | backprop | diffusion paper | diffusion output | ratio output/bp |")
    print("|---|---|---|---|---|")
    curves = {}
    for ell in (100.0, 20.0, 3.0):
        u = signals.smooth_random(30000, 3, ell, rng=2, batch=4)
        test = signals.smooth_random(2000, 3, ell, rng=3)[:, 0]
        kw = dict(test_inputs=test, lr=0.02, eval_every=500)
        cs = [online_learning(teacher, student, u, method="backprop", **kw),
              online_learning(teacher, student, u, supervision="paper", **kw),
              online_learning(teacher, student, u, supervision="output", **kw)]
        curves[ell] = cs
        fin = [float(np.mean(c.test_loss[-10:])) for c in cs]   # last 5000 ticks
        print(f"| {ell:g} | {fin[0]:.4f} | {fin[1]:.4f} | {fin[2]:.4f} | "
              f"{fin[2] / fin[0]:.2f} |")
    _online_figure(curves, out / "waves_online.png")
    make_figures(out)
    ls_figure(out / "waves_ls.png")
    print(f"\n(done in {time.perf_counter() - t0:.0f} s)")


def _online_figure(curves, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(curves), sharey=True)
    for ax, (ell, cs) in zip(axes, curves.items(), strict=True):
        for c, name, col in zip(cs, ("exact per-frame backprop", "diffusion, paper supervision",
                                     "diffusion, output supervision"),
                                ("k", "tab:red", "tab:blue"), strict=True):
            ax.semilogy(c.ticks, c.test_loss.mean(axis=1), color=col, label=name)
        ax.set_title(f"stream correlation ℓ = {ell:g} ticks")
        ax.set_xlabel("tick")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test loss (mean of 4 streams)")
    axes[0].legend(fontsize=8)
    fig.suptitle("online teacher-student learning, L = 4 (widths 3-6-6-6-1), η = 0.02")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", action="store_true", help="regenerate docs/figures and tables")
    ap.add_argument("--out", type=Path, default=None, help="output folder for figures")
    args = ap.parse_args()
    if args.docs:
        out = args.out or Path(__file__).resolve().parents[1] / "docs" / "figures"
        out.mkdir(parents=True, exist_ok=True)
        docs(out)
    else:
        tour(args.out or Path(tempfile.mkdtemp(prefix="waves_demo_")))


if __name__ == "__main__":
    main()
