"""Benchmark: the full derived dynamics over a data stream, per sample, against NumPy SGD.

The network is ``layered([64, 32, 10])`` with tanh units, the squared loss on one-hot
targets, ``ϖ = exp(θ t)`` (eq. 7), small masses (``m_W = γ/θ``, ``m_x = 10⁻³ m_W``):
the regime whose weights follow the gradient flow ``γ Ẇ = -∇V̄`` (eq. 14), i.e. SGD with
the learning rate ``τ/γ`` per sample. Samples are random inputs in [0, 1) and random
labels (the cost does not depend on the values).

Measured, interleaved over ``--repeats`` rounds (medians with min..max):

- ``sgd``: one hand-written NumPy SGD step on one sample (forward pass, backprop,
  weight update), per sample;
- ``stream``: :func:`cognitive_action.data.run_stream` per sample: the switch
  (consistent ``x``, ``ẋ``: :func:`cognitive_action.data.consistent_state`) plus the
  integration over ``τ`` (``--steps`` RK4 steps compiled into one function);
- ``switch`` and ``integrate``: the two parts alone, through the same compiled
  functions;
- ``rhs``: one evaluation of the compiled right-hand side (eq. 8-10), through a buffer,
  the floor of any explicit step (it solves the dense ``ν × ν`` system of eq. 10).

The network route is compiled with ``--linear-solver`` (default ``ldl``).

Build: ``compile_system``, and the integrator plus switch map for 10 and for 10,000
samples (``integrators_built`` and build seconds, which must not grow).

Run:  python benchmarks/bench_stream.py
      python benchmarks/bench_stream.py --samples 20 --repeats 5 --steps 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sympy as sp

from cognitive_action.compile import SolverOptions, compile_system
from cognitive_action.data import Stream, consistent_state, run_stream
from cognitive_action.data.run import sample_step
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import layered


def numpy_sgd(X, Y, W1, W2, lr):
    """Plain per-sample SGD on ``½|tanh(W2 tanh(W1 x)) - y|²``."""
    for x, y in zip(X, Y):
        h = np.tanh(W1 @ x)
        o = np.tanh(W2 @ h)
        d2 = (o - y) * (1.0 - o * o)
        d1 = (W2.T @ d2) * (1.0 - h * h)
        W2 -= lr * np.outer(d2, h)
        W1 -= lr * np.outer(d1, x)
    return W1, W2


def stats(values):
    v = np.asarray(values)
    return np.median(v), v.min(), v.max()


def fmt(name, values, unit=1e-6, label="us"):
    med, lo, hi = stats(values)
    return f"{name:<12} {med / unit:10.1f} {label}  ({lo / unit:.1f} .. {hi / unit:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="RK4 steps per sample")
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--theta", type=float, default=50.0)
    ap.add_argument("--linear-solver", default="ldl",
                    help="eq. (10) solver of the network route (ldl, lapacklu, ...)")
    args = ap.parse_args()

    theta, = S.parameters("theta")
    net = layered([64, 32, 10])
    t0 = time.perf_counter()
    problem = net.problem(weight=sp.exp(theta * S.t), parameters=[theta])
    system = compile_system(problem, linear_solver=args.linear_solver)
    t_compile = time.perf_counter() - t0
    print(f"64-32-10: {system.n_states} states; declare + derive + compile "
          f"{t_compile:.3f} s")

    rng = np.random.default_rng(0)
    gamma = 1.0
    values = {"m_W": gamma / args.theta, "m_x": 1e-3 * gamma / args.theta,
              "theta": args.theta}
    opts = SolverOptions(method="rk", steps=args.steps)
    y0 = np.zeros(system.n_states)
    for w in net.weights:
        y0[system.states.index(str(w))] = rng.normal(0.0, 0.1)

    # build cost against the number of samples, each on a fresh compiled system
    for n in (10, 10_000):
        fresh = compile_system(problem, linear_solver=args.linear_solver)
        big = Stream(rng.random((n, 64)), rng.integers(0, 10, n), n_classes=10,
                     tau=args.tau, network=net)
        t0 = time.perf_counter()
        sample_step(fresh, big.tau, args.steps)
        consistent_state(fresh, net)
        print(f"build for {n:>6} samples: {time.perf_counter() - t0:.3f} s, "
              f"integrators cached {sum(isinstance(k, tuple) for k in fresh._cache)}")

    stream = Stream(rng.random((args.samples, 64)), rng.integers(0, 10, args.samples),
                    n_classes=10, tau=args.tau, network=net)
    run_stream(system, stream, y0, values, options=opts, record=False)  # warm up
    W1 = rng.normal(0.0, 0.1, (32, 64))
    W2 = rng.normal(0.0, 0.1, (10, 32))
    step = sample_step(system, stream.tau, args.steps)
    switch = consistent_state(system, net)
    p = system.parameter_vector(values, fallback=stream.sample(0))
    p_int = np.append(p, 0.0)
    t_sgd, t_stream, t_switch, t_int, t_rhs = [], [], [], [], []
    n = len(stream)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        numpy_sgd(stream.X, stream.Y, W1, W2, args.tau / gamma)
        t_sgd.append((time.perf_counter() - t0) / n)
        t0 = time.perf_counter()
        run = run_stream(system, stream, y0, values, options=opts, record=False)
        t_stream.append((time.perf_counter() - t0) / n)
        y = run.final
        for fn, out, args_ in ((switch, t_switch, (0.0, y, p)),
                               (step, t_int, (y, np.zeros(0), p_int)),
                               (system.rhs, t_rhs, (0.0, y, p))):
            buf, ev = fn.buffer()
            keep = [np.ascontiguousarray(np.atleast_1d(np.asarray(a, dtype=float)))
                    for a in args_]
            res = [np.zeros(fn.nnz_out(i)) for i in range(fn.n_out())]
            for i, a in enumerate(keep):
                buf.set_arg(i, memoryview(a))
            for i, r in enumerate(res):
                buf.set_res(i, memoryview(r))
            t0 = time.perf_counter()
            for _ in range(5):
                ev()
            out.append((time.perf_counter() - t0) / 5)
    print(f"per sample, median (min .. max) of {args.repeats} interleaved rounds, "
          f"{n} samples, tau {args.tau}, {args.steps} RK4 steps:")
    for name, v in (("sgd", t_sgd), ("stream", t_stream), ("switch", t_switch),
                    ("integrate", t_int), ("rhs", t_rhs)):
        print("  " + fmt(name, v))
    ratio = np.asarray(t_stream) / np.asarray(t_sgd)
    med, lo, hi = stats(ratio)
    print(f"ratio stream / sgd: {med:.0f}x ({lo:.0f} .. {hi:.0f}); target <= 20x")
    floor = np.asarray(t_rhs) / np.asarray(t_sgd)
    print(f"ratio one rhs evaluation / sgd: {np.median(floor):.0f}x "
          f"({floor.min():.0f} .. {floor.max():.0f}); RK4 makes 4 per step")
    g, gd = run.max_residuals()
    print(f"after every switch: max |G| = {g:.2e}, max |Gdot| = {gd:.2e}")


if __name__ == "__main__":
    main()
