"""Benchmark: whole integrations of the learning system, ours against SciPy.

The system is bench_compile.py's finite-mass learning law (eq. 8-10) on a dense
recurrent network of ``n`` neurons (states ``2(n + n(n-2))``), ``t ∈ [0, 10]``, from a
consistent state (``x`` the fixed point ``x = tanh(W x)``, velocities 0).

Side by side, in one process, build and run apart, each with its error against a tight
reference (SciPy DOP853, rtol 1e-11, on the hand-written NumPy RHS), as
``max |y - y_ref| / max |y_ref|`` over the output grid:

- ``ours rk4 xK``: the network route's compiled RHS (MX matrix operations, eq. 10 by an
  LDLᵀ node) inside a fixed-step RK4 whose whole trajectory is one CasADi function
  (``mapaccum`` over output intervals of ``K`` steps each, a ``fold``); no Jacobian
  sparsity pass, called once on the initial state;
- ``ours erk``: CasADi's own adaptive integrator through ``simulate`` (its construction
  computes the full Jacobian sparsity; skipped above ``--erk-max``);
- ``RK45``, ``LSODA``, ``BDF``: ``scipy.integrate.solve_ivp`` with the NumPy RHS at
  rtol 1e-6, atol 1e-9 (BDF and LSODA estimate dense Jacobians by differences: skipped
  above ``--implicit-max`` neurons).

Run:  python benchmarks/bench_integrate.py            # n = 10, 50, 200
      python benchmarks/bench_integrate.py --sizes 10 50
"""

from __future__ import annotations

import argparse
import time

import casadi as ca
import numpy as np
from bench_compile import N_IN, VALUES, dense_problem, numpy_rhs_factory
from scipy.integrate import solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate

T_END = 10.0


def consistent_state(n: int, seed: int = 0):
    """``x = tanh(W x)`` on the hidden neurons (fixed-point iteration), inputs fixed,
    every velocity 0 (consistent: with Ẇ = 0 and constant inputs, Ġ = 0 gives ẋ = 0)."""
    rng = np.random.default_rng(seed)
    nh = n - N_IN
    w = rng.normal(size=(nh, n)) * 0.5 / np.sqrt(n)
    W = np.zeros((n, n))
    W[N_IN:] = w
    x = np.zeros(n)
    x[:N_IN] = [VALUES["e0"], VALUES["e1"]]
    for _ in range(200):
        x[N_IN:] = np.tanh(W @ x)[N_IN:]
    return np.concatenate([x, w.ravel(), np.zeros(n), np.zeros(nh * n)])


def rk4_trajectory(rhs: ca.Function, n_y: int, n_p: int, n_intervals: int, dt: float,
                   steps: int) -> ca.Function:
    """The whole fixed-step RK4 trajectory as one CasADi function (y0, p) -> Y."""
    y, p, t = ca.MX.sym("y", n_y), ca.MX.sym("p", n_p), ca.MX.sym("t")
    h = dt / steps
    k1 = rhs(t, y, p)
    k2 = rhs(t + h / 2, y + h / 2 * k1, p)
    k3 = rhs(t + h / 2, y + h / 2 * k2, p)
    k4 = rhs(t + h, y + h * k3, p)
    step = ca.Function("step", [y, t, p], [y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + h])
    interval = step.fold(steps)  # (y, t, p) -> (y after `steps`, t)
    yi, ti = ca.MX.sym("y", n_y), ca.MX.sym("t")
    y1, t1 = interval(yi, ti, p)
    acc = ca.Function("interval", [yi, ti, p], [y1, t1]).mapaccum(n_intervals)
    y0 = ca.MX.sym("y0", n_y)
    Y, _ = acc(y0, 0.0, p)
    return ca.Function("trajectory", [y0, p], [Y])


def run_size(n: int, n_points: int, erk_max: int, implicit_max: int) -> list[tuple]:
    rows = []
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n)
    grid = np.linspace(0.0, T_END, n_points)
    f_np = numpy_rhs_factory(n, values)
    t0 = time.perf_counter()
    ref = solve_ivp(f_np, (0, T_END), y0, t_eval=grid, method="DOP853", rtol=1e-11,
                    atol=1e-12).y.T
    t_ref = time.perf_counter() - t0
    scale = np.abs(ref).max()

    def err(Y):
        return float(np.abs(Y - ref).max() / scale)

    # ours: network route + one-function RK4 trajectory
    t0 = time.perf_counter()
    _net, pr = dense_problem(n)
    t_declare = time.perf_counter() - t0
    t0 = time.perf_counter()
    system = compile_system(ca_.derive_network(pr))
    t_compile = time.perf_counter() - t0
    p = system.parameter_vector({k: values[k] for k in system.parameters})
    for steps in (1, 2, 4):
        t0 = time.perf_counter()
        traj = rk4_trajectory(system.rhs, system.n_states, p.size, n_points - 1,
                              T_END / (n_points - 1), steps)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        Y = np.asarray(traj(y0, p)).T
        t_run = time.perf_counter() - t0
        Y = np.vstack([y0, Y])
        rows.append((n, f"ours rk4 x{steps}", t_declare, t_compile + t_build, t_run, err(Y)))
    if n <= erk_max:
        t0 = time.perf_counter()
        sim = simulate(system, grid, y0, values, method="erk", rtol=1e-6, atol=1e-9)
        total = time.perf_counter() - t0
        rows.append((n, "ours erk (CasADi)", t_declare, t_compile + sim.stats["build_time"],
                     sim.stats["run_time"], err(sim.y)))
        del total
    for method in ("RK45", "LSODA", "BDF"):
        if method != "RK45" and n > implicit_max:
            rows.append((n, method, 0.0, 0.0, float("nan"), float("nan")))
            continue
        t0 = time.perf_counter()
        sol = solve_ivp(f_np, (0, T_END), y0, t_eval=grid, method=method, rtol=1e-6,
                        atol=1e-9)
        t_run = time.perf_counter() - t0
        rows.append((n, f"scipy {method}", 0.0, 0.0, t_run, err(sol.y.T)))
    rows.append((n, "reference DOP853 1e-11", 0.0, 0.0, t_ref, 0.0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--erk-max", type=int, default=10,
                    help="largest n for CasADi's erk (its construction is slow)")
    ap.add_argument("--implicit-max", type=int, default=50,
                    help="largest n for SciPy's LSODA and BDF (dense difference Jacobians)")
    args = ap.parse_args()
    print(f"CasADi {ca.__version__}; t in [0, {T_END:g}]; errors relative to DOP853 1e-11")
    print(f"{'n':>4} {'method':<24} {'declare':>8} {'build':>8} {'run':>9} {'error':>9} "
          f"{'run/RK45':>9}")
    for n in args.sizes:
        n_points = 1000 if n <= 50 else 101
        rows = run_size(n, n_points, args.erk_max, args.implicit_max)
        rk45 = next(r[4] for r in rows if r[1] == "scipy RK45")
        print(f"-- n = {n}: {2 * (n + n * (n - N_IN))} states, {n_points} output points")
        for (_n, name, td, tb, tr, e) in rows:
            if np.isnan(tr):
                print(f"{n:>4} {name:<24} {'skipped (dense Jacobian by differences)':>48}")
                continue
            print(f"{n:>4} {name:<24} {td:>8.3f} {tb:>8.3f} {tr:>9.4f} {e:>9.2e} "
                  f"{tr / rk45:>9.3f}")


if __name__ == "__main__":
    main()
