"""Benchmark: training with the full derived dynamics, per sample, against NumPy SGD.

The network is ``layered([64, 32, 10])`` (tanh, squared loss on one-hot targets,
``ϖ = exp(θt)``), trained by :func:`cognitive_action.learn.train` with
``mode="dynamics"``: ``η = τ/γ``, ``m_W = γ/θ``, ``m_x = 10⁻³ m_W`` (τ = 1, θ = 50).
Samples are random inputs in [0, 1) with random labels (the cost does not depend on the
values), or the digits with ``--accuracy``.

Measured, interleaved over ``--repeats`` rounds (medians with min..max), per sample, in
CPU time of this process (``time.process_time``: on the shared, loaded 2-core machine
the wall time of a 2 ms call includes preemptions of several ms, which hit the longer
calls more often; the wall time of the dynamics' epochs is printed beside):

- ``sgd``: a hand-written NumPy SGD step (forward pass, backprop, update);
- ``dynamics``: the training loop of ``mode="dynamics"`` (``history.cpu_seconds``: the
  presentations only, not the per-epoch metrics), one CasADi call per sample (the
  switch onto ``G = 0``, ``Ġ = 0`` and the exponential integrator's steps), for each
  configuration asked with ``--configs`` (``etd1`` one ETD1 step, ``etd2`` one ETD2RK
  step, ``etd1-lapacklu`` eq. (10) by LAPACK LU, ``etd1-c`` the presentation as
  generated C (built once, cached), ``rk4`` data.run's Newton switch and
  classical RK4 with ``--rk4-steps`` steps: the path measured before this work);
- ``switch`` and ``rhs``: the compiled switch alone and one right-hand side alone
  (eq. 8-10, inputs eliminated), through buffers.

``--accuracy`` trains on the digits (80/20 split, 3 epochs, lr 0.05, seed 0) and prints
the test accuracy of the dynamics against SGD's (target: within one point).

Run:  python benchmarks/bench_train_dynamics.py
      python benchmarks/bench_train_dynamics.py --samples 300 --repeats 5 --accuracy
"""

from __future__ import annotations

import argparse
import time

import casadi as ca
import numpy as np
import sympy as sp

from cognitive_action.compile import compile_system
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import layered
from cognitive_action.derive.network import derive_network
from cognitive_action.learn import initial_weights, sgd_baseline, train
from cognitive_action.learn.presentation import jacobi_switch
from cognitive_action.learn.runners import DynamicsOptions

CONFIGS = {"etd1": {"order": 1}, "etd2": {"order": 2},
           "etd1-lapacklu": {"order": 1, "linear_solver": "lapacklu"},
           "etd1-c": {"order": 1, "codegen": True},
           "rk4": {"scheme": "rk4"}}


def numpy_sgd(X, Y, Ws, lr):
    """Plain per-sample SGD on ``½|tanh(W2 tanh(W1 x)) - y|²``."""
    W1, W2 = Ws
    for x, y in zip(X, Y):
        h = np.tanh(W1 @ x)
        o = np.tanh(W2 @ h)
        d2 = (y - o) * (1.0 - o * o)
        d1 = (W2.T @ d2) * (1.0 - h * h)
        W2 += lr * np.outer(d2, h)
        W1 += lr * np.outer(d1, x)


def stats(values):
    v = np.asarray(values)
    return float(np.median(v)), float(v.min()), float(v.max())


def timed(fn, args, n=20):
    """CPU seconds per call of a CasADi function through a buffer."""
    buf, ev = fn.buffer()
    keep = [np.ascontiguousarray(np.atleast_1d(np.asarray(a, dtype=float))) for a in args]
    res = [np.zeros(fn.nnz_out(i)) for i in range(fn.n_out())]
    for i, a in enumerate(keep):
        buf.set_arg(i, memoryview(a))
    for i, r in enumerate(res):
        buf.set_res(i, memoryview(r))
    ev()
    t0 = time.process_time()
    for _ in range(n):
        ev()
    return (time.process_time() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--theta", type=float, default=50.0)
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--rk4-steps", type=int, default=40, help="RK4 steps (config rk4)")
    ap.add_argument("--configs", default="etd1,etd1-c,etd2,etd1-lapacklu,rk4")
    ap.add_argument("--accuracy", action="store_true")
    args = ap.parse_args()
    configs = args.configs.split(",")

    theta, = S.parameters("theta")
    net = layered([64, 32, 10])
    t0 = time.perf_counter()
    problem = net.problem(weight=sp.exp(theta * S.t), parameters=[theta])
    ns = derive_network(problem)
    system = compile_system(ns)
    print(f"64-32-10: {system.n_states} states; declare + derive + compile "
          f"{time.perf_counter() - t0:.3f} s (eq. 10 by {system.linear_solver}, "
          f"{len(ns.network.order) - len(ns.input_index)} non-input neurons)")

    rng = np.random.default_rng(0)
    X = rng.random((args.samples, 64))
    labels = rng.integers(0, 10, args.samples)
    Y = np.eye(10)[labels]
    w0 = initial_weights(net, 0)
    pos = {k: i for i, k in enumerate(net.w)}
    hidden = [n for n in net.order if n not in net.inputs and n not in net.outputs]
    Ws = [np.array([[w0[pos[j, k]] for k in net.inputs] for j in hidden]),
          np.array([[w0[pos[j, k]] for k in hidden] for j in net.outputs])]

    def options(name):
        kw = dict(CONFIGS[name])
        if kw.get("scheme") == "rk4":
            kw["steps"] = args.rk4_steps
        return DynamicsOptions(tau=args.tau, theta=args.theta, **kw)

    times: dict[str, list[float]] = {"sgd": []} | {c: [] for c in configs}
    ratios: dict[str, list[float]] = {c: [] for c in configs}
    walls: dict[str, list[float]] = {c: [] for c in configs}
    builds = {}
    for r in range(args.repeats):
        t0 = time.process_time()
        for _ in range(3):
            numpy_sgd(X, Y, Ws, args.lr)
        sgd = (time.process_time() - t0) / (3 * args.samples)
        times["sgd"].append(sgd)
        for c in configs:
            if c == "rk4" and r >= 2:  # about 100x slower: two rounds are enough
                continue
            t0 = time.perf_counter()
            h = train(problem, (X, labels), mode="dynamics", epochs=1,
                      learning_rate=args.lr, seed=0, options=options(c))
            builds[c] = time.perf_counter() - t0 - h.seconds[0]
            times[c].append(h.cpu_seconds[0] / args.samples)
            walls[c].append(h.seconds[0] / args.samples)
            ratios[c].append(times[c][-1] / sgd)
    print(f"per sample, median (min .. max) over {args.repeats} interleaved rounds of "
          f"{args.samples} samples (rk4: 2 rounds); tau {args.tau}, theta {args.theta}; "
          "ratio: per round, against that round's SGD")
    for name, v in times.items():
        med, lo, hi = stats(v)
        line = f"  {name:<14} {med * 1e6:9.1f} us  ({lo * 1e6:.1f} .. {hi * 1e6:.1f})"
        if name != "sgd":
            rm, rl, rh = stats(ratios[name])
            line += (f"   {rm:6.1f}x SGD ({rl:.1f} .. {rh:.1f}); wall "
                     f"{stats(walls[name])[0] * 1e6:.0f} us; train() overhead "
                     f"(compile, metrics) {builds[name]:.2f} s")
        print(line)

    # the parts of one presentation
    y = np.zeros(system.n_states)
    y[[system.states.index(str(w)) for w in net.weights]] = w0
    m_w = args.tau / args.lr / args.theta
    vals = {"m_W": m_w, "m_x": 1e-3 * m_w, "theta": args.theta}
    sample = {str(s): float(v) for s, v in zip(net.input_signals().values(), X[0])} | \
        {str(s): float(v) for s, v in zip(net.target_signals().values(), Y[0])}
    p = system.parameter_vector(vals | sample)
    t, yy, pp = ca.MX.sym("t"), ca.MX.sym("y", system.n_states), \
        ca.MX.sym("p", system.n_parameters)
    switch = ca.Function("switch", [t, yy, pp], [jacobi_switch(system, ns, t, yy, pp)[0]])
    t_switch, t_rhs, t_sgd = [], [], []
    for _ in range(args.repeats):
        t_switch.append(timed(switch, (0.0, y, p)))
        t_rhs.append(timed(system.rhs, (0.0, y, p)))
        t0 = time.process_time()
        numpy_sgd(X, Y, Ws, args.lr)
        t_sgd.append((time.process_time() - t0) / len(X))
    for name, v in (("switch", t_switch), ("rhs", t_rhs), ("sgd (again)", t_sgd)):
        med, lo, hi = stats(v)
        print(f"  {name:<14} {med * 1e6:9.1f} us  ({lo * 1e6:.1f} .. {hi * 1e6:.1f})")

    if args.accuracy:
        from cognitive_action.learn import load_digits_split

        tr, te = load_digits_split(0.2, seed=0)
        t0 = time.perf_counter()
        h = train(problem, tr, te, mode="dynamics", epochs=3, learning_rate=args.lr, seed=0,
                  options=DynamicsOptions(tau=args.tau, theta=args.theta))
        t_dyn = time.perf_counter() - t0
        s = sgd_baseline(problem, tr, te, epochs=3, learning_rate=args.lr, seed=0)
        print(f"digits, 3 epochs, lr {args.lr}: test accuracy dynamics "
              f"{h.test_accuracy[-1]:.4f}, SGD {s.test_accuracy[-1]:.4f} (difference "
              f"{100 * (h.test_accuracy[-1] - s.test_accuracy[-1]):+.2f} points; target "
              f"within 1); max |W_dyn - W_sgd| {np.max(np.abs(h.weights - s.weights)):.2e}; "
              f"{t_dyn:.1f} s for the dynamics run, max |G|, |Gdot| after switches "
              f"{max(max(r) for r in h.switch_residuals):.1e}")


if __name__ == "__main__":
    main()
