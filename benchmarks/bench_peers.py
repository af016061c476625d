"""Benchmark: ours against SciPy RK45 + NumPy and jitted JAX + diffrax, same work, equal error.

The problem is bench_integrate.py's: the finite-mass learning system (eq. 8-10) on a
dense recurrent network of ``n`` neurons (states ``2(n + n(n-2))``), ``t ∈ [0, 10]``,
1000 output points, from a consistent state; every method runs Dormand-Prince 5(4) at
rtol 1e-6, atol 1e-9 and is checked against a tight reference (SciPy DOP853, rtol 1e-11,
atol 1e-12, on the hand-written NumPy right-hand side), as
``max |y - y_ref| / max |y_ref|`` over the output grid.

- ``ours dopri``: ``simulate(system, ..., method="dopri")`` with the drift report on
  (``G`` and ``Ġ`` at every output point, read through ``sim.max_drift``) and the
  initial-state check;
- ``scipy RK45``: ``solve_ivp(method="RK45")`` on the hand-written NumPy right-hand side;
- ``diffrax Dopri5``: ``diffeqsolve`` with a ``PIDController`` (the same error norm and
  tolerances), ``SaveAt(ts=grid)``, the right-hand side written in ``jax.numpy``, the
  whole solve under ``jax.jit``, float64. Skipped, with a message, when JAX or diffrax is
  not installed (``pip install cognitive_action[bench]``).

"build" is what a method does once before it can run: for ours ``compile_system`` plus the
first ``simulate`` call's construction (the step function and the drift map, cached on
the system); for diffrax the XLA compilation (the first call's time minus a run); SciPy
has none. Declaring and deriving the problem is reported apart. "run" is the CPU time of
the process (``time.process_time``: robust to other jobs on a shared machine; every
method runs on one thread), median of ``--repeats`` interleaved repeats (ours, RK45,
diffrax, ours, ...) with min..max, and the wall time likewise.

One BLAS and one XLA thread: the environment variables are set before NumPy, CasADi and
JAX are imported (the machine is shared; a second thread made NumPy's n = 200 right-hand
side slower, not faster). ``--rhs`` also times one right-hand side per method (ours through
a buffer, NumPy, JAX jitted).

Run:  python benchmarks/bench_peers.py                    # n = 10, 50, 200, 5 repeats
      python benchmarks/bench_peers.py --sizes 10 --repeats 3
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
from bench_compile import N_IN, buffered, dense_problem  # noqa: E402
from bench_integrate import T_END, reference  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import cognitive_action as ca_  # noqa: E402
from cognitive_action.compile import compile_system, simulate  # noqa: E402

try:  # optional: the `bench` extra
    import jax  # noqa: E402

    jax.config.update("jax_enable_x64", True)
    import diffrax  # noqa: E402
    import jax.numpy as jnp  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on the environment
    jax = None
    _JAX_MISSING = str(exc)

RTOL, ATOL = 1e-6, 1e-9


def jax_rhs_factory(n: int, values: dict):
    """The NumPy right-hand side of bench_compile.py in ``jax.numpy`` (same operations,
    ``jnp.linalg.solve`` for eq. 10)."""
    mx, mw, th = values["m_x"], values["m_W"], values["theta"]
    yt = values[f"y{n - 1}"]
    nh = n - N_IN
    ne = nh * n
    mask = jnp.asarray(np.r_[np.zeros(N_IN), np.ones(nh)])

    def rhs(t, y, args):
        x, w = y[:n], y[n:n + ne]
        xd, wd = y[n + ne:2 * n + ne], y[2 * n + ne:]
        W = jnp.zeros((n, n)).at[N_IN:].set(w.reshape(nh, n))
        Wd = jnp.zeros((n, n)).at[N_IN:].set(wd.reshape(nh, n))
        a = W @ x
        ad = Wd @ x + W @ xd
        tha = jnp.tanh(a)
        s = 1.0 - tha * tha
        g_a = -s * mask
        Jx = jnp.eye(n) + g_a[:, None] * W
        h = (2.0 * ad * ad * s * tha + 2.0 * g_a * (Wd @ xd)) * mask
        fx = (-mx * th * xd).at[-1].add(-(x[-1] - yt))
        fw = -mw * th * wd
        Fm = fw.reshape(nh, n)
        jw = g_a ** 2 * (x @ x)
        A = Jx @ Jx.T / mx + jnp.diag(jw) / mw
        b = Jx @ fx / mx + h
        b = b.at[N_IN:].add(g_a[N_IN:] * (Fm @ x) / mw)
        delta = jnp.linalg.solve(A, b)
        xdd = (fx - Jx.T @ delta) / mx
        wdd = (Fm - (g_a[N_IN:] * delta[N_IN:])[:, None] * x[None, :]) / mw
        return jnp.concatenate([xd, wd, xdd, wdd.ravel()])

    return rhs


def diffrax_solver(n: int, values: dict, grid: np.ndarray):
    """The jitted diffrax solve ``y0 -> Y`` on the grid."""
    term = diffrax.ODETerm(jax_rhs_factory(n, values))
    ts = jnp.asarray(grid)

    @jax.jit
    def solve(y0):
        sol = diffrax.diffeqsolve(
            term, diffrax.Dopri5(), t0=float(grid[0]), t1=float(grid[-1]), dt0=None, y0=y0,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
            max_steps=1_000_000)
        return sol.ys

    return solve


def stats(ts: list[float]) -> str:
    return f"{np.median(ts):8.4f} ({min(ts):.4f}-{max(ts):.4f})"


def run_size(n: int, n_points: int, repeats: int, rhs_times: bool) -> None:
    values, y0, grid, f_np, ref, t_ref, scale = reference(n, n_points)

    def err(Y) -> float:
        return float(np.abs(np.asarray(Y) - ref).max() / scale)

    # -- builds -------------------------------------------------------------------------
    t0 = time.perf_counter()
    _net, pr = dense_problem(n)
    t_declare = time.perf_counter() - t0
    t0 = time.perf_counter()
    ns = ca_.derive_network(pr)
    t_derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    system = compile_system(ns)
    t_compile = time.perf_counter() - t0

    def ours():
        sim = simulate(system, grid, y0, values, rtol=RTOL, atol=ATOL, method="dopri",
                       max_steps=10**6)
        _ = sim.max_drift  # the drift report, read
        return sim

    t0 = time.perf_counter()
    sim = ours()
    build = {"ours dopri": t_compile + sim.stats["build_time"]}
    errors = {"ours dopri": err(sim.y)}
    drift = sim.max_drift
    steps = {"ours dopri": sim.stats["nsteps"]}
    del sim
    methods = {"ours dopri": ours,
               "scipy RK45": lambda: solve_ivp(f_np, (0, T_END), y0, t_eval=grid,
                                               method="RK45", rtol=RTOL, atol=ATOL)}
    sol = methods["scipy RK45"]()
    build["scipy RK45"], errors["scipy RK45"] = 0.0, err(sol.y.T)
    steps["scipy RK45"] = (sol.nfev - 2) // 6
    del sol
    if jax is not None:
        solve = diffrax_solver(n, values, grid)
        y0j = jnp.asarray(y0)
        t0 = time.perf_counter()
        Yj = solve(y0j).block_until_ready()
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        Yj = solve(y0j).block_until_ready()
        build["diffrax Dopri5"] = t_first - (time.perf_counter() - t0)
        errors["diffrax Dopri5"] = err(Yj)
        steps["diffrax Dopri5"] = float("nan")
        del Yj
        methods["diffrax Dopri5"] = lambda: solve(y0j).block_until_ready()

    # -- interleaved runs ---------------------------------------------------------------
    runs: dict[str, list[float]] = {k: [] for k in methods}
    walls: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            w0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            runs[name].append(time.process_time() - c0)
            walls[name].append(time.perf_counter() - w0)
            del out
    print(f"-- n = {n}: {y0.size} states; declare {t_declare:.3f} s, derive "
          f"{t_derive:.3f} s (ours); reference {t_ref:.1f} s; max drift |G| of ours "
          f"{drift:.1e}")
    ours_run = np.median(runs["ours dopri"])
    for name in methods:
        r = runs[name]
        ratio = np.median(r) / ours_run
        lo = min(a / b for a, b in zip(r, runs["ours dopri"]))
        hi = max(a / b for a, b in zip(r, runs["ours dopri"]))
        print(f"{n:>4} {name:<16} {build[name]:>7.3f} {stats(r)} {errors[name]:>8.1e} "
              f"{ratio:>6.2f} ({lo:.2f}-{hi:.2f})  wall {stats(walls[name])}", flush=True)
    if jax is None:
        print(f"{n:>4} diffrax Dopri5   skipped: {_JAX_MISSING} "
              "(pip install 'cognitive_action[bench]')")
    if rhs_times:
        p = system.parameter_vector(values)
        f_ours = buffered(system.rhs, 0.3, y0, p)
        cands = {"ours (buffer)": f_ours, "numpy": lambda: f_np(0.3, y0)}
        if jax is not None:
            fj = jax.jit(jax_rhs_factory(n, values))
            yj = jnp.asarray(y0)
            fj(0.3, yj, None).block_until_ready()
            cands["jax (jit)"] = lambda: fj(0.3, yj, None).block_until_ready()
        d = np.abs(f_ours() - f_np(0.3, y0)).max()
        res = {k: [] for k in cands}
        for _ in range(5):  # interleaved
            for k, f in cands.items():
                res[k].append(min(timeit.repeat(f, number=20, repeat=3)) / 20)
        print(f"{n:>4} one RHS: " + ", ".join(
            f"{k} {np.median(v) * 1e3:.3f} ms ({min(v) * 1e3:.3f}-{max(v) * 1e3:.3f})"
            for k, v in res.items()) + f"; max |ours - numpy| {d:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--points", type=int, default=1000, help="output points")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats (>= 5)")
    ap.add_argument("--rhs", action="store_true", help="also time one right-hand side")
    args = ap.parse_args()
    peers = (f"JAX {jax.__version__}, diffrax {diffrax.__version__}" if jax is not None
             else "JAX/diffrax not installed")
    print(f"CasADi {ca.__version__}, NumPy {np.__version__}, {peers}; t in [0, {T_END:g}], "
          f"{args.points} output points; rtol {RTOL:g}, atol {ATOL:g}; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}; load {os.getloadavg()[0]:.2f}")
    print("run: CPU time of the process, median (min-max) of interleaved repeats, s (wall "
          "time at the end of the line: the machine is shared); error: max|y - y_ref| / "
          "max|y_ref|; ratio: run / ours (> 1: ours faster), (min-max of per-repeat "
          "ratios)")
    print(f"{'n':>4} {'method':<16} {'build':>7} {'run (min-max)':>26} {'error':>8} "
          f"{'ratio':>6}")
    if jax is None:
        print(f"diffrax skipped: {_JAX_MISSING}; install the bench extra "
              "(pip install 'cognitive_action[bench]')")
    for n in args.sizes:
        run_size(n, args.points, args.repeats, args.rhs)


if __name__ == "__main__":
    main()
