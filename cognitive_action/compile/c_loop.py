"""The Dormand-Prince 5(4) step loop of :mod:`~cognitive_action.compile.explicit` in C.

Why: at small sizes the Python loop of :func:`~cognitive_action.compile.explicit.integrate_dopri`
spends as long in Python (the step-size control, the buffers, the dense output) as in its
compiled steps (issue 16: slower than jitted JAX + diffrax on a dense 10-neuron net; the
numbers are in docs/performance.md, "Numbers behind choices in the code"). Here the whole
adaptive loop is a small C driver around the CasADi-generated C of the step functions,
and the drift report (``G``, ``Ġ``) a C loop of the generated ``system.constraints`` over
the output points, compiled once with :mod:`~cognitive_action.compile.codegen`'s
machinery (content-hashed on-disk cache, atomic writes, the size budget) and called
through :mod:`ctypes` on NumPy arrays: no Python per step.

The driver is the Python loop transcribed: the same steps (the functions generated from
the very ``dopri_function`` objects the Python loop evaluates), the same step-size control
in the same floating-point operations (``pow`` of the C library, as Python's ``**``), the
same choice of the step with or without the dense output, the same failure conditions
(``max_steps``, a step below the round-off of ``t``, NaN, a norm above ``max_norm``),
returned as a status code with ``t`` and the counts, from which
:func:`~cognitive_action.compile.explicit.integrate_dopri` raises the same
:class:`~cognitive_action.errors.SimulationError`. The starting step
(``_initial_step``) stays in Python, on the generated right-hand side. So the accepted and
rejected steps, and the states at the step ends, are those of the Python loop bit for
bit wherever the generated C does the operations of CasADi's virtual machine (the generic
route; networks compiled with ``blas=False``); a network's BLAS products (``dgemm_`` in
the generated C, CasADi's BLAS plugin in the VM) may sum in another order, so there the
two loops differ by round-off (the same steps in every test). The interpolated output
points differ by round-off in any case (the Python loop forms
``[1, θ, θ², θ³, θ⁴] [y; Q]`` with NumPy's BLAS, the C loop as a plain sum).

The loop pauses every ``budget`` attempted steps (adapted to ``_CALL_SECONDS`` per
call) so that
a progress callback and Ctrl-C are honoured between calls; the whole state of the loop
lives in NumPy arrays, so a paused loop continues exactly where it stopped.

Network systems whose eq. (10) solve has no generated C (``lapacklu``, the SciPy/NumPy
Cholesky kernels of large nets) are recompiled with ``ldl`` for the C loop (as
:func:`~cognitive_action.compile.codegen.codegen_system` does): the same equations, whose
numbers then differ from the Python loop's by round-off.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import casadi as ca
import numpy as np

from cognitive_action.compile.codegen import (
    Library,
    blas_link_arguments,
    build_library,
    generate_source,
)
from cognitive_action.errors import CompileError

__all__ = ["CLoop", "build_c_loop", "c_loop_for", "STATUS"]

#: Status codes of the C loop.
STATUS = {0: "done", 1: "paused", 2: "max_steps", 3: "round-off", 4: "nonfinite",
          5: "max_norm", 6: "function failed", 7: "out of memory"}
_CODEGEN_SOLVERS = ("qr", "ldl")
#: States up to which the drift report's ``(G, Ġ)`` is generated from its scalar (SX)
#: expansion rather than from the MX graph (docs/performance.md, "Numbers behind
#: choices in the code").
SX_CONSTRAINTS_LIMIT = 1_000
_CALL_SECONDS = 0.05  # aim of one paused call when progress is reported
#: Compiler flags of the C loop when none are given: optimised for this processor, with
#: ``-ffp-contract=off`` (no fused multiply-adds: the operations of the CasADi VM, so the
#: same numbers; without ``-ffast-math`` vectorisation does not reorder sums), and a
#: fingerprint of the processor defined, so that the cache key (which holds the flags)
#: differs between processors and a cache shared by several machines never loads
#: another processor's instructions. Faster than ``-O2`` on the dense 10-neuron net
#: (docs/performance.md, "Numbers behind choices in the code").
NATIVE_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared")
#: The fallback when the compiler refuses ``-march=native``.
PORTABLE_FLAGS = ("-O3", "-ffp-contract=off", "-fPIC", "-shared")

_SETUP = """
static int cl_setup_{tag}(cl_mem* m) {{
  casadi_int sz_arg, sz_res, sz_iw, sz_w;
  if ({fn}_work(&sz_arg, &sz_res, &sz_iw, &sz_w)) return 1;
  m->arg = (const casadi_real**) malloc(sizeof(casadi_real*) * (sz_arg + 1));
  m->res = (casadi_real**) malloc(sizeof(casadi_real*) * (sz_res + 1));
  m->iw = (casadi_int*) malloc(sizeof(casadi_int) * (sz_iw + 1));
  m->w = (casadi_real*) malloc(sizeof(casadi_real) * (sz_w + 1));
  if (!m->arg || !m->res || !m->iw || !m->w) return 1;
  {fn}_incref();
  m->mem = {fn}_checkout();
  m->fn = {fn};
  return 0;
}}
static void cl_teardown_{tag}(cl_mem* m) {{
  if (m->fn) {{ {fn}_release(m->mem); {fn}_decref(); }}
  free((void*) m->arg); free(m->res); free(m->iw); free(m->w);
}}
"""

_DRIVER = """
#include <stdlib.h>
#include <math.h>
typedef int (*cl_fn)(const casadi_real**, casadi_real**, casadi_int*, casadi_real*, int);
typedef struct {
  const casadi_real** arg; casadi_real** res; casadi_int* iw; casadi_real* w; int mem;
  cl_fn fn;
} cl_mem;
%(setups)s

/* The continuous extension at theta: row = y + Q [th, th^2, th^3, th^4] (no aliasing:
   the loop vectorises). */
static void cl_dense(double* __restrict row, const double* __restrict y,
                     const double* __restrict Q, double th, casadi_int n) {
  const double p2 = th * th, p3 = p2 * th, p4 = p2 * p2;
  const double* __restrict q1 = Q + n;
  const double* __restrict q2 = Q + 2 * n;
  const double* __restrict q3 = Q + 3 * n;
  casadi_int j;
  for (j = 0; j < n; ++j)
    row[j] = y[j] + th * Q[j] + p2 * q1[j] + p3 * q2[j] + p4 * q3[j];
}

/* f(t, y, p) -> out: the generated right-hand side (the starting step, in Python). */
CASADI_SYMBOL_EXPORT int cl_rhs(double t, const double* y, const double* p, double* out) {
  cl_mem m = {0}; int flag = cl_setup_rhs(&m);
  if (!flag) {
    m.arg[0] = &t; m.arg[1] = y; m.arg[2] = p; m.res[0] = out;
    flag = m.fn(m.arg, m.res, m.iw, m.w, m.mem);
  }
  cl_teardown_rhs(&m);
  return flag;
}

%(along)s

/* The adaptive loop of explicit.integrate_dopri (without projection), from the state in
   dstate = [t, h_abs] and istate = [k_out, n_acc, n_rej, attempts], y and k1 = f(t, y);
   returns after `budget` attempts at an accepted step (1), at the end (0), or on a
   failure (2: max_steps, 3: step below round-off, 4: non-finite norm, 5: norm above
   max_norm, 6: a generated function failed, 7: no memory), the state saved. */
CASADI_SYMBOL_EXPORT int cl_dopri(const double* times, casadi_int n_t, const double* p,
    double rtol, double atol, casadi_int max_steps, double max_norm, casadi_int budget,
    double* dstate, casadi_int* istate, double* y, double* k1, double* out) {
  const casadi_int n_y = %(n_y)d;
  double t = dstate[0], h_abs = dstate[1];
  casadi_int k_out = istate[0], n_acc = istate[1], n_rej = istate[2];
  casadi_int attempts = istate[3], stop = attempts + budget;
  const double t_end = times[n_t - 1];
  double tb = 0.0, hb = 0.0, errb = 0.0;
  double* y5 = (double*) malloc(sizeof(double) * (n_y + 1));
  double* k7 = (double*) malloc(sizeof(double) * (n_y + 1));
  double* Q = (double*) malloc(sizeof(double) * (4 * n_y + 1));
  cl_mem md = {0}, mp = {0};
  int status = 0, i;
  casadi_int k, j;
  if (!y5 || !k7 || !Q || cl_setup_step(&md) || cl_setup_plain(&mp)) {
    status = 7; goto done;
  }
  md.arg[0] = &tb; md.arg[1] = y; md.arg[2] = &hb; md.arg[3] = p; md.arg[4] = k1;
  md.arg[5] = &rtol; md.arg[6] = &atol;
  md.res[0] = y5; md.res[1] = k7; md.res[2] = &errb; md.res[3] = Q;
  for (i = 0; i < 7; ++i) mp.arg[i] = md.arg[i];
  mp.res[0] = y5; mp.res[1] = k7; mp.res[2] = &errb;
  while (k_out < n_t) {
    double target = t_end, h = 0.0, err, factor, x, t_new;
    int rejected = 0;
    casadi_int k_first;
    if (attempts >= stop) { status = 1; goto done; }
    for (;;) {
      attempts += 1;
      if (attempts > max_steps) { status = 2; goto done; }
      if (h_abs < 10 * fabs(nextafter(t, INFINITY) - t)) { status = 3; goto done; }
      h = (target - t < h_abs) ? target - t : h_abs;
      tb = t; hb = h;
      if (times[k_out] <= ((t + h >= target) ? target : t + h)) {
        if (md.fn(md.arg, md.res, md.iw, md.w, md.mem)) { status = 6; goto done; }
      } else {
        if (mp.fn(mp.arg, mp.res, mp.iw, mp.w, mp.mem)) { status = 6; goto done; }
      }
      err = errb;
      if (err < 1.0) {
        if (err == 0.0) {
          factor = 10.0;
        } else {
          x = 0.9 * pow(err, -0.2);
          factor = (x < 10.0) ? x : 10.0;
        }
        if (rejected) factor = (factor < 1.0) ? factor : 1.0;
        h_abs = h * factor;
        break;
      }
      x = 0.9 * pow(err, -0.2);
      h_abs = h * ((x > 0.2) ? x : 0.2);
      rejected = 1;
      n_rej += 1;
    }
    n_acc += 1;
    t_new = (t + h >= target) ? target : t + h;
    k_first = k_out;
    while (k_out < n_t && times[k_out] <= t_new) k_out += 1;
    for (k = k_first; k < k_out; ++k)
      cl_dense(out + k * n_y, y, Q, (times[k] - t) / h, n_y);
    if (k_out > k_first && times[k_out - 1] == t_new)
      for (j = 0; j < n_y; ++j) out[(k_out - 1) * n_y + j] = y5[j];
    t = t_new;
    {
      double s = 0.0;
      for (j = 0; j < n_y; ++j) { y[j] = y5[j]; k1[j] = k7[j]; s += y[j] * y[j]; }
      s = sqrt(s);
      if (!(s <= max_norm)) { status = isfinite(s) ? 5 : 4; goto done; }
    }
  }
done:
  dstate[0] = t; dstate[1] = h_abs;
  istate[0] = k_out; istate[1] = n_acc; istate[2] = n_rej; istate[3] = attempts;
  cl_teardown_step(&md); cl_teardown_plain(&mp);
  free(y5); free(k7); free(Q);
  return status;
}
"""

_ALONG = """
/* (G, Gdot)(t_k, Y_k, p) for k < n_t, rows of G and Gd (the drift report). */
CASADI_SYMBOL_EXPORT int cl_along_G(const double* times, casadi_int n_t, const double* Y,
                                    const double* p, double* G, double* Gd) {
  cl_mem m = {0}; int flag = cl_setup_G(&m);
  casadi_int k;
  for (k = 0; !flag && k < n_t; ++k) {
    m.arg[0] = times + k; m.arg[1] = Y + k * %(n_y)d; m.arg[2] = p;
    m.res[0] = G + k * %(n_g)d; m.res[1] = Gd + k * %(n_g)d;
    flag = m.fn(m.arg, m.res, m.iw, m.w, m.mem);
  }
  cl_teardown_G(&m);
  return flag;
}
"""


def _dense(fn: ca.Function, name: str) -> ca.Function:
    """``fn`` with dense inputs and outputs under ``name`` (the generated C's symbol):
    a renamed copy of the same expression graph (the same operations, so the same
    numbers), with structural zeros densified."""
    sx = fn.is_a("SXFunction")
    args = fn.sx_in() if sx else [ca.MX.sym(fn.name_in(i), fn.size_in(i))
                                  for i in range(fn.n_in())]
    outs = fn.call(args) if sx else fn.call(args, True, False)
    outs = [ca.densify(o) for o in outs]
    return ca.Function(name, args, outs, [fn.name_in(i) for i in range(fn.n_in())],
                       [fn.name_out(i) for i in range(fn.n_out())])


_P = ctypes.c_void_p
_I = ctypes.c_longlong
_D = ctypes.c_double


@dataclass
class CLoop:
    """A compiled Dormand-Prince loop of one system (:func:`build_c_loop`).

    Attributes
    ----------
    library
        The shared library in the cache (:class:`~cognitive_action.compile.codegen.Library`).
    n_y, n_p, n_g
        States, parameters and constraints (``n_g = 0``: no drift function).
    build_time
        Seconds spent generating, compiling (or finding in the cache) and loading.
    """

    library: Library
    n_y: int
    n_p: int
    n_g: int
    build_time: float

    def __post_init__(self) -> None:
        lib = ctypes.CDLL(str(self.library.path))
        self._lib = lib
        lib.cl_dopri.restype = ctypes.c_int
        lib.cl_dopri.argtypes = [_P, _I, _P, _D, _D, _I, _D, _I, _P, _P, _P, _P, _P]
        lib.cl_rhs.restype = ctypes.c_int
        lib.cl_rhs.argtypes = [_D, _P, _P, _P]
        if self.n_g:
            lib.cl_along_G.restype = ctypes.c_int
            lib.cl_along_G.argtypes = [_P, _I, _P, _P, _P, _P]

    def __getstate__(self) -> dict:  # the loaded library is not picklable: reloaded
        return {k: v for k, v in self.__dict__.items() if k != "_lib"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def rhs(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``f(t, y, p)`` through the generated C."""
        y = np.ascontiguousarray(y, dtype=float)
        p = _padded(p)
        out = np.empty(self.n_y)
        if self._lib.cl_rhs(float(t), y.ctypes.data, p.ctypes.data, out.ctypes.data):
            raise CompileError("the generated right-hand side failed",
                               fix="use loop='python'")
        return out

    def constraints_along(self, times: np.ndarray, Y: np.ndarray, p: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """``G`` and ``Ġ`` at every output point, one row per point (the drift report):
        the generated ``system.constraints`` called point by point."""
        if not self.n_g:
            raise CompileError("this C loop was built without the constraints",
                               fix="build it with the constraint function")
        times = np.ascontiguousarray(times, dtype=float)
        Y = np.ascontiguousarray(Y, dtype=float)
        p = _padded(p)
        G, Gd = np.empty((times.size, self.n_g)), np.empty((times.size, self.n_g))
        if self._lib.cl_along_G(times.ctypes.data, times.size, Y.ctypes.data,
                                p.ctypes.data, G.ctypes.data, Gd.ctypes.data):
            raise CompileError("the generated constraint function failed",
                               fix="use loop='python'")
        return G, Gd

    def run(self, grid: np.ndarray, y: np.ndarray, k1: np.ndarray, h_abs: float,
            p: np.ndarray, out: np.ndarray, *, rtol: float, atol: float, max_steps: int,
            max_norm: float, on_output: Callable[[int], None] | None = None
            ) -> tuple[int, float, int, int, int, int]:
        """The loop from ``(grid[0], y, k1 = f(t, y))`` with starting step ``h_abs``,
        writing the output rows ``out[1:]``; ``y`` and ``k1`` are updated in place.

        Returns
        -------
        tuple
            ``(status, t, k_out, n_acc, n_rej, attempts)`` (:data:`STATUS`).
        """
        grid = np.ascontiguousarray(grid, dtype=float)
        p = _padded(p)
        dstate = np.array([float(grid[0]), float(h_abs)])
        istate = np.array([1, 0, 0, 0], dtype=np.int64)
        args = (grid.ctypes.data, grid.size, p.ctypes.data, float(rtol), float(atol),
                int(max_steps), float(max_norm))
        tail = (dstate.ctypes.data, istate.ctypes.data, y.ctypes.data, k1.ctypes.data,
                out.ctypes.data)
        budget = int(max_steps) + 1 if on_output is None else 32
        while True:
            reached = int(istate[0])
            t0 = time.perf_counter()
            status = self._lib.cl_dopri(*args, budget, *tail)
            if on_output is not None:
                if istate[0] > reached:
                    on_output(int(istate[0]))
                spent = time.perf_counter() - t0
                budget = int(min(max(budget * _CALL_SECONDS / max(spent, 1e-6), 1),
                                 4 * budget, 1 << 40))
            if status != 1:
                return (status, float(dstate[0]), *(int(v) for v in istate))


def _cpu() -> str:
    """A fingerprint of this processor (model and instruction-set flags)."""
    text = f"{platform.machine()} {platform.processor()}"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            info = fh.read(1 << 16)
        text += "".join(line for line in info.splitlines()
                        if line.startswith(("model name", "flags", "Features")))[:20000]
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _padded(p: np.ndarray) -> np.ndarray:
    p = np.ascontiguousarray(p, dtype=float).reshape(-1)
    return p if p.size else np.zeros(1)


def build_c_loop(step: ca.Function, plain_step: ca.Function, rhs: ca.Function,
                 constraints: ca.Function | None = None, *,
                 cache_dir: str | os.PathLike | None = None, compiler: str | None = None,
                 flags: Sequence[str] | None = None,
                 max_generated_bytes: int | None = None) -> CLoop:
    """Generate, compile (or reuse from the cache) and load the C loop of these functions.

    Parameters
    ----------
    step, plain_step
        :func:`~cognitive_action.compile.explicit.dopri_step_function` of ``rhs`` with and
        without the dense output.
    rhs
        ``(t, y, p) → ẏ``.
    constraints
        ``(t, y, p) → (G, Ġ)`` for the drift report (``None``: none).
    flags
        Compiler flags; ``None``: :data:`NATIVE_FLAGS` with this processor's
        fingerprint, or :data:`PORTABLE_FLAGS` if the compiler refuses them.
    cache_dir, compiler, max_generated_bytes
        As for :func:`~cognitive_action.compile.codegen.build_library`.

    Raises
    ------
    CompileError
        No C compiler (with a fix), a function CasADi cannot generate C for (a linear
        solver other than ``qr``/``ldl``, a Python callback), a source over the size
        budget, or a compiler failure.
    """
    t0 = time.perf_counter()
    n_y, n_p = int(rhs.numel_in(1)), int(rhs.numel_in(2))
    fns = {"step": _dense(step, "cl_fn_step"), "plain": _dense(plain_step, "cl_fn_plain"),
           "rhs": _dense(rhs, "cl_fn_rhs")}
    n_g = 0
    if constraints is not None:
        fns["G"] = _dense(constraints, "cl_fn_G")
        n_g = int(constraints.numel_out(0))
    source = generate_source(list(fns.values()), max_generated_bytes=max_generated_bytes)
    setups = "".join(_SETUP.format(tag=tag, fn=f.name()) for tag, f in fns.items())
    along = _ALONG % {"n_y": n_y, "n_g": n_g} if n_g else ""
    source += _DRIVER % {"setups": setups, "along": along, "n_y": n_y}
    link: tuple[str, ...] = ()
    if "CASADI_BLAS_DGEMM(" in source:  # products through BLAS (blas=True systems)
        found = blas_link_arguments()
        if found is None:
            raise CompileError("the generated C calls dgemm_ but no BLAS was found to link",
                               fix="compile the system with blas=False, or use "
                               "loop='python'")
        link = found
    kwargs = dict(cache_dir=cache_dir, compiler=compiler, link=link,
                  max_generated_bytes=max_generated_bytes)
    if flags is not None:
        lib = build_library(source, flags=tuple(flags), **kwargs)
    else:
        try:
            lib = build_library(source, flags=(*NATIVE_FLAGS, f"-DCA_CPU={_cpu()}"),
                                **kwargs)
        except CompileError as exc:
            if "compiler failed" not in exc.message:
                raise
            lib = build_library(source, flags=PORTABLE_FLAGS, **kwargs)
    try:
        loop = CLoop(lib, n_y, n_p, n_g, 0.0)
    except OSError as exc:
        raise CompileError(f"cannot load the C loop {lib.path}: {exc}",
                           fix="delete the cache entry and build again") from None
    loop.build_time = time.perf_counter() - t0
    return loop


def c_loop_for(system, *, cache_dir: str | os.PathLike | None = None,
               compiler: str | None = None) -> tuple[CLoop, object]:
    """The C loop of a compiled system (built once, cached on the system), and the system
    it runs: ``system`` itself, or for a network whose eq. (10) solve has no generated C
    its recompilation with ``ldl``.

    Raises
    ------
    CompileError
        As :func:`build_c_loop` (no C compiler: install gcc or clang, or use
        ``loop='python'``).
    """
    from cognitive_action.compile.integration import dopri_function

    hit = system._cache.get("c_loop")
    if hit is not None:
        return hit
    target = system
    if system.linear_solver not in _CODEGEN_SOLVERS:
        if system.route == "network" and system.origin is not None:
            from cognitive_action.compile.system import compile_system

            source, kwargs = system.origin
            target = compile_system(source, **(kwargs | {"linear_solver": "ldl"}))
        else:
            raise CompileError(
                f"{system.name!r} uses the linear solver {system.linear_solver!r}, "
                "whose generated C needs external libraries",
                fix="compile_system(..., linear_solver='qr') (generic) or 'ldl' "
                "(network), or use loop='python'")
    constraints = target.constraints
    if constraints is not None and target.n_states <= SX_CONSTRAINTS_LIMIT:
        # scalar operations: straight-line C for the drift report (no linear solve in
        # G, Ġ; measured in docs/performance.md)
        with contextlib.suppress(RuntimeError):
            constraints = constraints.expand()
    loop = build_c_loop(dopri_function(target), dopri_function(target, dense=False),
                        target.rhs, constraints, cache_dir=cache_dir,
                        compiler=compiler)
    system._cache["c_loop"] = hit = (loop, target)
    return hit


def norm(y: np.ndarray) -> float:
    """The state norm as the Python loop computes it."""
    return math.sqrt(y.dot(y))
