"""Compare learning laws on the digits: SGD, the paper's law (its backprop limit and its
full dynamics), feedback alignment, direct feedback alignment, predictive coding and
equilibrium propagation, same split, same initial weights, same sample order, 3 seeds.

Every law trains a layered tanh net (squared loss on one-hot targets, per-sample
updates ``w ← w + η γ Ẇ``, ``η = 0.05``) from the same initial weights
(``learn.initial_weights(net, seed)``) in the same sample order (the seeded
permutation of ``learn.train``):

- ``SGD``: the hand-written NumPy baseline (``learn.sgd_baseline``);
- ``limit law``: the backprop limit (eq. 15-17) of the derived law, compiled
  (``learn.train``, mode ``"limit"``);
- ``dynamics``: the paper's full derived dynamics (eq. 8-10, finite masses,
  ``ϖ = exp(θt)``, θ = 50, each sample presented for τ = 1, ``γ = τ/η``,
  ``m_W = γ/θ``, ``m_x = 10⁻³ m_W``; ``learn.train`` mode ``"dynamics"``);
- ``FA``, ``DFA``: ``verify.laws.feedback_alignment`` / ``direct_feedback_alignment``
  (feedback matrices drawn from the run's seed);
- ``PC (beta=...)``: ``verify.predictive_coding.predictive_coding``, the value units at
  the inference equilibrium of the declared energy at every sample;
- ``EP (beta=0.1, sym.)``: equilibrium propagation (``declare.energy.hopfield`` with the
  same layer sizes, tanh, no biases, one symmetric coupling per feedforward weight and
  the same initial values; ``compile.energy.equilibrium_update``, symmetric ±β
  nudging). Only in the ``small`` setting: see below.

Two alignment measurements, per layer, with ``verify.metrics.angle_degrees``:

- **update angle** (after every epoch): the law's update summed over a fixed probe batch
  of test images against the backprop gradient there (a NumPy backprop written here).
  For EP the reference is recurrent backprop of its own energy network at the free fixed
  point (``verify.equilibrium.implicit_gradient``, implicit differentiation by AD).
  Not defined for the dynamics (its update is a trajectory, not a per-sample rate).
- **epoch-step angle**: the weight change over an epoch, ``w_k − w_{k−1}``, against the
  full-batch backprop gradient of the training set at ``w_{k−1}``; defined for every
  feedforward law, the dynamics included (SGD's own value is the yardstick: SGD's epoch
  step is not its start-of-epoch gradient either). Not measured for EP (its reference
  would need one more relaxation per training sample).

Settings: ``main`` = 64-32-10 on the 1438/359 split (``--epochs``, default 2), without
EP: one symmetric EP update of the 64-32-10 Hopfield net cost 0.47 s of wall time
with ``EP_RELAX`` (three relaxations by CVODES + Newton; 1.0-1.8 s with the default
options) on the shared machine, about 11 min per epoch and seed (docs/laws/comparison.md).
``small`` = 64-16-10 on the first 250
images of the same permutation (200 train, 50 test), every law including EP, 2 epochs.
``--quick`` (the default, run by the tests): 64-8-10 on 40 images (32 train, 8 test),
1 epoch; its numbers only show that everything runs. Three seeds (``--seeds``) in every
setting: they change the initial weights, the sample order and FA's and DFA's feedback
matrices, not the split. The x axis of the figure is epochs; wall times per law are in
the JSON and the table.

Run: ``python examples/compare_laws.py`` (quick). The documented run:
``python examples/compare_laws.py --setting main --out DIR`` and
``python examples/compare_laws.py --setting small --seeds K --out DIR`` for K = 0, 1, 2
(separate processes, at the same time), then
``python examples/compare_laws.py --plot DIR/compare_laws_*.json`` for the merged tables
and ``DIR/compare_laws.png``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp

import cognitive_action as ca
from cognitive_action.compile.energy import RelaxOptions, compile_energy, equilibrium_update
from cognitive_action.declare import symbols as S
from cognitive_action.declare.energy import hopfield
from cognitive_action.errors import FixedPointError
from cognitive_action.learn import initial_weights, load_digits_split, sgd_baseline, train
from cognitive_action.learn.runners import DynamicsOptions
from cognitive_action.learn.train import CHECKPOINT
from cognitive_action.verify import metrics
from cognitive_action.verify.equilibrium import _Declared, implicit_gradient
from cognitive_action.verify.laws import (
    LawEvaluator,
    direct_feedback_alignment,
    feedback_alignment,
)
from cognitive_action.verify.predictive_coding import predictive_coding
from cognitive_action.verify.reference import depths

LR = 0.05
#: The settings: layer sizes, images kept (None: all), epochs, probe images, EP or not.
SETTINGS = {"main": {"sizes": [64, 32, 10], "limit": None, "epochs": 2, "probe": 64,
                     "ep": False},
            "small": {"sizes": [64, 16, 10], "limit": 250, "epochs": 2, "probe": 16,
                      "ep": True},
            "quick": {"sizes": [64, 8, 10], "limit": 40, "epochs": 1, "probe": 4,
                      "ep": True}}
#: EP's nudging and the relaxation: CVODES to max |ẋ| <= 1e-4, then Newton to 1e-13
#: (the fixed point is Newton's; the looser CVODES tolerances only shorten the way there).
#: A phase that has not settled by t = 300 (a slow mode) is relaxed again for up to
#: t = 4000 (``EP_SLOW``); the run counts these retries.
EP_BETA = 0.1
EP_RELAX = RelaxOptions(horizon=5.0, relax_tol=1e-4, rtol=1e-6, atol=1e-8)
EP_SLOW = RelaxOptions(horizon=20.0, max_chunks=200, relax_tol=1e-4, rtol=1e-6, atol=1e-8)


class Backprop:
    """``-∂V/∂w`` summed over a batch (``V = ½|x_out − y|²``), ``net.weights`` order,
    written by hand in NumPy for a layered tanh net without biases (the reference)."""

    def __init__(self, net):
        pos = {key: i for i, key in enumerate(net.w)}
        layers = [list(net.inputs)]
        seen = set(net.inputs)
        while len(seen) < len(net.order):
            nxt = [j for j in net.computing if j not in seen
                   and set(net.graph.predecessors(j)) <= set(layers[-1])]
            layers.append(nxt)
            seen |= set(nxt)
        self.idx = [np.array([[pos[j, k] for k in lo] for j in hi])
                    for lo, hi in zip(layers, layers[1:])]
        self.n = len(net.w)

    def forward(self, w, X):
        xs = [X]
        for ix in self.idx:
            xs.append(np.tanh(xs[-1] @ w[ix].T))
        return xs

    def __call__(self, w, X, Y):
        xs = self.forward(w, X)
        g = np.zeros(self.n)
        d = Y - xs[-1]
        for lv in range(len(self.idx), 0, -1):
            s = (1 - xs[lv] ** 2) * d
            d = s @ w[self.idx[lv - 1]]
            np.add.at(g, self.idx[lv - 1], s.T @ xs[lv - 1])
        return g

    def accuracy(self, w, X, labels):
        return float(np.mean(np.argmax(self.forward(w, X)[-1], 1) == labels))


def per_layer_angles(a, g, layer_of):
    return [float(metrics.angle_degrees(a[layer_of == k], g[layer_of == k]))
            for k in sorted(set(layer_of.tolist()))]


class Context:
    """What every law of one run shares: data, net, initial weights, probe, reference."""

    def __init__(self, setting, seed):
        cfg = SETTINGS[setting]
        (self.Xtr, self.ytr), (self.Xte, self.yte) = load_digits_split(0.2, 0,
                                                                       limit=cfg["limit"])
        self.Ytr, self.Yte = np.eye(10)[self.ytr], np.eye(10)[self.yte]
        self.net = ca.layered(cfg["sizes"])
        self.problem = self.net.problem()
        th, = S.parameters("theta")
        self.problem_theta = self.net.problem(weight=sp.exp(th * S.t), parameters=[th])
        self.seed, self.epochs = seed, cfg["epochs"]
        self.w0 = initial_weights(self.net, seed)
        d = depths(self.net)
        self.layer_of = np.array([d[j] for (j, _k) in self.net.w])
        self.probe = (self.Xte[:cfg["probe"]], self.Yte[:cfg["probe"]])
        self.bp = Backprop(self.net)

    def order(self):
        return np.random.default_rng([self.seed, 0x0DE5])  # learn.train's sample order

    def step_angles(self, ws):
        """Per epoch: ``w_k − w_{k−1}`` against the full-batch gradient at ``w_{k−1}``."""
        return [per_layer_angles(b - a, self.bp(a, self.Xtr, self.Ytr), self.layer_of)
                for a, b in zip(ws, ws[1:])]


def run_mode(ctx, mode):
    """``learn.train`` in ``mode``; the weights after every epoch from its checkpoint."""
    ws = [ctx.w0.copy()]
    with tempfile.TemporaryDirectory() as tmp:
        def grab(epoch, epochs, history):
            with np.load(Path(tmp) / CHECKPOINT) as z:
                ws.append(z["weights"].copy())
        t0 = time.perf_counter()
        kw = {}
        if mode == "dynamics":
            kw["options"] = DynamicsOptions(theta=50.0)
        h = train(ctx.problem_theta if mode == "dynamics" else ctx.problem,
                  (ctx.Xtr, ctx.ytr), (ctx.Xte, ctx.yte), mode=mode, epochs=ctx.epochs,
                  learning_rate=LR, seed=ctx.seed, out=tmp, resume=False, progress=grab,
                  **kw)
        sec = time.perf_counter() - t0
    assert np.array_equal(ws[-1], h.weights)
    return {"test_accuracy": h.test_accuracy, "update_angle": None,
            "step_angle": ctx.step_angles(ws), "seconds": sec}, ws


class ProtocolTrainer:
    """Per-sample SGD with a law of the public protocol (as the verifier calls it)."""

    def __init__(self, ctx, law, name):
        problem = ctx.problem
        self.ev = LawEvaluator(problem)
        self.ctx, self.net, self.law, self.name = ctx, problem.network, law, name
        net = self.net
        self.order = {j: i for i, j in enumerate(net.order)}
        pos = {key: i for i, key in enumerate(net.w)}
        self.inputs = [self.order[j] for j in net.inputs]
        self.feeds = [(self.order[j], [self.order[k] for k in net.graph.predecessors(j)],
                       [pos[j, k] for k in net.graph.predecessors(j)]) for j in net.computing]
        self.in_names = [str(net.input_signals()[j]) for j in net.inputs]
        self.out_names = [str(net.target_signals()[o]) for o in net.outputs]

    def rates(self, w, e, y):
        x = np.zeros(len(self.net.order))
        x[self.inputs] = e
        for j, src, wi in self.feeds:                  # the forward pass
            x[j] = np.tanh(x[src] @ w[wi])
        vals = {"t": 0.0} | dict(zip(self.in_names, e.tolist()))
        vals |= dict(zip(self.out_names, y.tolist()))
        given = self.ev.given(w, x, vals, 1.0, lambda: None)
        return self.ev.output(self.law.law(given), self.name).w_dot

    def update_angles(self, w):
        X, Y = self.ctx.probe
        law = sum(self.rates(w, e, y) for e, y in zip(X, Y))
        return per_layer_angles(law, self.ctx.bp(w, X, Y), self.ctx.layer_of)

    def run(self):
        c = self.ctx
        w = c.w0.copy()
        rng = c.order()
        ws, acc, ang = [w.copy()], [], []
        t0 = time.perf_counter()
        for epoch in range(c.epochs + 1):
            if epoch:
                for i in rng.permutation(len(c.Xtr)):
                    w += LR * self.rates(w, c.Xtr[i], c.Ytr[i])
                ws.append(w.copy())
            acc.append(c.bp.accuracy(w, c.Xte, c.yte))
            ang.append(self.update_angles(w))
        return {"test_accuracy": acc, "update_angle": ang, "step_angle": c.step_angles(ws),
                "seconds": time.perf_counter() - t0}


class EPTrainer:
    """Equilibrium propagation on the Hopfield net of the same sizes (module docstring)."""

    def __init__(self, sizes):
        t0 = time.perf_counter()
        self.model = m = hopfield(sizes, activation="tanh", bias=False, name="ep")
        self.ce = compile_energy(m)
        self.declared = _Declared(m)
        self.build_seconds = time.perf_counter() - t0
        self.names = [str(s) for s in (*m.inputs, *m.targets)]
        self.outputs = [m.neurons.index(o) for o in m.outputs]
        layer = {s: int(g[1:]) for g, syms in m.groups.items() for s in syms}
        self.layer_of = np.array([layer[s] for s in m.learnable])

    def weights_of(self, ctx):
        """The feedforward initial weights as couplings: ``w_{jk}`` on the pair (k, j)."""
        pos = {key: i for i, key in enumerate(ctx.net.w)}
        return np.array([ctx.w0[pos[b, a]] for s in self.model.learnable
                         for a, b in [self.model.couplings[s]]])

    def values(self, e, y):
        return dict(zip(self.names, [*e, *y]))

    def _retry(self, call):
        """``call(options)`` with :data:`EP_RELAX`, again with :data:`EP_SLOW` if a phase
        did not settle in time."""
        try:
            return call(EP_RELAX)
        except FixedPointError as exc:
            if "did not settle" not in str(exc):
                raise
            self.retries += 1
            return call(EP_SLOW)

    def update(self, w, v):
        return self._retry(lambda o: equilibrium_update(
            self.ce, w, v, beta=EP_BETA, nudging="symmetric", options=o))

    def accuracy(self, w, X, labels):
        out = [np.argmax(self._retry(lambda o, e=e: self.ce.relax(
            w, self.values(e, np.zeros(10)), 0.0, options=o)).x[self.outputs]) for e in X]
        return float(np.mean(np.array(out) == labels))

    def update_angles(self, w, probe):
        est, ref = 0.0, 0.0
        for e, y in zip(*probe):
            v = self.values(e, y)
            up = self.update(w, v)
            est = est + up.delta_w
            ref = ref - implicit_gradient(self.model, w, v, up.free.x,
                                          _declared=self.declared).grad
        return per_layer_angles(est, ref, self.layer_of)

    def run(self, ctx):
        w = self.weights_of(ctx)
        rng = ctx.order()
        acc, ang, failed = [], [], None
        self.retries = 0
        t0 = time.perf_counter()
        try:
            for epoch in range(ctx.epochs + 1):
                if epoch:
                    for i in rng.permutation(len(ctx.Xtr)):
                        w += LR * self.update(w, self.values(ctx.Xtr[i], ctx.Ytr[i])).delta_w
                acc.append(self.accuracy(w, ctx.Xte, ctx.yte))
                ang.append(self.update_angles(w, ctx.probe))
        except FixedPointError as exc:   # reported, the missing epochs are NaN
            failed = f"epoch {epoch}: {exc}"
            acc += [np.nan] * (ctx.epochs + 1 - len(acc))
            ang += [[np.nan, np.nan]] * (ctx.epochs + 1 - len(ang))
        return {"test_accuracy": acc, "update_angle": ang, "step_angle": None,
                "seconds": time.perf_counter() - t0, "failed": failed,
                "slow_relaxations": self.retries}


def run_seed(setting, seed, ep):
    ctx = Context(setting, seed)
    res = {}
    t0 = time.perf_counter()
    sgd = sgd_baseline(ctx.problem, (ctx.Xtr, ctx.ytr), (ctx.Xte, ctx.yte),
                       epochs=ctx.epochs, learning_rate=LR, seed=seed)
    sgd_sec = time.perf_counter() - t0
    lim, ws = run_mode(ctx, "limit")
    diff = float(np.max(np.abs(sgd.weights - ws[-1])))
    assert diff < 1e-9, f"limit law != SGD ({diff:.1e})"
    res["SGD"] = {"test_accuracy": sgd.test_accuracy, "update_angle": None,
                  "step_angle": lim["step_angle"], "seconds": sgd_sec}
    res["limit law"] = lim
    res["dynamics"], wd = run_mode(ctx, "dynamics")
    res["dynamics"]["max_weight_diff_vs_sgd"] = float(np.max(np.abs(wd[-1] - ws[-1])))
    laws = {"FA": feedback_alignment(seed=seed), "DFA": direct_feedback_alignment(seed=seed),
            "PC (beta=1)": predictive_coding(1.0), "PC (beta=0.01)": predictive_coding(0.01)}
    for name, law in laws.items():
        res[name] = ProtocolTrainer(ctx, law, name).run()
    if ep is not None:
        res["EP (beta=0.1, sym.)"] = ep.run(ctx)
    for name, r in res.items():
        print(f"  seed {seed} {name:20s} acc {r['test_accuracy'][0]:.3f} -> "
              f"{r['test_accuracy'][-1]:.3f}  {r['seconds']:.1f} s", flush=True)
    return res, {"train": len(ctx.Xtr), "test": len(ctx.Xte), "sgd_vs_limit": diff}


def _ms(a):
    a = np.asarray(a, dtype=float)
    return f"{np.mean(a):.3f} ± {np.std(a, ddof=1) if a.size > 1 else 0:.3f}"


def _deg(a):
    a = np.asarray(a, dtype=float)
    if a.size == 0 or not np.all(np.isfinite(a)):
        return "–"
    return f"{np.mean(a):.1f} ± {np.std(a, ddof=1) if a.size > 1 else 0:.1f}°"


def stack(runs, name, key):
    vals = [r[name][key] for r in runs]
    return None if vals[0] is None else np.array(vals, dtype=float)


def table(data):
    """Markdown table: mean ± sample standard deviation over the seeds."""
    runs, epochs = data["runs"], data["epochs"]
    lines = [f"| law | test accuracy, epoch 0 | epoch {epochs} | update angle hidden, "
             f"epoch 0 → {epochs} | update angle output, epoch {epochs} | epoch-step angle "
             f"hidden, epoch 1 → {epochs} | epoch-step angle output, epoch {epochs} | wall "
             "s per seed |", "|---" * 8 + "|"]
    for name in runs[0]:
        acc = stack(runs, name, "test_accuracy")
        ua, sa = stack(runs, name, "update_angle"), stack(runs, name, "step_angle")
        exact = name in ("SGD", "limit law")
        uah = ("0 (backprop)" if exact else "–" if ua is None else
               f"{_deg(ua[:, 0, 0])} → {_deg(ua[:, -1, 0])}")
        uao = "0" if exact else "–" if ua is None else _deg(ua[:, -1, -1])
        sah = "–" if sa is None else f"{_deg(sa[:, 0, 0])} → {_deg(sa[:, -1, 0])}"
        sao = "–" if sa is None else _deg(sa[:, -1, -1])
        sec = np.mean([r[name]["seconds"] for r in runs])
        lines.append(f"| {name} | {_ms(acc[:, 0])} | {_ms(acc[:, -1])} | {uah} | {uao} | "
                     f"{sah} | {sao} | {sec:.0f} |")
    return "\n".join(lines)


STYLES = {"SGD": ("k", "-", "o"), "limit law": ("tab:gray", "--", "x"),
          "dynamics": ("tab:purple", ":", "s"), "FA": ("tab:blue", "-", "o"),
          "DFA": ("tab:orange", "-", "o"), "PC (beta=1)": ("tab:green", "-", "^"),
          "PC (beta=0.01)": ("tab:red", "--", "v"), "EP (beta=0.1, sym.)": ("tab:brown", "-",
                                                                            "D")}


def plot(datas, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'cognitive_action[plots]')")
        return
    fig, axes = plt.subplots(len(datas), 5, figsize=(19, 3.7 * len(datas) + 0.8),
                             squeeze=False)
    handles = {}
    for row, data in zip(axes, datas):
        runs, E = data["runs"], data["epochs"]
        ep = np.arange(E + 1)
        title = f"{data['setting']}: {'-'.join(map(str, data['sizes']))}, " \
                f"{data['train']} train"
        for name in runs[0]:
            c, ls, mk = STYLES[name]
            kw = {"color": c, "ls": ls, "marker": mk, "ms": 4, "label": name}
            acc = stack(runs, name, "test_accuracy")
            h, = row[0].plot(ep, acc.mean(0), **kw)
            row[0].fill_between(ep, acc.min(0), acc.max(0), color=c, alpha=0.12)
            handles[name] = h
            ua, sa = stack(runs, name, "update_angle"), stack(runs, name, "step_angle")
            for k in range(2):
                if ua is not None:
                    m = ua[:, :, k]
                    row[1 + k].errorbar(ep, m.mean(0), yerr=m.std(0), capsize=2, **kw)
                if sa is not None:
                    m = sa[:, :, k]
                    row[3 + k].errorbar(ep[1:], m.mean(0), yerr=m.std(0), capsize=2, **kw)
        row[0].set(xlabel="epoch", ylabel="test accuracy", title=title)
        for k in range(2):
            lay = "hidden" if k == 0 else "output"
            row[1 + k].set(xlabel="epoch", ylabel="angle (deg)",
                           title=f"update vs backprop, {lay} layer")
            row[3 + k].set(xlabel="epoch", ylabel="angle (deg)",
                           title=f"epoch step vs full gradient, {lay}")
        for i, ax in enumerate(row[1:]):
            ax.axhline(90, color="k", lw=0.5)
            if i < 2:
                ax.set_ylim(bottom=0)
            ax.set_xticks(ep if i < 2 else ep[1:])
        row[0].set_xticks(ep)
    fig.legend(list(handles.values()), list(handles), loc="lower center",
               ncol=len(handles), frameon=False)
    fig.text(0.5, 0.005 + 0.6 / fig.get_figheight(),
             "mean over seeds; band: min-max (accuracy), bars: ±1 sd (angles); SGD and "
             "the limit law have update angle 0; FA and DFA output-layer update angle 0",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.9 / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def merge(datas):
    """Runs of one setting from several files (seeds run as separate processes)."""
    out = {}
    for d in datas:
        if d["setting"] not in out:
            out[d["setting"]] = d | {"runs": list(d["runs"]), "seeds": list(d["seeds"]),
                                     "total_seconds": [d["total_seconds"]]}
        else:
            m = out[d["setting"]]
            m["runs"] += d["runs"]
            m["seeds"] += d["seeds"]
            m["total_seconds"].append(d["total_seconds"])
    return list(out.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="quick")
    parser.add_argument("--quick", action="store_true", help="the quick setting (default)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--plot", type=Path, nargs="+", default=None,
                        help="only draw the figure and tables from compare_laws_*.json")
    args = parser.parse_args()
    if args.plot is not None:
        datas = merge([json.loads(p.read_text()) for p in args.plot])
        for d in datas:
            print(f"\n{d['setting']}: {d['train']} train, {d['test']} test, "
                  f"{d['epochs']} epochs, seeds {d['seeds']}\n{table(d)}")
        plot(datas, args.plot[0].parent / "compare_laws.png")
        return
    setting = "quick" if args.quick else args.setting
    cfg = SETTINGS[setting]
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    t0 = time.perf_counter()
    ep = None
    if cfg["ep"]:
        ep = EPTrainer(cfg["sizes"])
        print(f"EP: Hopfield {cfg['sizes']} declared, derived and compiled in "
              f"{ep.build_seconds:.1f} s", flush=True)
    runs = []
    for seed in args.seeds:
        r, info = run_seed(setting, seed, ep)
        runs.append(r)
    data = {"setting": setting, "sizes": cfg["sizes"], "epochs": cfg["epochs"],
            "seeds": args.seeds, "lr": LR, "ep_beta": EP_BETA, **info,
            "ep_build_seconds": None if ep is None else ep.build_seconds,
            "total_seconds": time.perf_counter() - t0, "runs": runs}
    print(f"\n{setting}: {data['train']} train, {data['test']} test images, "
          f"{cfg['epochs']} epochs, seeds {args.seeds}, total "
          f"{data['total_seconds']:.0f} s (wall)\n{table(data)}")
    fails = [f"seed {s}: {r[n]['failed']}" for s, r in zip(args.seeds, runs) for n in r
             if r[n].get("failed")]
    print("EP failures: " + ("; ".join(fails) if fails else "none"))
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "-".join(map(str, args.seeds))
    path = args.out / f"compare_laws_{setting}_seeds{tag}.json"
    path.write_text(json.dumps(data, indent=1))
    print(f"wrote {path}")
    plot([data], args.out / f"compare_laws_{setting}_seeds{tag}.png")


if __name__ == "__main__":
    main()
