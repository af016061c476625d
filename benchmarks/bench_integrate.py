"""Benchmark: whole integrations of the learning system, ours against SciPy.

The system is bench_compile.py's finite-mass learning law (eq. 8-10) on a dense
recurrent network of ``n`` neurons (states ``2(n + n(n-2))``), ``t ∈ [0, 10]``, 1000
output points, from a consistent state (``x`` the fixed point ``x = tanh(W x)``,
velocities 0).

Side by side, in one process, build and run apart, each with its error against a tight
reference (SciPy DOP853, rtol 1e-11, atol 1e-12, on the hand-written NumPy RHS), as
``max |y - y_ref| / max |y_ref|`` over the output grid. Every adaptive method runs at
rtol 1e-6, atol 1e-9:

- ``ours dopri``: ``simulate(method="dopri")``, our Dormand-Prince 5(4) whose attempted
  step is one compiled CasADi function called through buffers (compile.explicit), dense
  output; the same pair and step control as SciPy's RK45;
- ``ours cvodes bdf/gmres``: CVODES BDF, Newton with matrix-free GMRES on the
  ``MatrixFreeRHS`` wrapper (compile.matrix_free: forward-AD Jacobian-vector products,
  no Jacobian sparsity pass at construction);
- ``ours cvodes adams``, ``ours erk``: CVODES Adams (functional iterations) and CasADi's
  own RK 5(4), on the same wrapper above 300 states;
- ``ours rk4 mapaccum``: (``--rk4``) a fixed-step RK4 whose whole trajectory is one
  MX ``mapaccum`` (one step per output interval), the first attempt at avoiding
  integrator construction;
- ``scipy RK45 / LSODA / BDF``: ``solve_ivp`` with the NumPy RHS (LSODA and BDF estimate
  dense Jacobians by differences: skipped above ``--implicit-max`` neurons, where one
  Jacobian is 80k x 80k).

"build" is compile_system plus the integrator's construction (declaring and deriving the
problem is reported apart); SciPy has nothing to build. "run" for ours is the wall time
of the ``simulate`` call minus its build: the integration plus everything a user gets
with it that SciPy does not compute (the initial-state check, and ``G``, ``Ġ`` at every
output point for the drift report).

Run:  python benchmarks/bench_integrate.py            # n = 10, 50, 200
      python benchmarks/bench_integrate.py --sizes 10 50
"""

from __future__ import annotations

import os

# One BLAS thread for NumPy and CasADi alike unless the caller says otherwise: on the
# shared 2-core machine a second OpenBLAS thread made NumPy's n = 200 right-hand side
# 35x slower (72 ms instead of 2 ms per call) while other jobs ran.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
from bench_compile import N_IN, VALUES, dense_problem, numpy_rhs_factory  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import cognitive_action as ca_  # noqa: E402
from cognitive_action.compile import compile_system, simulate  # noqa: E402

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


OURS = (  # (label, simulate options)
    ("ours dopri", {"method": "dopri"}),
    ("ours cvodes bdf/gmres", {"method": "cvodes", "newton": "gmres"}),
    ("ours cvodes adams", {"method": "adams"}),
    ("ours erk", {"method": "erk"}),
)
RTOL, ATOL = 1e-6, 1e-9


def reference(n: int, n_points: int) -> tuple:
    """The shared setup of a size: parameter values, consistent initial state, output
    grid, the NumPy right-hand side, the tight SciPy DOP853 reference (rtol 1e-11) on
    that grid, its time, and its scale ``max |y_ref|`` (also used by bench_peers.py)."""
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n)
    grid = np.linspace(0.0, T_END, n_points)
    f_np = numpy_rhs_factory(n, values)
    t0 = time.perf_counter()
    ref = solve_ivp(f_np, (0, T_END), y0, t_eval=grid, method="DOP853", rtol=1e-11,
                    atol=1e-12).y.T
    t_ref = time.perf_counter() - t0
    return values, y0, grid, f_np, ref, t_ref, np.abs(ref).max()


def run_size(n: int, n_points: int, implicit_max: int, rk4: bool) -> list[tuple]:
    rows = []
    values, y0, grid, f_np, ref, t_ref, scale = reference(n, n_points)

    def err(Y):
        return float(np.abs(Y - ref).max() / scale)

    t0 = time.perf_counter()
    _net, pr = dense_problem(n)
    ns = ca_.derive_network(pr)
    t_declare = time.perf_counter() - t0
    for name, opts in OURS:
        t0 = time.perf_counter()
        system = compile_system(ns)  # compiled afresh: nothing cached between methods
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim = simulate(system, grid, y0, values, rtol=RTOL, atol=ATOL, max_steps=10**6,
                       **opts)
        t_sim = time.perf_counter() - t0
        # run = everything simulate() does but building: the integration, the checks of
        # the initial state and of the output, |G| and |Ġ| at every output point
        rows.append((n, name, t_declare, t_compile + sim.stats["build_time"],
                     t_sim - sim.stats["build_time"], err(sim.y)))
        del sim
    if rk4:
        t0 = time.perf_counter()
        system = compile_system(ns)
        p = system.parameter_vector({k: values[k] for k in system.parameters})
        traj = rk4_trajectory(system.rhs, system.n_states, p.size, n_points - 1,
                              T_END / (n_points - 1), 1)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        Y = np.vstack([y0, np.asarray(traj(y0, p)).T])
        t_run = time.perf_counter() - t0
        rows.append((n, "ours rk4 mapaccum", t_declare, t_build, t_run, err(Y)))
        del Y
    for method in ("RK45", "LSODA", "BDF"):
        if method != "RK45" and n > implicit_max:
            rows.append((n, f"scipy {method}", 0.0, 0.0, float("nan"), float("nan")))
            continue
        t0 = time.perf_counter()
        sol = solve_ivp(f_np, (0, T_END), y0, t_eval=grid, method=method, rtol=RTOL,
                        atol=ATOL)
        t_run = time.perf_counter() - t0
        rows.append((n, f"scipy {method}", 0.0, 0.0, t_run, err(sol.y.T)))
        del sol
    rows.append((n, "reference DOP853 1e-11", 0.0, 0.0, t_ref, 0.0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--points", type=int, default=1000, help="output points")
    ap.add_argument("--implicit-max", type=int, default=50,
                    help="largest n for SciPy's LSODA and BDF (dense difference Jacobians)")
    ap.add_argument("--rk4", action="store_true",
                    help="also the fixed-step RK4 as one MX mapaccum (slow to build)")
    args = ap.parse_args()
    print(f"CasADi {ca.__version__}; t in [0, {T_END:g}], {args.points} output points; "
          f"rtol {RTOL:g}, atol {ATOL:g}; errors max|y - y_ref| / max|y_ref| against "
          "SciPy DOP853 rtol 1e-11, atol 1e-12; OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"{'n':>4} {'method':<24} {'derive':>7} {'build':>7} {'run':>8} {'error':>8} "
          f"{'RK45/run':>9}")
    for n in args.sizes:
        rows = run_size(n, args.points, args.implicit_max, args.rk4)
        rk45 = next(r[4] for r in rows if r[1] == "scipy RK45")
        print(f"-- n = {n}: {2 * (n + n * (n - N_IN))} states")
        for (_n, name, td, tb, tr, e) in rows:
            if np.isnan(tr):
                print(f"{n:>4} {name:<24} skipped: a dense difference Jacobian of "
                      f"{2 * (n + n * (n - N_IN))}^2 entries per Newton matrix")
                continue
            print(f"{n:>4} {name:<24} {td:>7.3f} {tb:>7.3f} {tr:>8.4f} {e:>8.1e} "
                  f"{rk45 / tr:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
