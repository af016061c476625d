"""Benchmark: ours against SciPy RK45 + NumPy and jitted JAX + diffrax, same work, equal error.

The problem is bench_integrate.py's: the finite-mass learning system (eq. 8-10) on a
dense recurrent network of ``n`` neurons (states ``2(n + n(n-2))``), ``t ∈ [0, 10]``,
1000 output points, from a consistent state; every method runs Dormand-Prince 5(4) at
rtol 1e-6, atol 1e-9 and is checked against a tight reference (SciPy DOP853, rtol 1e-11,
atol 1e-12, on the hand-written NumPy right-hand side), as
``max |y - y_ref| / max |y_ref|`` over the output grid.

- ``ours dopri``: ``simulate(system, ..., method="dopri")`` with the drift report on
  (``G`` and ``Ġ`` at every output point, both read: ``sim.max_drift`` and
  ``sim.drift_rate``; the report is computed on first read) and the
  initial-state check;
- ``ours dopri, C loop``: the same with ``loop="c"`` (the whole adaptive loop and the
  drift report as generated C, compile/c_loop.py); its build includes the C
  compiler (the benchmark uses a fresh library cache, ``COGNITIVE_ACTION_CACHE``);
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

``--build-sizes 400`` times declare + derive + compile of the dense 400-neuron net, each
repeat in a fresh process. ``--markdown docs/performance.md`` writes the whole report
(conditions, tables, issue 16's targets met or missed) between the ``bench_peers`` markers
of the performance page, so the page is regenerated from this output; ``--json`` keeps the
raw numbers.

Run:  python benchmarks/bench_peers.py                    # n = 10, 50, 200, 5 repeats
      python benchmarks/bench_peers.py --sizes 10 --repeats 3
      python benchmarks/bench_peers.py --repeats 7 --rhs --build-sizes 400 \
          --markdown docs/performance.md                  # the docs' report
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
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
C_LOOP = "ours dopri, C loop"


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


def spread(ts: list[float]) -> dict:
    """Median, min and max of a list of times (the unit of every row of the report)."""
    return {"median": float(np.median(ts)), "min": float(min(ts)), "max": float(max(ts))}


def ratio_spread(peer: list[float], ours: list[float]) -> dict:
    """Ratio of medians (peer / ours, > 1: ours faster) and min-max of per-repeat ratios."""
    per = [a / b for a, b in zip(peer, ours)]
    return {"median": float(np.median(peer) / np.median(ours)), "min": float(min(per)),
            "max": float(max(per))}


def run_size(n: int, n_points: int, repeats: int, rhs_times: bool,
             c_loop: bool = True) -> dict:
    """Build, check and time every method on one size; print the rows; return them."""
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

    def ours(loop: str = "python"):
        sim = simulate(system, grid, y0, values, rtol=RTOL, atol=ATOL, method="dopri",
                       max_steps=10**6, loop=loop)
        _ = sim.max_drift, sim.drift_rate  # the whole drift report (G and Ġ), read
        return sim

    build, errors, steps = {}, {}, {}
    loops = (("ours dopri", "python"), (C_LOOP, "c")) if c_loop else \
        (("ours dopri", "python"),)
    for name, loop in loops:
        sim = ours(loop)
        build[name] = t_compile + sim.stats["build_time"]  # loop="c": with gcc
        errors[name] = err(sim.y)
        steps[name] = int(sim.stats["nsteps"])
        if loop == "python":
            drift = float(sim.max_drift)
        del sim
    methods = {"ours dopri": ours,
               **({C_LOOP: lambda: ours("c")} if c_loop else {}),
               "scipy RK45": lambda: solve_ivp(f_np, (0, T_END), y0, t_eval=grid,
                                               method="RK45", rtol=RTOL, atol=ATOL)}
    sol = methods["scipy RK45"]()
    build["scipy RK45"], errors["scipy RK45"] = 0.0, err(sol.y.T)
    steps["scipy RK45"] = int((sol.nfev - 2) // 6)
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
        del Yj
        methods["diffrax Dopri5"] = lambda: solve(y0j).block_until_ready()

    # -- interleaved runs ---------------------------------------------------------------
    cpu: dict[str, list[float]] = {k: [] for k in methods}
    wall: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            w0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
            del out
    print(f"-- n = {n}: {y0.size} states; declare {t_declare:.3f} s, derive "
          f"{t_derive:.3f} s (ours); reference {t_ref:.1f} s; max drift |G| of ours "
          f"{drift:.1e}")
    rows = {}
    for name in methods:
        rows[name] = {
            "build": build[name], "error": errors[name], "steps": steps.get(name),
            "cpu_all": cpu[name], "wall_all": wall[name],
            "cpu": spread(cpu[name]), "wall": spread(wall[name]),
            "cpu_ratio": ratio_spread(cpu[name], cpu["ours dopri"]),
            "wall_ratio": ratio_spread(wall[name], wall["ours dopri"])}
        r = rows[name]["cpu_ratio"]
        print(f"{n:>4} {name:<18} {build[name]:>7.3f} {stats(cpu[name])} "
              f"{errors[name]:>8.1e} {r['median']:>6.2f} ({r['min']:.2f}-{r['max']:.2f})  "
              f"wall {stats(wall[name])}", flush=True)
    if jax is None:
        print(f"{n:>4} diffrax Dopri5   skipped: {_JAX_MISSING} "
              "(pip install 'cognitive_action[bench]')")
    result = {"n": n, "states": int(y0.size), "declare": t_declare, "derive": t_derive,
              "drift": drift, "methods": rows, "rhs": None}
    if rhs_times:
        p = system.parameter_vector(values)
        f_ours = buffered(system.rhs, 0.3, y0, p)
        cands = {"ours (buffer)": f_ours, "numpy": lambda: f_np(0.3, y0)}
        if jax is not None:
            fj = jax.jit(jax_rhs_factory(n, values))
            yj = jnp.asarray(y0)
            fj(0.3, yj, None).block_until_ready()
            cands["jax (jit)"] = lambda: fj(0.3, yj, None).block_until_ready()
        d = float(np.abs(f_ours() - f_np(0.3, y0)).max())
        res = {k: [] for k in cands}
        for _ in range(5):  # interleaved
            for k, f in cands.items():
                res[k].append(min(timeit.repeat(f, number=20, repeat=3)) / 20)
        print(f"{n:>4} one RHS: " + ", ".join(
            f"{k} {np.median(v) * 1e3:.3f} ms ({min(v) * 1e3:.3f}-{max(v) * 1e3:.3f})"
            for k, v in res.items()) + f"; max |ours - numpy| {d:.1e}")
        result["rhs"] = {"times": {k: spread(v) for k, v in res.items()},
                         "max_difference": d}
    return result


def build_once(n: int) -> dict:
    """Declare, derive and compile ``dense_problem(n)`` in this (fresh) process."""
    t0 = time.perf_counter()
    _net, pr = dense_problem(n)
    t1 = time.perf_counter()
    ns = ca_.derive_network(pr)
    t2 = time.perf_counter()
    compile_system(ns)
    t3 = time.perf_counter()
    return {"declare": t1 - t0, "derive": t2 - t1, "compile": t3 - t2, "total": t3 - t0}


def build_times(n: int, repeats: int) -> dict:
    """:func:`build_once` in ``repeats`` fresh processes (SymPy caches symbols and
    expressions within a process, so only a fresh one shows what a user waits)."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--build-once", str(n)],
                             capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    res = {k: spread([r[k] for r in runs]) for k in runs[0]}
    print(f"-- dense {n}-neuron net, fresh process x {repeats}: " + ", ".join(
        f"{k} {v['median']:.2f} s ({v['min']:.2f}-{v['max']:.2f})" for k, v in res.items()))
    return {"n": n, **res}


# -- the report for docs/performance.md ------------------------------------------------------
BEGIN, END = "<!-- bench_peers: begin -->", "<!-- bench_peers: end -->"


def _s(d: dict, digits: int = 3) -> str:
    return f"{d['median']:.{digits}g} ({d['min']:.{digits}g}-{d['max']:.{digits}g})"


def _r(d: dict) -> str:
    return f"**{d['median']:.2f}** ({d['min']:.2f}-{d['max']:.2f})"


def targets(report: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 16's targets against the measured numbers: (target, measured, met)."""
    out = []
    sizes = {r["n"]: r for r in report["sizes"]}
    for n, r in sizes.items():
        m = r["methods"]
        # the best of our rows (median wall time), named
        best = min((k for k in m if k.startswith("ours")),
                   key=lambda k: m[k]["wall"]["median"])
        if "diffrax Dopri5" in m:
            w = ratio_spread(m["diffrax Dopri5"]["wall_all"], m[best]["wall_all"])
            c = ratio_spread(m["diffrax Dopri5"]["cpu_all"], m[best]["cpu_all"])
            out.append((f"run ≤ diffrax's at n = {n} (drift report on)",
                        f"diffrax / {best} {w['median']:.2f} wall ({w['min']:.2f}-"
                        f"{w['max']:.2f}), {c['median']:.2f} CPU", w["median"] >= 1.0))
        need = 3.0 if n <= 50 else 2.0
        rk = ratio_spread(m["scipy RK45"]["wall_all"], m[best]["wall_all"])
        out.append((f"≥ {need:g}× RK45 at n = {n}",
                     f"{rk['median']:.2f}× wall ({rk['min']:.2f}-{rk['max']:.2f}), "
                     f"{best}", rk["median"] >= need))
        if n == 200:
            if r["rhs"] is not None:
                t = r["rhs"]["times"]
                o, p = t["ours (buffer)"]["median"], t["numpy"]["median"]
                out.append(("RHS at n = 200 ≤ NumPy's",
                            f"{o * 1e3:.2f} ms vs {p * 1e3:.2f} ms", o <= p))
            b = m["ours dopri"]["build"]
            out.append(("build ≤ 0.3 s at n = 200", f"{b:.3f} s", b <= 0.3))
    for b in report["builds"]:
        tot = b["total"]
        out.append((f"declare + derive + compile dense {b['n']} ≤ 2 s",
                    f"{tot['median']:.2f} s ({tot['min']:.2f}-{tot['max']:.2f}), of which "
                    f"declare {b['declare']['median']:.2f} s", tot["median"] <= 2.0))
    return out


def markdown(report: dict) -> str:
    """The block of docs/performance.md that this benchmark writes."""
    c = report["conditions"]
    lines = [
        BEGIN,
        "<!-- written by benchmarks/bench_peers.py --markdown; do not edit by hand -->",
        "",
        f"Measured **{c['date']}** with `{c['command']}` on {c['machine']}; {c['versions']}; "
        f"{c['threads']}. Load average (1 min) {c['load_before']:.2f} before and "
        f"{c['load_after']:.2f} after. Problem: the dense learning system (eq. 8-10) of "
        f"bench_integrate.py, t ∈ [0, {T_END:g}], {c['points']} output points, "
        f"Dormand-Prince 5(4) for everyone at rtol {RTOL:g}, atol {ATOL:g}; error "
        "max|y − y_ref| / max|y_ref| against SciPy DOP853 at rtol 1e-11; ours with the drift "
        "report on (G, Ġ at every output point, read) and the initial-state check. Times: "
        f"median (min-max) of {c['repeats']} interleaved repeats (ours, RK45, diffrax, "
        "ours, ...); ratio = peer / ours (> 1: ours faster), the ratio of medians with the "
        "min-max of the per-repeat ratios. Wall time is what a user waits; CPU time "
        "(process) is shown too because diffrax's process may run XLA helper threads.",
        "",
        "| n (states) | method | build s | run s, wall | run s, CPU | error | "
        "peer / ours, wall | peer / ours, CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        first = True
        for name, m in r["methods"].items():
            label = f"{r['n']} ({r['states']:,})" if first else ""
            first = False
            ours = name == "ours dopri"
            lines.append(
                f"| {label} | {name} | {m['build']:.3g} | {_s(m['wall'])} | {_s(m['cpu'])} "
                f"| {m['error']:.1e} | {'1' if ours else _r(m['wall_ratio'])} | "
                f"{'1' if ours else _r(m['cpu_ratio'])} |")
    rhs = [r for r in report["sizes"] if r["rhs"] is not None]
    if rhs:
        lines += ["", "One right-hand side (wall time, minimum of 3 × 20 calls, median "
                  "(min-max) of 5 interleaved rounds), ms:", "",
                  "| n | " + " | ".join(rhs[0]["rhs"]["times"]) + " | max abs(ours − NumPy) |",
                  "|---|" + "---:|" * (len(rhs[0]["rhs"]["times"]) + 1)]
        for r in rhs:
            t = r["rhs"]["times"]
            lines.append(f"| {r['n']} | " + " | ".join(
                f"{v['median'] * 1e3:.3f} ({v['min'] * 1e3:.3f}-{v['max'] * 1e3:.3f})"
                for v in t.values()) + f" | {r['rhs']['max_difference']:.1e} |")
    if report["builds"]:
        lines += ["", "Declare + derive + compile of the dense net, each repeat in a fresh "
                  "process, s:", "", "| n | declare | derive | compile | total |",
                  "|---|---:|---:|---:|---:|"]
        for b in report["builds"]:
            lines.append(f"| {b['n']} | {_s(b['declare'], 3)} | {_s(b['derive'], 3)} | "
                         f"{_s(b['compile'], 3)} | {_s(b['total'], 3)} |")
    lines += ["", "Issue 16's targets, as measured in this run:", "",
              "| target | measured | |", "|---|---|---|"]
    for what, measured, met in targets(report):
        lines.append(f"| {what} | {measured} | {'met' if met else '**missed**'} |")
    lines.append(END)
    return "\n".join(lines)


def write_markdown(path: str, block: str) -> None:
    """Replace the block between the markers in ``path`` (atomically)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no '{BEGIN}' ... '{END}' block to replace; add the two "
                         "markers where the report belongs")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(head + block + tail)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--points", type=int, default=1000, help="output points")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats (>= 5)")
    ap.add_argument("--rhs", action="store_true", help="also time one right-hand side")
    ap.add_argument("--c-loop-sizes", type=int, nargs="*", default=[10, 50],
                    help="sizes that also run loop='c' (above 50 the generated C solves "
                         "eq. 10 with ldl, slower than the default kernel, and compiles "
                         "for long)")
    ap.add_argument("--build-sizes", type=int, nargs="*", default=[],
                    help="also time declare + derive + compile of these dense nets, each "
                         "repeat in a fresh process (issue 16: 400)")
    ap.add_argument("--build-repeats", type=int, default=3)
    ap.add_argument("--markdown", metavar="FILE",
                    help="write the report between the bench_peers markers of FILE "
                         "(docs/performance.md)")
    ap.add_argument("--json", metavar="FILE", help="write the raw report as JSON")
    ap.add_argument("--build-once", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_once is not None:
        print(json.dumps(build_once(args.build_once)))
        return
    peers = (f"JAX {jax.__version__}, diffrax {diffrax.__version__}" if jax is not None
             else "JAX/diffrax not installed")
    load_before = os.getloadavg()[0]
    print(f"CasADi {ca.__version__}, NumPy {np.__version__}, {peers}; t in [0, {T_END:g}], "
          f"{args.points} output points; rtol {RTOL:g}, atol {ATOL:g}; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}; load {load_before:.2f}")
    print("run: CPU time of the process, median (min-max) of interleaved repeats, s (wall "
          "time at the end of the line); error: max|y - y_ref| / max|y_ref|; ratio: "
          "run / ours (> 1: ours faster), (min-max of per-repeat ratios)")
    print(f"{'n':>4} {'method':<18} {'build':>7} {'run (min-max)':>26} {'error':>8} "
          f"{'ratio':>6}")
    if jax is None:
        print(f"diffrax skipped: {_JAX_MISSING}; install the bench extra "
              "(pip install 'cognitive_action[bench]')")
    # a fresh library cache: the C loop's build time includes the C compiler
    cache = tempfile.mkdtemp(prefix="bench_peers_cache-")
    os.environ["COGNITIVE_ACTION_CACHE"] = cache
    sizes = [run_size(n, args.points, args.repeats, args.rhs, n in args.c_loop_sizes)
             for n in args.sizes]
    shutil.rmtree(cache, ignore_errors=True)
    builds = [build_times(n, args.build_repeats) for n in args.build_sizes]
    cpu = platform.processor() or platform.machine()
    report = {
        "conditions": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python benchmarks/bench_peers.py " + " ".join(sys.argv[1:]),
            "machine": f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}",
            "versions": f"CasADi {ca.__version__}, NumPy {np.__version__}, {peers}",
            "threads": f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
                       f"XLA_FLAGS='{os.environ['XLA_FLAGS']}'",
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "points": args.points, "repeats": args.repeats},
        "sizes": sizes, "builds": builds}
    print("\nIssue 16's targets:")
    for what, measured, met in targets(report):
        print(f"  {'met   ' if met else 'MISSED'} {what}: {measured}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    if args.markdown:
        write_markdown(args.markdown, markdown(report))
        print(f"wrote the report into {args.markdown}")


if __name__ == "__main__":
    main()
