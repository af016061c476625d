"""Benchmark: right-hand-side evaluation of the learning system, CasADi against NumPy.

The system is the finite-mass learning law of eq. (8)-(10) on a dense recurrent network:
``n`` neurons, 2 of them inputs (held at constant values), every other neuron receiving
arcs from all ``n`` neurons (self-loops included), ``tanh`` activations, time weight
``ϖ = exp(θ t)``, squared error on the last neuron. States: ``x, W, ẋ, Ẇ``, i.e.
``2 (n + n (n - 2))`` (4,704 at n = 50). (Issue 3's "learning system" with ``n + n + n²``
states is a reduced ``x, δ, W`` system of eq. 20, which compiles through
``compile.reduced`` or, with finite masses, the speed-c template route
(``bench_speed_network.py``, no linear solve); the finite-mass system here is the harder
one: it has eq. (10)'s dense ``n × n`` solve inside.)

Side by side, in one process, at one random state:

- ``casadi-net``: the network route (MX matrix operations from per-neuron templates,
  eq. 10 by an LDLᵀ linear-solve node), called through ``Function.buffer()``;
- ``casadi-net-call``: the same function through the ordinary call (argument and output
  conversion included, as most users call it);
- ``c-net``: the same network-route function as generated C (``codegen_system``,
  ``cc -O2``, a fresh cache directory so the build time includes the compiler), through a
  buffer, its dense products calling the OpenBLAS of CasADi's wheel (``dgemm_``); the
  build column is derive + translate + generate + compile;
- ``c-net-loops``: the same without BLAS (CasADi's reference loops, self-contained C);
- ``casadi-generic``: the generic route (scalar SX graph of the mass-matrix form, sparse
  QR linear-solve node), through a buffer;
- ``numpy``: a hand-written NumPy right-hand side (dense ``W``, ``np.linalg.solve``);
  the reference every other column is checked against (max abs difference printed);
- ``engine-numpy``: the engine's ``NetworkSystem.evaluate`` (NumPy, SciPy sparse and
  lambdified templates);
- ``lambdify``: the naive SymPy route: ``sympy.lambdify`` of every mass-matrix entry and
  forcing term, then a sparse LU solve (SciPy ``splu``).

Build times are reported apart from evaluation times. GFLOP/s divides one flop count by
each time: the dominant operations of the hand-written algorithm, ``J_x J_xᵀ`` (2n³), a
Cholesky-type factorization and solve (n³/3 + 2n²) and the ten matrix-vector-sized
products and updates of eq. (8)-(10) (about 20 n²) — the same count for every variant,
so the column ranks them like the times do and says how far each is from the machine's
peak. Run:

    python benchmarks/bench_compile.py            # n = 10, 50
    python benchmarks/bench_compile.py --sizes 10 --no-lambdify-above 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
import timeit

import networkx as nx
import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import sympy as sp

import cognitive_action as ca_
from cognitive_action.compile import compile_system
from cognitive_action.compile.codegen import codegen_system
from cognitive_action.derive.network import NetworkState

N_IN = 2
VALUES = {"m_x": 0.7, "m_W": 1.3, "theta": 0.5, "e0": 0.4, "e1": -0.3}


def dense_problem(n: int):
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(N_IN, n) for k in range(n))
    net = ca_.Network(g, list(range(N_IN)), "tanh", outputs=[n - 1])
    theta = sp.Symbol("theta", real=True)
    return net, net.problem(weight=sp.exp(theta * ca_.t), parameters=[theta])


def numpy_rhs_factory(n: int, values: dict):
    """The hand-written NumPy right-hand side of eq. (8)-(10) for the dense network."""
    mx, mw, th = values["m_x"], values["m_W"], values["theta"]
    yt = values[f"y{n - 1}"]
    nh = n - N_IN
    ne = nh * n

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x, w = y[:n], y[n:n + ne]
        xd, wd = y[n + ne:2 * n + ne], y[2 * n + ne:]
        W = np.zeros((n, n))
        Wd = np.zeros((n, n))
        W[N_IN:] = w.reshape(nh, n)
        Wd[N_IN:] = wd.reshape(nh, n)
        a = W @ x
        ad = Wd @ x + W @ xd
        tha = np.tanh(a)
        s = 1.0 - tha * tha
        g_a = -s
        g_a[:N_IN] = 0.0
        Jx = np.eye(n) + g_a[:, None] * W
        h = 2.0 * ad * ad * s * tha + 2.0 * g_a * (Wd @ xd)
        h[:N_IN] = 0.0  # constant inputs: -ë = 0
        fx = -mx * th * xd
        fx[-1] -= x[-1] - yt
        fw = -mw * th * wd
        Fm = fw.reshape(nh, n)
        jw = np.zeros(n)
        jw[N_IN:] = g_a[N_IN:] ** 2 * (x @ x)
        A = Jx @ Jx.T / mx + np.diag(jw) / mw
        b = Jx @ fx / mx + h
        b[N_IN:] += g_a[N_IN:] * (Fm @ x) / mw
        delta = np.linalg.solve(A, b)
        xdd = (fx - Jx.T @ delta) / mx
        wdd = (Fm - (g_a[N_IN:] * delta[N_IN:])[:, None] * x[None, :]) / mw
        return np.concatenate([xd, wd, xdd, wdd.ravel()])

    return rhs


def buffered(fn, t: float, y: np.ndarray, p: np.ndarray):
    """An evaluation closure on preallocated buffers (kept alive by the closure)."""
    fb, evaluate = fn.buffer()
    tb = np.array([t])
    yb = np.ascontiguousarray(y)
    pb = np.ascontiguousarray(p)
    out = np.zeros(fn.nnz_out(0))
    for i, a in enumerate((tb, yb, pb)):
        fb.set_arg(i, memoryview(a))
    fb.set_res(0, memoryview(out))

    def run():
        evaluate()
        return out

    run.keep = (fb, tb, yb, pb, out)  # the buffers must outlive every call
    return run


def lambdify_rhs(el, problem):
    """The naive SymPy route: lambdify every entry, then a sparse LU solve."""
    col = {u: j for j, u in enumerate(el.unknowns)}
    rows, cols, vals = [], [], []
    for i, r in enumerate(el.mass_matrix.rows):
        for u, e in r.items():
            rows.append(i)
            cols.append(col[u])
            vals.append(e)
    args = [ca_.t, *el.states, *sorted(problem.parameters, key=str), *problem.signals]
    signal_jets = sorted({s for e in [*vals, *el.forcing] for s in e.free_symbols} - set(args),
                         key=str)
    args += signal_jets  # e0_ddot, ...: zero for constant inputs
    fM = sp.lambdify(args, vals, "numpy")
    ff = sp.lambdify(args, el.forcing, "numpy")
    n_u = len(el.unknowns)
    nq = len(el.coordinates)
    rows_a, cols_a = np.array(rows), np.array(cols)

    def rhs(t, y, pvals):
        a = [t, *y, *pvals, *([0.0] * len(signal_jets))]
        M = sps.csc_matrix((np.asarray(fM(*a), dtype=float), (rows_a, cols_a)),
                           shape=(n_u, n_u))
        f = np.asarray(ff(*a), dtype=float)
        u = spla.splu(M).solve(f)
        return np.concatenate([y[nq:2 * nq], u[:nq]])

    return rhs


def per_call(fn, min_time: float = 0.3) -> float:
    """Seconds per call: best of 5 repeats of a loop lasting about ``min_time``."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / 5 or n > 1e6:
            break
        n *= 4
    return min(timeit.repeat(fn, number=n, repeat=5)) / n


def run_size(n: int, do_lambdify: bool, do_generic: bool, cache_dir: str | None) -> dict:
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    net, pr = dense_problem(n)
    t_problem = time.perf_counter() - t0
    values = VALUES | {f"y{n - 1}": 0.25}
    rng = np.random.default_rng(0)

    t0 = time.perf_counter()
    ns = ca_.derive_network(pr)
    t_derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    sysn = compile_system(ns)
    out["casadi-net"] = {"build": t_derive + (time.perf_counter() - t0)}
    ny = sysn.n_states
    y = rng.normal(size=ny) * 0.3
    nu = len(net.neurons)
    y[:N_IN] = [values["e0"], values["e1"]]  # inputs on their constraints
    y[nu + len(net.weights):nu + len(net.weights) + N_IN] = 0.0
    t = 0.2
    p = sysn.parameter_vector({k: values[k] for k in sysn.parameters})

    ref_fn = numpy_rhs_factory(n, values)
    ref = ref_fn(t, y)
    out["numpy"] = {"time": per_call(lambda: ref_fn(t, y)), "err": 0.0, "build": 0.0}

    call = buffered(sysn.rhs, t, y, p)
    out["casadi-net"] |= {"time": per_call(call), "err": float(np.abs(call() - ref).max())}
    out["casadi-net-call"] = {"time": per_call(lambda: sysn.rhs(t, y, p).full()),
                              "err": out["casadi-net"]["err"],
                              "build": out["casadi-net"]["build"]}
    if cache_dir is not None:
        t0 = time.perf_counter()
        sysc = codegen_system(sysn, cache_dir=cache_dir)
        callc = buffered(sysc.rhs, t, y, p)
        out["c-net"] = {"build": out["casadi-net"]["build"] + time.perf_counter() - t0,
                        "time": per_call(callc), "err": float(np.abs(callc() - ref).max()),
                        "bytes": sysc.library.source_bytes}
        t0 = time.perf_counter()
        sysl = codegen_system(sysn, cache_dir=cache_dir, blas=False)
        calll = buffered(sysl.rhs, t, y, p)
        out["c-net-loops"] = {"build": out["casadi-net"]["build"] + time.perf_counter() - t0,
                              "time": per_call(calll),
                              "err": float(np.abs(calll() - ref).max())}

    state = NetworkState(x=y[:nu], w=y[nu:nu + len(net.weights)],
                         x_dot=y[nu + len(net.weights):2 * nu + len(net.weights)],
                         w_dot=y[2 * nu + len(net.weights):], t=t)
    vals = values | {"e0_ddot": 0.0, "e1_ddot": 0.0}

    def engine():
        ev = ns.evaluate(state, vals)
        return np.concatenate([state.x_dot, state.w_dot, ev.accelerations_x,
                               ev.accelerations_w])

    out["engine-numpy"] = {"time": per_call(engine), "err": float(np.abs(engine() - ref).max()),
                           "build": t_derive}

    el = None
    if do_generic or do_lambdify:
        t0 = time.perf_counter()
        el = ca_.euler_lagrange(pr)
        t_el = time.perf_counter() - t0
    if do_generic:
        t0 = time.perf_counter()
        sysg = compile_system(el)
        callg = buffered(sysg.rhs, t, y, p)
        out["casadi-generic"] = {"build": t_el + time.perf_counter() - t0,
                                 "time": per_call(callg),
                                 "err": float(np.abs(callg() - ref).max())}
    if do_lambdify:
        t0 = time.perf_counter()
        lam = lambdify_rhs(el, pr)
        t_lam = time.perf_counter() - t0
        pvals = [values[str(s)] for s in sorted(pr.parameters, key=str)] + \
                [values[str(s)] for s in pr.signals]
        out["lambdify"] = {"build": t_el + t_lam, "time": per_call(lambda: lam(t, y, pvals)),
                           "err": float(np.abs(lam(t, y, pvals) - ref).max())}
    return {"n": n, "states": ny, "problem": t_problem, "results": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--no-lambdify-above", type=int, default=50,
                    help="skip the lambdify route above this n (it takes ~100 s to build at 50)")
    ap.add_argument("--no-generic-above", type=int, default=50)
    ap.add_argument("--no-c", action="store_true", help="skip generated C")
    args = ap.parse_args()
    order = ["numpy", "casadi-net", "casadi-net-call", "c-net", "c-net-loops",
             "casadi-generic", "engine-numpy", "lambdify"]
    tmp = None if args.no_c else tempfile.mkdtemp(prefix="bench-compile-")
    print(f"RHS evaluation, dense recurrent network, finite masses (eq. 8-10); one process; "
          f"{time.strftime('%Y-%m-%d')}")
    for n in args.sizes:
        r = run_size(n, n <= args.no_lambdify_above, n <= args.no_generic_above, tmp)
        res = r["results"]
        base = res["numpy"]["time"]
        print(f"\nn = {n}: {r['states']} states (Network.problem took {r['problem']:.2f} s)")
        flops = 2 * n**3 + n**3 / 3 + 22 * n**2
        print(f"  {'variant':16s} {'build [s]':>10s} {'eval [µs]':>11s} {'GFLOP/s':>8s} "
              f"{'vs numpy':>9s} {'max |Δ| vs numpy':>17s}")
        for k in order:
            if k not in res:
                continue
            v = res[k]
            ratio = v["time"] / base
            print(f"  {k:16s} {v['build']:10.3f} {v['time'] * 1e6:11.1f} "
                  f"{flops / v['time'] / 1e9:8.2f} {ratio:8.2f}x {v['err']:17.2e}")
        print("  ratios (time of variant / time of numpy; < 1 is faster than NumPy):")
        print("   " + ", ".join(f"{k} {res[k]['time'] / base:.2f}" for k in order
                                if k in res and k != "numpy"))


if __name__ == "__main__":
    main()
