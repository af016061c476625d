"""Benchmark: one right-hand side of eq. (8)-(10), CasADi-only solve against NumPy's kernel.

The dense learning system of bench_integrate.py (``dense_problem(n)``, the consistent
state ``consistent_state(n)``, the parameter values of bench_compile.py) is compiled
twice from one derived network:

- ``casadi``: eq. (10)'s Schur matrix ``S = L Lᵀ/m_x + diag(j_W)/m_W`` formed by
  CasADi's BLAS plugin (``dgemm``) and solved by the CasADi ``Linsol`` plugin that was
  the default before the kernel (``ldl`` below 100 non-input neurons, ``lapacklu`` from
  100);
- ``kernel``: ``linear_solver="scipy_cholesky"`` (``dsyrk`` + ``dpotrf`` + ``dpotrs`` of
  NumPy/SciPy's OpenBLAS in a CasADi Callback, :mod:`cognitive_action.compile.dense_kernels`);

and both are timed against the hand-written NumPy right-hand side of bench_compile.py
(``numpy_rhs_factory``: full ``n × n`` matrix, ``np.linalg.solve``). Ours are called
through preallocated buffers (bench_compile's ``buffered``). ``--step`` also times one
Dormand-Prince step (:func:`~cognitive_action.compile.explicit.dopri_step_function`) of
each.

Timing: wall time per call, the minimum of ``timeit`` over ``--number`` calls within a
round, rounds interleaved (casadi, kernel, numpy, casadi, ...), ``--repeats`` rounds;
reported as median (min-max) over rounds. One BLAS thread (the environment variables
are set before NumPy and CasADi are imported). The script also checks that the three
right-hand sides agree (max abs difference).

The ``casadi`` row runs this checkout's graph; run the script against a checkout from
before the kernel (``PYTHONPATH=<old checkout> python benchmarks/bench_rhs_kernel.py``)
for that checkout's ``casadi`` row (the kernel row is then skipped).

Run:  python benchmarks/bench_rhs_kernel.py                 # n = 50, 100, 200, 7 rounds
      python benchmarks/bench_rhs_kernel.py --sizes 50 --repeats 5 --step
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402
from bench_compile import VALUES, buffered, dense_problem, numpy_rhs_factory  # noqa: E402
from bench_integrate import consistent_state  # noqa: E402

import cognitive_action as ca_  # noqa: E402
from cognitive_action.compile import compile_system  # noqa: E402
from cognitive_action.compile.explicit import dopri_step_function  # noqa: E402

try:
    from cognitive_action.compile.dense_kernels import SPD_KERNEL  # noqa: E402
except ImportError:  # a checkout from before the kernel: the CasADi solve and NumPy only
    SPD_KERNEL = None


def step_closure(system, y0: np.ndarray, p: np.ndarray):
    """One dopri step through buffers (h = 1e-3, tolerances of bench_peers)."""
    step = dopri_step_function(system.rhs, system.n_states, p.size)
    k1 = np.asarray(system.rhs(0.0, y0, p)).ravel()
    fb, evaluate = step.buffer()
    args = [np.array([0.3]), np.ascontiguousarray(y0), np.array([1e-3]), p, k1,
            np.array([1e-6]), np.array([1e-9])]
    outs = [np.zeros(step.nnz_out(i)) for i in range(step.n_out())]
    for i, a in enumerate(args):
        fb.set_arg(i, memoryview(a))
    for i, o in enumerate(outs):
        fb.set_res(i, memoryview(o))

    def run():
        evaluate()
        return outs[0]

    run.keep = (fb, args, outs)
    return run


def stats(ts: list[float]) -> str:
    ms = np.asarray(ts) * 1e3
    return f"{np.median(ms):8.4f} ({ms.min():.4f}-{ms.max():.4f})"


def run_size(n: int, repeats: int, number: int, with_step: bool) -> list[str]:
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n)
    f_np = numpy_rhs_factory(n, values)
    t0 = time.perf_counter()
    _net, pr = dense_problem(n)
    ns = ca_.derive_network(pr)
    t_declare = time.perf_counter() - t0
    n_hidden = len(ns.network.order) - len(ns.input_index)
    old_solver = "lapacklu" if n_hidden >= 100 else "ldl"
    systems = {}
    variants = [("casadi " + old_solver, old_solver)]
    if SPD_KERNEL is not None:
        variants.append(("kernel", SPD_KERNEL))
    for label, solver in variants:
        t0 = time.perf_counter()
        systems[label] = compile_system(ns, linear_solver=solver)
        print(f"n = {n}: compiled {label} in {time.perf_counter() - t0:.3f} s "
              f"(declare + derive {t_declare:.2f} s)", flush=True)
    sys0 = next(iter(systems.values()))
    p = sys0.parameter_vector({k: values[k] for k in sys0.parameters})
    calls = {label: buffered(s.rhs, 0.3, y0, p) for label, s in systems.items()}
    calls["numpy"] = lambda: f_np(0.3, y0)
    outs = {label: np.array(f(), copy=True) for label, f in calls.items()}
    ref = outs["numpy"]
    diff = {label: float(np.abs(o - ref).max()) for label, o in outs.items()}
    steps = {"dopri step " + label: step_closure(s, y0, p)
             for label, s in systems.items()} if with_step else {}
    times: dict[str, list[float]] = {label: [] for label in [*calls, *steps]}
    for _ in range(repeats):  # interleaved rounds
        for label, f in calls.items():
            times[label].append(min(timeit.repeat(f, number=number, repeat=3)) / number)
        for label, f in steps.items():
            times[label].append(min(timeit.repeat(f, number=max(1, number // 5),
                                                  repeat=3)) / max(1, number // 5))
    rows = []
    base = np.median(times["numpy"])
    for label in calls:
        rows.append(f"| {n} ({sys0.n_states:,}) | RHS {label} | {stats(times[label])} | "
                    f"{np.median(times[label]) / base:.2f} | {diff[label]:.1e} |")
    for label in steps:
        rows.append(f"| {n} ({sys0.n_states:,}) | {label} | {stats(times[label])} | – | – |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (>= 5)")
    ap.add_argument("--number", type=int, default=50, help="calls per timeit")
    ap.add_argument("--step", action="store_true", help="also time one dopri step")
    args = ap.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    rows = []
    for n in args.sizes:
        rows += run_size(n, args.repeats, args.number, args.step)
    print(f"\nper call, ms, median (min-max) of {args.repeats} interleaved rounds; "
          "ratio = median / NumPy's median; diff = max |ẏ - ẏ_numpy|")
    print("| n (states) | what | ms | / NumPy | diff |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
