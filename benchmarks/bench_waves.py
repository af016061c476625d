"""Timing of the wave simulators against a naive per-tick Python loop.

``python benchmarks/bench_waves.py`` runs one speed sweep (L = 9, width 4, 2000 ticks,
24 speeds) three ways and prints times and ratios:

* naive: loops over ticks, runs and layers, one small matrix-vector product at a time;
* ``wave_step``: one call per tick, vectorized over layers (padded) and runs;
* ``simulate_waves``: loops over layers only, vectorized over ticks and runs.

It checks that all three give the same deltas; it makes no assertion on time.
"""

from __future__ import annotations

import time

import numpy as np

from cognitive_action.diffusion import signals
from cognitive_action.diffusion.compare import gradient_errors
from cognitive_action.diffusion.nets import random_weights, teacher_targets
from cognitive_action.diffusion.waves import init_state, pad_weights, simulate_waves, wave_step


def naive(W, u, y):
    """Per tick, per run, per layer; incoming derivative, paper supervision, tanh."""
    T, B, _ = u.shape
    L = len(W)
    deltas = np.zeros((T, B, L + 1, W[0].shape[0]))
    for b in range(B):
        x = [np.tanh(np.zeros(w.shape[1])) for w in W] + [np.zeros(W[-1].shape[0])]
        prev = [np.zeros(w.shape[0]) for w in W]            # δ_{t-1, l}, l = 1..L
        for t in range(T):
            x[0] = u[t, b]
            z = [W[l] @ x[l] for l in range(L)]              # drives of layers 1..L
            new = [None] * L
            s = 1.0 - np.tanh(z[L - 1]) ** 2
            new[L - 1] = s * (np.tanh(z[L - 1]) - y[t, b])
            for l in range(L - 1, 0, -1):                    # layer l, index l - 1
                new[l - 1] = (1.0 - np.tanh(z[l - 1]) ** 2) * (W[l].T @ prev[l])
            for l in range(L):
                deltas[t, b, l + 1] = new[l]
            x = [x[0]] + [np.tanh(zz) for zz in z]
            prev = new
    return deltas


def main() -> None:
    L, width, T = 9, 4, 2000
    freqs = np.geomspace(1e-3, 0.2, 24)
    widths = [width] * (L + 1)
    W, teacher = random_weights(widths, rng=0), random_weights(widths, rng=1)
    u = signals.sinusoid(T, width, freqs, rng=2)
    y = teacher_targets(teacher, u)
    B = u.shape[1]

    t0 = time.perf_counter()
    res = simulate_waves(W, u, y)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    gradient_errors(res)
    t_metrics = time.perf_counter() - t0

    t0 = time.perf_counter()
    P, wd = pad_weights(W, B)
    state = init_state(wd, B)
    step_delta = np.zeros((T, B, L + 1, width))
    for t in range(T):
        state, _ = wave_step(state, P, u[t], y[t])
        step_delta[t] = state.delta
    t_step = time.perf_counter() - t0

    t0 = time.perf_counter()
    nd = naive(W, u, y)
    t_naive = time.perf_counter() - t0

    ref = np.stack([res.delta[l] for l in range(1, L + 1)], axis=2)
    err_naive = np.abs(nd[:, :, 1:] - ref).max()
    err_step = np.abs(step_delta[:, :, 1:] - ref).max()
    print(f"sweep: L={L}, width {width}, {T} ticks, {B} speeds "
          f"({T * B * L} layer updates)")
    print(f"  naive per-tick loop   {t_naive:8.3f} s   (max |Δδ| vs vectorized {err_naive:.1e})")
    print(f"  wave_step per tick    {t_step:8.3f} s   ratio naive/step  {t_naive / t_step:7.1f}"
          f"   (max |Δδ| {err_step:.1e})")
    print(f"  simulate_waves        {t_vec:8.3f} s   ratio naive/vector {t_naive / t_vec:7.1f}")
    print(f"  + per-layer metrics   {t_metrics:8.3f} s   (cosine, angle, rel. error, sign)")


if __name__ == "__main__":
    main()
