"""Benchmark: per-sample cost of the compiled limit law against NumPy SGD (issue 13).

Net 64-32-10; random inputs in [0, 1] and one-hot targets (the digits' shapes).
``--variant tanh`` (default): tanh everywhere, squared loss (``problems/digits.toml``);
``--variant mixed``: tanh hidden layer, identity logits, biases, softmax cross-entropy
(``problems/digits_softmax.toml``). Side by side, in one process, on the same samples:

- ``limit law``: :meth:`LimitKernel.step`, the backprop limit of the derived system
  compiled once from the per-neuron templates (:func:`compile_limit_law`);
- ``NumPy SGD``: a hand-written SGD step (two matrix products forward, two backward,
  two outer products; with ``mixed``, the bias vectors and the softmax too).

Each repeat times ``--samples`` steps of each variant, interleaved (limit, SGD, limit,
...), so drifts of the machine hit both alike; the per-sample time is reported as the
median over repeats with the min-max spread, and the ratio of the medians. The build
(derive + compile) is timed once. The weights of both runs are compared at the end.

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --samples 500 --repeat 5
    python benchmarks/bench_train.py --variant mixed
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cognitive_action.declare.network import layered
from cognitive_action.learn import compile_limit_law, initial_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--sizes", default="64,32,10")
    ap.add_argument("--variant", choices=("tanh", "mixed"), default="tanh")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    mixed = args.variant == "mixed"
    t0 = time.perf_counter()
    if mixed:
        net = layered(sizes, output_activation="identity", bias=True)
        problem = net.problem(loss="softmax_cross_entropy")
    else:
        net = layered(sizes)
        problem = net.problem()
    t_declare = time.perf_counter() - t0
    t0 = time.perf_counter()
    kernel = compile_limit_law(problem)
    t_build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(args.samples, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], args.samples)]
    w0 = initial_weights(net, 0)
    blocks = kernel.to_blocks(w0)
    # the hand-written SGD's own copies: weight matrices, then bias vectors
    Ws = [b.copy() for b, blk in zip(blocks, kernel.blocks) if not blk.constant]
    bs = [b[:, 0].copy() for b, blk in zip(blocks, kernel.blocks) if blk.constant]
    eta = 0.01

    def limit_epoch() -> None:
        for i in range(args.samples):
            kernel.step(blocks, X[i], Y[i], eta)

    def sgd_epoch() -> None:
        for i in range(args.samples):
            xs = [X[i]]
            for W in Ws:
                xs.append(np.tanh(W @ xs[-1]))
            d = Y[i] - xs[-1]
            for lv in range(len(Ws), 0, -1):
                s = (1.0 - xs[lv] * xs[lv]) * d
                d = Ws[lv - 1].T @ s
                Ws[lv - 1] += eta * np.outer(s, xs[lv - 1])

    def sgd_epoch_mixed() -> None:
        for i in range(args.samples):
            xs = [X[i]]
            for W, b in zip(Ws[:-1], bs[:-1]):
                xs.append(np.tanh(W @ xs[-1] + b))
            o = Ws[-1] @ xs[-1] + bs[-1]
            p = np.exp(o - o.max())
            d = Y[i] - p / p.sum()              # -dV/do, one-hot targets
            for lv in range(len(Ws), 0, -1):
                s = d if lv == len(Ws) else (1.0 - xs[lv] * xs[lv]) * d
                d = Ws[lv - 1].T @ s
                Ws[lv - 1] += eta * np.outer(s, xs[lv - 1])
                bs[lv - 1] += eta * s

    times: dict[str, list[float]] = {"limit law": [], "NumPy SGD": []}
    for _ in range(args.repeat):
        for name, fn in (("limit law", limit_epoch),
                         ("NumPy SGD", sgd_epoch_mixed if mixed else sgd_epoch)):
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / args.samples)
    mine = [b for b, blk in zip(blocks, kernel.blocks) if not blk.constant]
    mine_b = [b[:, 0] for b, blk in zip(blocks, kernel.blocks) if blk.constant]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(mine + mine_b, Ws + bs))
    print(f"net {'-'.join(map(str, sizes))} ({args.variant}): {kernel.n_weights} weights; declare "
          f"{t_declare:.3f} s, derive + compile the limit law {t_build:.3f} s")
    print(f"{args.repeat} interleaved repeats of {args.samples} samples each")
    med = {}
    for name, ts in times.items():
        a = np.array(ts) * 1e6
        med[name] = float(np.median(a))
        print(f"  {name:10s} median {med[name]:7.2f} µs/sample  (min {a.min():.2f}, "
              f"max {a.max():.2f})")
    print(f"  ratio limit law / NumPy SGD (medians): {med['limit law'] / med['NumPy SGD']:.2f}"
          f"  (target <= 2)")
    print(f"  max |W_limit - W_sgd| after {args.repeat * args.samples} steps: {diff:.2e}")


if __name__ == "__main__":
    main()
