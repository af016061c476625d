"""Compare learning laws on the digits: SGD, the paper's limit law, feedback alignment,
direct feedback alignment and predictive coding, same split, same initial weights.

Every law trains the 64-32-10 tanh net of ``problems/digits.toml`` (squared loss on
one-hot targets, per-sample updates ``w ← w + η γ Ẇ``, ``η = 0.05``, the same sample
order) from the same initial weights (``learn.initial_weights``):

- ``SGD``: the hand-written NumPy baseline (``learn.sgd_baseline``);
- ``limit law``: the backprop limit (eq. 15-17) of the derived law, compiled
  (``learn.train``, mode ``"limit"``);
- ``FA``, ``DFA``: ``verify.laws.feedback_alignment`` / ``direct_feedback_alignment``;
- ``PC (beta=...)``: ``verify.predictive_coding.predictive_coding`` — the value units
  relax to the inference equilibrium of the declared energy at every sample (Newton on
  the compiled ``ẋ = −∂F/∂x``) and the weights take ``−∂F/∂W / β``.

The protocol laws (FA, DFA, PC) run through ``LawEvaluator`` exactly as the verifier
calls them. After every epoch: test accuracy, and per layer the angle between the law's
update and the backprop gradient (a NumPy backprop written here), summed over a fixed
probe batch of 64 test images.

Run: ``python examples/compare_laws.py`` (a quick run: 120 images, 1 epoch) or
``python examples/compare_laws.py --full`` (1437 training images, 10 epochs; figure and
table in ``compare_laws.png`` / ``compare_laws.json``).

The paper's *full* dynamics (finite masses, eq. 8-10 integrated in time) have no
training runner yet (``learn.train`` mode ``"dynamics"``), so only their limit is here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import cognitive_action as ca
from cognitive_action.learn import initial_weights, load_digits_split, sgd_baseline, train
from cognitive_action.verify import metrics
from cognitive_action.verify.laws import (
    LawEvaluator,
    direct_feedback_alignment,
    feedback_alignment,
)
from cognitive_action.verify.predictive_coding import predictive_coding
from cognitive_action.verify.reference import depths


def numpy_backprop_sum(net, w, X, Y):
    """Sum over samples of ``-∂V/∂w`` (``V = ½|x_out − y|²``), ``net.weights`` order,
    written by hand for a layered tanh net (the reference of the angles)."""
    pos = {key: i for i, key in enumerate(net.w)}
    sizes = [len(net.inputs)]
    layers = [list(net.inputs)]
    while sum(sizes) < len(net.order):
        nxt = [j for j in net.computing if set(net.graph.predecessors(j)) <= set(layers[-1])
               and j not in sum(layers, [])]
        layers.append(nxt)
        sizes.append(len(nxt))
    Ws = [np.array([[w[pos[j, k]] for k in lo] for j in hi])
          for lo, hi in zip(layers, layers[1:])]
    g = np.zeros(len(w))
    for e, y in zip(X, Y):
        xs = [e]
        for W in Ws:
            xs.append(np.tanh(W @ xs[-1]))
        d = y - xs[-1]
        for lv in range(len(Ws), 0, -1):
            s = (1 - xs[lv] ** 2) * d
            d = Ws[lv - 1].T @ s
            G = np.outer(s, xs[lv - 1])
            for a, j in enumerate(layers[lv]):
                for b, k in enumerate(layers[lv - 1]):
                    g[pos[j, k]] += G[a, b]
    return g


class ProtocolTrainer:
    """Per-sample SGD with a law of the public protocol (as the verifier calls it)."""

    def __init__(self, problem, law, name):
        self.ev = LawEvaluator(problem)
        self.net, self.law, self.name = problem.network, law, name
        self.order = {j: i for i, j in enumerate(self.net.order)}
        net = self.net
        pos = {key: i for i, key in enumerate(net.w)}
        self.inputs = [self.order[j] for j in net.inputs]
        self.feeds = [(self.order[j], [self.order[k] for k in net.graph.predecessors(j)],
                       [pos[j, k] for k in net.graph.predecessors(j)]) for j in net.computing]
        self.in_names = [str(net.input_signals()[j]) for j in net.inputs]
        self.out_names = [str(net.target_signals()[o]) for o in net.outputs]

    def rates(self, w, e, y):
        net = self.net
        x = np.zeros(len(net.order))
        x[self.inputs] = e
        for j, src, wi in self.feeds:                  # the forward pass
            x[j] = np.tanh(x[src] @ w[wi])
        vals = {"t": 0.0} | dict(zip(self.in_names, e.tolist()))
        vals |= dict(zip(self.out_names, y.tolist()))
        given = self.ev.given(w, x, vals, 1.0, lambda: None)
        return self.ev.output(self.law.law(given), self.name).w_dot

    def run(self, w0, data, test, probe, epochs, lr, seed, layer_of):
        w = w0.copy()
        rng = np.random.default_rng([seed, 0x0DE5])    # learn.train's sample order
        hist = {"test_accuracy": [], "angle": []}
        for epoch in range(epochs + 1):
            if epoch:
                for i in rng.permutation(len(data[0])):
                    w += lr * self.rates(w, data[0][i], data[1][i])
            hist["test_accuracy"].append(accuracy(self.net, w, *test))
            hist["angle"].append(angles(self, w, probe, layer_of))
        return hist


def accuracy(net, w, X, labels):
    pos = {key: i for i, key in enumerate(net.w)}
    order = {j: i for i, j in enumerate(net.order)}
    x = np.zeros((len(X), len(net.order)))
    x[:, [order[j] for j in net.inputs]] = X
    for j in net.computing:
        ks = list(net.graph.predecessors(j))
        x[:, order[j]] = np.tanh(x[:, [order[k] for k in ks]] @ w[[pos[j, k] for k in ks]])
    out = x[:, [order[o] for o in net.outputs]]
    return float(np.mean(np.argmax(out, 1) == labels))


def angles(trainer, w, probe, layer_of):
    X, Y = probe
    law = sum(trainer.rates(w, e, y) for e, y in zip(X, Y))
    ref = numpy_backprop_sum(trainer.net, w, X, Y)
    return [float(metrics.angle_degrees(law[layer_of == k], ref[layer_of == k]))
            for k in sorted(set(layer_of.tolist()))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all images, 10 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--plot", type=Path, default=None,
                        help="only redraw the figure from a compare_laws.json")
    args = parser.parse_args()
    if args.plot is not None:
        data = json.loads(args.plot.read_text())
        plot(data["results"], data["epochs"], args.plot.with_suffix(".png"))
        return
    epochs = args.epochs if args.epochs is not None else (10 if args.full else 1)
    (Xtr, ytr), (Xte, yte) = load_digits_split(0.2, 0, limit=None if args.full else 150)
    net = ca.layered([64, 32, 10])
    problem = net.problem()
    Ytr, Yte = np.eye(10)[ytr], np.eye(10)[yte]
    probe = (Xte[:64], Yte[:64])
    lr, seed = 0.05, args.seed
    w0 = initial_weights(net, seed)
    d = depths(net)
    layer_of = np.array([d[j] for (j, _k) in net.w])
    results = {}
    t0 = time.perf_counter()
    sgd = sgd_baseline(problem, (Xtr, ytr), (Xte, yte), epochs=epochs, learning_rate=lr,
                       seed=seed)
    results["SGD"] = {"test_accuracy": sgd.test_accuracy, "angle": None}
    lim = train(problem, (Xtr, ytr), (Xte, yte), epochs=epochs, learning_rate=lr, seed=seed)
    results["limit law"] = {"test_accuracy": lim.test_accuracy, "angle": None}
    assert np.allclose(sgd.weights, lim.weights, atol=1e-9), "limit law != SGD"
    print(f"SGD and the limit law: same weights after {epochs} epochs (max diff "
          f"{np.max(np.abs(sgd.weights - lim.weights)):.1e})")
    laws = {"FA": feedback_alignment(seed=seed), "DFA": direct_feedback_alignment(seed=seed),
            "PC (beta=1)": predictive_coding(1.0), "PC (beta=0.01)": predictive_coding(0.01)}
    for name, law in laws.items():
        t1 = time.perf_counter()
        tr = ProtocolTrainer(problem, law, name)
        results[name] = tr.run(w0, (Xtr, Ytr), (Xte, yte), probe, epochs, lr, seed,
                               layer_of)
        print(f"{name}: {time.perf_counter() - t1:.1f} s")
    print(f"total {time.perf_counter() - t0:.1f} s, {len(Xtr)} training images, "
          f"{len(Xte)} test images, {epochs} epochs")
    print(f"{'law':16s} " + " ".join(f"ep{e:<5d}" for e in range(epochs + 1))
          + "  angle layer 1, layer 2 (deg) at the end")
    for name, r in results.items():
        acc = " ".join(f"{a:<7.3f}" for a in r["test_accuracy"])
        ang = ("0 (backprop)" if r["angle"] is None else
               ", ".join(f"{a:.1f}" for a in r["angle"][-1]))
        print(f"{name:16s} {acc}  {ang}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_laws.json").write_text(json.dumps(
        {"epochs": epochs, "train": len(Xtr), "test": len(Xte), "lr": lr, "seed": seed,
         "results": results}, indent=1))
    plot(results, epochs, args.out / "compare_laws.png")


def plot(results, epochs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'cognitive_action[plots]')")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ep = np.arange(epochs + 1)
    styles = {"SGD": ("k", "-"), "limit law": ("tab:gray", "--"), "FA": ("tab:blue", "-"),
              "DFA": ("tab:orange", "-"), "PC (beta=1)": ("tab:green", "-"),
              "PC (beta=0.01)": ("tab:red", ":")}
    for name, r in results.items():
        c, ls = styles[name]
        axes[0].plot(ep, r["test_accuracy"], color=c, ls=ls, marker="o", ms=3, label=name)
        if r["angle"] is not None:
            a = np.array(r["angle"])
            for k, ax in enumerate(axes[1:]):
                ax.plot(ep, a[:, k], color=c, ls=ls, marker="o", ms=3, label=name)
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title="digits, 64-32-10 tanh")
    for k, ax in enumerate(axes[1:]):
        ax.axhline(90, color="k", lw=0.5)
        ax.set(xlabel="epoch", ylabel="angle to backprop (deg)",
               title=f"layer {k + 1} ({'hidden' if k == 0 else 'output'}) update")
        ax.set_ylim(bottom=0)
    axes[0].legend()
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].text(0.5, 0.55, "FA, DFA: 0 (the output layer gets the exact error)",
                 transform=axes[2].transAxes, ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
