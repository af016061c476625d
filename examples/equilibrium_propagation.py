"""Equilibrium propagation (Scellier & Bengio 2017) declared, derived, compiled, verified.

Run it as is (a few seconds): it declares a Hopfield-like energy with one weight per
undirected pair, prints the derived phase dynamics, relaxes the free and the nudged
phases, compares the EP update with recurrent backprop at the free fixed point and
prints the verifier's report.

    python examples/equilibrium_propagation.py                  # the walk-through
    python examples/equilibrium_propagation.py --figure ep.png  # also the error-vs-beta plot
    python examples/equilibrium_propagation.py --campaign       # orders over sizes and seeds
"""

from __future__ import annotations

import sys

import numpy as np

import cognitive_action as ca
from cognitive_action.compile.energy import compile_energy, equilibrium_update
from cognitive_action.verify import verify
from cognitive_action.verify.equilibrium import energy_state, implicit_gradient
from cognitive_action.verify.metrics import relative_error


def walk_through() -> ca.EnergyModel:
    model = ca.hopfield([2, 4, 1], activation="logistic")  # S&B eq. (1), W = W^T by construction
    print(model)
    system = ca.derive_energy(model)  # x_dot = -d(E + beta C)/dx and dE/dW, by SymPy
    print("first phase equation:", system.unknowns[0], "=", system.rates[0])
    ce = compile_energy(model)  # CasADi: relaxation (CVODES) + Newton, typed errors
    st = energy_state(ce, seed=0)  # random weights N(0, 1), inputs N(0, 1), targets U(0, 1)
    print("free phase:", st.free.describe())
    g = -implicit_gradient(model, st.weights, st.values, st.free.x).grad  # -dJ/dW
    for nudging in ("one_sided", "symmetric"):
        for beta in (0.1, 0.01, 0.001):
            up = equilibrium_update(ce, st.weights, st.values, beta=beta, nudging=nudging,
                                    free=st.free)
            err = float(relative_error(up.delta_w, g))
            print(f"  {nudging:9s} beta = {beta:<6g} |EP - (-dJ/dW)| / |dJ/dW| = {err:.3e}")
    return model


def figure(model: ca.EnergyModel, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = verify(model, seed=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    for nudging, marker in (("one_sided", "o"), ("symmetric", "s")):
        c = report[f"ep.{nudging}.order"]
        b, e = np.asarray(c.details["parameters"]), np.asarray(c.details["errors"])
        lo, hi = c.details["ci"]
        ax.loglog(b, e, marker, label=f"{nudging.replace('_', '-')}: order {c.value:.3f} "
                  f"[{lo:.3f}, {hi:.3f}]")
        i, j = c.details["window"]
        fit = e[j - 1] * (b / b[j - 1]) ** c.value
        ax.loglog(b, fit, "-", lw=0.8, color=ax.lines[-1].get_color())
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel=r"$\beta$", ylabel="relative error vs recurrent backprop",
           title="EP update on hopfield([2, 4, 1]), seed 0")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def campaign(seeds: int = 10) -> None:
    """Fitted orders and metrics at beta = 0.01 over sizes and seeds."""
    print("| net | activation | seeds passed | one-sided order (min, max) | symmetric order "
          "(min, max) | widest 95 % CI, symmetric | rel. RMSE at beta = 0.01, one-sided / "
          "symmetric (max) | sign errors (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for sizes, act in (([2, 3, 1], "logistic"), ([4, 8, 3], "tanh"),
                       ([3, 6, 6, 2], "logistic"), ([5, 10, 10, 10, 3], "tanh")):
        one, sym, width, r1, r2, sign, ok = [], [], [], [], [], [], 0
        for seed in range(seeds):
            rep = verify(ca.hopfield(sizes, activation=act), seed=seed)
            ok += rep.passed
            one.append(rep["ep.one_sided.order"].value)
            c = rep["ep.symmetric.order"]
            sym.append(c.value)
            width.append(c.details["ci"][1] - c.details["ci"][0])
            r1.append(rep["ep.one_sided.metrics"].value)
            r2.append(rep["ep.symmetric.metrics"].value)
            sign.append(max(g["sign_errors"] for k in ("one_sided", "symmetric")
                            for g in rep[f"ep.{k}.metrics"].details["groups"]))
        print(f"| {sizes} | {act} | {ok}/{seeds} | {min(one):.3f}, {max(one):.3f} | "
              f"{min(sym):.3f}, {max(sym):.3f} | {max(width):.3f} | "
              f"{max(r1):.2e} / {max(r2):.2e} | {max(sign):.2f} |")


if __name__ == "__main__":
    model = walk_through()
    print(verify(model, seed=0))
    if "--figure" in sys.argv:
        figure(model, sys.argv[sys.argv.index("--figure") + 1])
    if "--campaign" in sys.argv:
        campaign()
