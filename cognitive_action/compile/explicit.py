"""An explicit Dormand-Prince 5(4) integrator whose steps are one compiled CasADi function.

Why: every CasADi ``integrator`` object computes the Jacobian sparsity of its right-hand
side when it is built. The finite-mass learning system (eq. 8-10) is densely coupled
through the multiplier solve of eq. (10), so that pass has millions of nonzeros to
propagate and dominates the whole run (docs/compile.md, docs/performance.md). An
explicit method needs no Jacobian: here one *attempted step* (the seven stages, the
5th-order solution, the scaled error norm and the coefficients of the 4th-order
continuous extension) is one CasADi :class:`casadi.Function` built from ``system.rhs``
without any derivative or sparsity query, and a short Python loop drives it through
preallocated buffers (``Function.buffer``: no conversion of inputs and outputs per call).

The step-size control, error norm and dense output are those of Dormand & Prince (1980)
as in Hairer, Nørsett & Wanner, *Solving ODEs I*, II.4-II.6 (and SciPy's ``RK45``):
``‖e‖ = rms(e_i / (atol + rtol max(|y_i|, |ŷ_i|)))``, accept when ``‖e‖ < 1``, new step
``h · min(10, max(0.2, 0.9 ‖e‖^(-1/5)))`` (no growth right after a rejection), output
points are interpolated inside each accepted step (so a fine output grid costs no extra
steps), unless the state is projected on the constraints, in which case the steps land on
the output times.

Failures raise :class:`~cognitive_action.errors.SimulationError` with the time reached
and the state norm there: NaN or infinite states (the step shrinks below the round-off
of ``t``), a norm above ``max_norm``, or more than ``max_steps`` attempted steps.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np

from cognitive_action.errors import SimulationError

if TYPE_CHECKING:
    from cognitive_action.compile.c_loop import CLoop

__all__ = ["dopri_step_function", "DopriResult", "integrate_dopri"]

# Dormand-Prince 5(4) tableau (Hairer-Nørsett-Wanner, Table II.5.2).
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
# 5th minus 4th order weights, over the seven stages (the 7th is f(t + h, y_5)).
_E = (-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40)
# Continuous extension of order 4 (Shampine 1986): y(t + θh) = y + h K P [θ, θ², θ³, θ⁴].
_P = np.array([
    [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0, 0, 0, 0],
    [0, 131558114200 / 32700410799, -68118460800 / 10900136933,
     87487479700 / 32700410799],
    [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0, 127303824393 / 49829197408, -318862633887 / 49829197408,
     701980252875 / 199316789632],
    [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
])
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def _blas() -> str | None:
    try:
        return "classic" if ca.has_blas("classic") else None
    except Exception:  # noqa: BLE001 (a missing plugin library raises)
        return None


_BLAS = _blas()
_POWERS = np.arange(5)


def dopri_step_function(rhs: ca.Function, n_y: int, n_p: int, dense: bool = True
                        ) -> ca.Function:
    """One attempted Dormand-Prince 5(4) step as a CasADi function.

    Parameters
    ----------
    rhs
        ``(t, y, p) → ẏ``, e.g. ``CompiledSystem.rhs``.
    n_y, n_p
        Numbers of states and parameters.
    dense
        Whether to return the dense-output coefficients ``Q`` too (``False``: the
        outputs ``(y5, k7, err)`` only, for the steps in which no output point falls).

    Returns
    -------
    casadi.Function
        ``(t, y, h, p, k1, rtol, atol) → (y5, k7, err, Q)``: the 5th-order solution at
        ``t + h``, ``f(t + h, y5)`` (the next step's first stage), the scaled rms error
        norm of the embedded 4th-order solution, and ``Q = h K P`` (``n_y × 4``), with
        which ``y(t + θh) = y + Q [θ, θ², θ³, θ⁴]``. Built without any Jacobian or
        sparsity query of ``rhs``.

    Examples
    --------
    One step of ``ẏ = -y`` matches ``exp(-h)`` to the method's local error ``O(h⁶)``:

    >>> import casadi as ca, numpy as np
    >>> t, y, p = ca.MX.sym("t"), ca.MX.sym("y"), ca.MX.sym("p", 0)
    >>> step = dopri_step_function(ca.Function("f", [t, y, p], [-y]), 1, 0)
    >>> y5, k7, err, Q = step(0.0, 1.0, 0.1, [], -1.0, 1e-6, 1e-9)
    >>> bool(abs(float(y5) - np.exp(-0.1)) < 1e-9)
    True
    """
    t, h = ca.MX.sym("t"), ca.MX.sym("h")
    y, p, k1 = ca.MX.sym("y", n_y), ca.MX.sym("p", n_p), ca.MX.sym("k1", n_y)
    rtol, atol = ca.MX.sym("rtol"), ca.MX.sym("atol")
    ks = [k1]
    for i in range(1, 6):
        yi = y + h * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
        ks.append(rhs(t + _C[i] * h, yi, p))
    y5 = y + h * sum(b * k for b, k in zip(_B, ks) if b != 0.0)
    k7 = rhs(t + h, y5, p)
    ks.append(k7)
    err = h * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
    scale = atol + rtol * ca.fmax(ca.fabs(y), ca.fabs(y5))
    norm = ca.norm_2(err / scale) / np.sqrt(max(n_y, 1))
    names_in = ["t", "y", "h", "p", "k1", "rtol", "atol"]
    if not dense:
        return ca.Function("dopri54_step_plain", [t, y, h, p, k1, rtol, atol],
                           [y5, k7, norm], names_in, ["y5", "k7", "err"])
    K = ca.horzcat(*ks)  # n_y x 7
    # through BLAS when CasADi has it (docs/performance.md, "Numbers behind choices")
    Q = h * (ca.mtimes(K, ca.DM(_P), _BLAS) if _BLAS else ca.mtimes(K, ca.DM(_P)))
    return ca.Function("dopri54_step", [t, y, h, p, k1, rtol, atol], [y5, k7, norm, Q],
                       names_in, ["y5", "k7", "err", "Q"])


@dataclass
class DopriResult:
    """What :func:`integrate_dopri` returns: the states on the output grid and counts."""

    y: np.ndarray
    stats: dict


class _Buffers:
    """The step function's arguments and results as NumPy arrays bound once to a
    ``Function.buffer`` (they must outlive every call)."""

    def __init__(self, step: ca.Function, n_y: int, p: np.ndarray, rtol: float,
                 atol: float):
        self.t, self.h = np.zeros(1), np.zeros(1)
        self.k1 = np.zeros(n_y)
        self.p = np.ascontiguousarray(p, dtype=float)
        self.rtol, self.atol = np.array([rtol]), np.array([atol])
        self.y5, self.k7, self.err = np.zeros(n_y), np.zeros(n_y), np.zeros(1)
        self.YQ = np.zeros((5, n_y))  # [y; Q]: the step's state and dense-output rows
        self.y = self.YQ[0]  # views: the step reads y from row 0 and writes Q to rows 1-4
        self.Q = self.YQ[1:].reshape(-1)
        self.fb, self.evaluate = step.buffer()
        self.bind(self.fb, (self.y5, self.k7, self.err, self.Q))

    def bind(self, fb, results) -> None:
        for i, a in enumerate((self.t, self.y, self.h, self.p, self.k1, self.rtol,
                               self.atol)):
            fb.set_arg(i, memoryview(a))
        for i, a in enumerate(results):
            fb.set_res(i, memoryview(a))


def _initial_step(f: Callable[[float, np.ndarray], np.ndarray], t0: float, y0: np.ndarray,
                  f0: np.ndarray, span: float, rtol: float, atol: float) -> float:
    """Hairer-Nørsett-Wanner's starting step (II.4, with order 5)."""
    scale = atol + np.abs(y0) * rtol
    rms = np.sqrt(max(y0.size, 1))
    d0, d1 = np.linalg.norm(y0 / scale) / rms, np.linalg.norm(f0 / scale) / rms
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = f(t0 + h0, y0 + h0 * f0)
    d2 = np.linalg.norm((f1 - f0) / scale) / rms / h0
    if not np.isfinite(d2):
        return h0 * 1e-3
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** 0.2
    return min(100 * h0, h1, span)


def integrate_dopri(step: ca.Function, rhs: ca.Function, grid: np.ndarray, y0: np.ndarray,
                    p: np.ndarray, *, rtol: float = 1e-8, atol: float = 1e-10,
                    max_steps: int = 100_000, max_norm: float = 1e12,
                    projection: ca.Function | None = None, project_every: int = 1,
                    on_output: Callable[[int], None] | None = None,
                    plain_step: ca.Function | None = None,
                    c_loop: CLoop | None = None) -> DopriResult:
    """Integrate on an output grid with adaptive Dormand-Prince 5(4) steps.

    Parameters
    ----------
    step
        :func:`dopri_step_function` of ``rhs``.
    rhs
        ``(t, y, p) → ẏ`` (evaluated once per start and after projections).
    grid
        Increasing output times; ``grid[0]`` is the initial time.
    y0, p
        Initial state and parameter vector.
    rtol, atol
        Tolerances of the error norm.
    max_steps
        Limit on attempted steps (accepted and rejected).
    max_norm
        A state norm above this is a blow-up.
    projection
        ``(t, y, p) → y`` onto the constraints (``CompiledSystem.projection``), applied
        after every ``project_every`` output intervals; the steps then land on the output
        times.
    on_output
        Called with the number of output points reached so far, as they are reached.
    plain_step
        ``dopri_step_function(rhs, n_y, n_p, dense=False)``: used instead of ``step``
        for the attempts in which no output point falls (the same numbers, without
        forming ``Q``); ``None``: ``step`` always.
    c_loop
        A :class:`~cognitive_action.compile.c_loop.CLoop` of these functions
        (:func:`~cognitive_action.compile.c_loop.c_loop_for`): the attempted steps, the
        step-size control and the dense output then run in generated C, with the same
        steps and failures (``rhs`` is then evaluated through the C loop too). Not with
        ``projection`` (the Python loop runs then). ``on_output`` is then called between
        calls of the C loop (:meth:`~cognitive_action.compile.c_loop.CLoop.run`), not
        at every output point.

    Returns
    -------
    DopriResult
        ``y`` of shape ``(len(grid), n_y)`` and ``stats`` (``nsteps`` accepted,
        ``nreject``, ``nfevals``).

    Raises
    ------
    SimulationError
        NaN/infinite states or a step below the round-off of ``t``, a blow-up beyond
        ``max_norm``, or more than ``max_steps`` attempts; with the time reached and the
        state norm there.
    """
    n_y = y0.size
    if c_loop is not None and projection is None:
        return _integrate_c(c_loop, grid, y0, p, rtol=rtol, atol=atol, max_steps=max_steps,
                            max_norm=max_norm, on_output=on_output)
    B = _Buffers(step, n_y, p, rtol, atol)
    n_f = 0
    # the few direct right-hand sides (start, starting step, after projections) through a
    # buffer too: an ordinary call converts to and from DM (docs/performance.md)
    ft, fy, fout = np.zeros(1), np.zeros(n_y), np.zeros(n_y)
    if rhs.nnz_out(0) != rhs.numel_out(0):  # structural zeros: a dense result
        args = rhs.mx_in()
        rhs = ca.Function("rhs_dense", args, [ca.densify(rhs.call(args)[0])])
    fbuf, f_eval = rhs.buffer()
    for i, a in enumerate((ft, fy, B.p)):
        fbuf.set_arg(i, memoryview(a))
    fbuf.set_res(0, memoryview(fout))

    def f(t_: float, y_: np.ndarray) -> np.ndarray:
        nonlocal n_f
        n_f += 1
        ft[0] = t_
        fy[:] = y_
        f_eval()
        return fout.copy()

    t = float(grid[0])
    B.y[:] = y0
    B.k1[:] = f(t, B.y)
    out = np.empty((grid.size, n_y))
    out[0] = B.y
    if on_output is not None:
        on_output(1)
    if not np.all(np.isfinite(B.k1)):
        _fail("the right-hand side is NaN or infinite at the initial state", t, B.y)
    h_abs = _initial_step(f, t, B.y.copy(), B.k1.copy(), float(grid[-1] - t), rtol, atol)
    k_out, n_acc, n_rej, attempts, since_projection = 1, 0, 0, 0, 0
    land = projection is not None
    times = grid.tolist()  # Python floats: the loop compares scalars only
    n_t = len(times)
    t_end = times[-1]
    y, y5, k1, k7, YQ = B.y, B.y5, B.k1, B.k7, B.YQ
    tb, hb, errb, evaluate = B.t, B.h, B.err, B.evaluate
    evaluate_plain = evaluate
    if plain_step is not None:
        plain_buffer, evaluate_plain = plain_step.buffer()
        B.bind(plain_buffer, (y5, k7, errb))
    while k_out < n_t:
        target = times[k_out] if land else t_end
        rejected = False
        while True:
            attempts += 1
            if attempts > max_steps:
                _fail(f"more than max_steps = {max_steps} attempted steps before "
                      f"t = {t_end:g}: the solution blows up or the system is stiff; "
                      "use an implicit method (cvodes BDF) or raise max_steps", t, y)
            if h_abs < 10 * abs(math.nextafter(t, math.inf) - t):
                _fail("the step size fell below the round-off of t: the state became "
                      "NaN or infinite, or the solution is singular here", t, y)
            h = min(h_abs, target - t)
            tb[0], hb[0] = t, h
            # Q only when an output point falls in (t, t_new] (t_new as set below)
            if times[k_out] <= (target if t + h >= target else t + h):
                evaluate()
            else:
                evaluate_plain()
            err = float(errb[0])
            if err < 1.0:  # NaN compares False: rejected, the step shrinks
                factor = _MAX_FACTOR if err == 0.0 else min(
                    _MAX_FACTOR, _SAFETY * err ** -0.2)
                if rejected:
                    factor = min(1.0, factor)
                h_abs = h * factor
                break
            h_abs = h * max(_MIN_FACTOR, _SAFETY * err ** -0.2)
            rejected, n_rej = True, n_rej + 1
        n_acc += 1
        t_new = target if t + h >= target else t + h
        # output points inside (t, t_new]: the continuous extension
        k_first = k_out
        k_out = bisect.bisect_right(times, t_new, k_first)
        if k_out > k_first:
            theta = (grid[k_first:k_out] - t) / h
            powers = theta[:, None] ** _POWERS  # [1, θ, θ², θ³, θ⁴]
            # rows 1-4 of YQ are Q (column-major n_y x 4), row 0 is y; one product
            # written in place: no temporaries of the block's size (at 80k states and
            # ~50 points per step a temporary is 32 MB of fresh pages)
            np.matmul(powers, YQ, out=out[k_first:k_out])
            if times[k_out - 1] == t_new:
                out[k_out - 1] = y5
        t = t_new
        y[:], k1[:] = y5, k7
        norm = math.sqrt(y.dot(y))  # np.linalg.norm's own formula, without its checks
        if not norm <= max_norm:
            _fail(f"blow-up: |y| = {norm:.3g} exceeds max_norm = {max_norm:.3g}"
                  if math.isfinite(norm) else "the state became NaN or infinite", t, y,
                  norm)
        if k_out > k_first:
            if land:
                since_projection += k_out - k_first
                if since_projection >= project_every or k_out == n_t:
                    since_projection = 0
                    y[:] = np.asarray(projection(t, y, B.p).full()).reshape(-1)
                    k1[:] = f(t, y)
                    out[k_out - 1] = y
            if on_output is not None:
                on_output(k_out)
    n_f += 6 * attempts
    return DopriResult(out, {"nsteps": n_acc, "nreject": n_rej, "nfevals": n_f})


def _integrate_c(loop: CLoop, grid: np.ndarray, y0: np.ndarray, p: np.ndarray, *,
                 rtol: float, atol: float, max_steps: int, max_norm: float,
                 on_output: Callable[[int], None] | None) -> DopriResult:
    """:func:`integrate_dopri` through a compiled loop: the start (``f(t0, y0)`` and the
    starting step) here, the attempts in C, the failures raised here from its status."""
    n_f = 0

    def f(t_: float, y_: np.ndarray) -> np.ndarray:
        nonlocal n_f
        n_f += 1
        return loop.rhs(t_, y_, p)

    t = float(grid[0])
    y = np.array(y0, dtype=float)
    k1 = f(t, y)
    out = np.empty((grid.size, y.size))
    out[0] = y
    if on_output is not None:
        on_output(1)
    if not np.all(np.isfinite(k1)):
        _fail("the right-hand side is NaN or infinite at the initial state", t, y)
    h_abs = _initial_step(f, t, y.copy(), k1.copy(), float(grid[-1] - t), rtol, atol)
    status, t, k_out, n_acc, n_rej, attempts = loop.run(
        grid, y, k1, h_abs, p, out, rtol=rtol, atol=atol, max_steps=max_steps,
        max_norm=max_norm, on_output=on_output)
    if status == 2:
        _fail(f"more than max_steps = {max_steps} attempted steps before "
              f"t = {float(grid[-1]):g}: the solution blows up or the system is stiff; "
              "use an implicit method (cvodes BDF) or raise max_steps", t, y)
    if status == 3:
        _fail("the step size fell below the round-off of t: the state became "
              "NaN or infinite, or the solution is singular here", t, y)
    if status in (4, 5):
        norm = math.sqrt(y.dot(y))
        _fail(f"blow-up: |y| = {norm:.3g} exceeds max_norm = {max_norm:.3g}"
              if math.isfinite(norm) else "the state became NaN or infinite", t, y, norm)
    if status != 0:
        raise SimulationError(f"dopri: the compiled loop failed ({status}) at t = {t:.6g}",
                              fix="run with loop='python'", time=t,
                              state_norm=float(np.linalg.norm(y)))
    n_f += 6 * attempts
    return DopriResult(out, {"nsteps": n_acc, "nreject": n_rej, "nfevals": n_f})


def _fail(what: str, t: float, y: np.ndarray, norm: float | None = None) -> None:
    norm = float(np.linalg.norm(y)) if norm is None else norm
    raise SimulationError(
        f"dopri: {what} (at t = {t:.6g}, |y| = {norm:.3g})",
        fix="the system blows up or is stiff here: check the parameters and initial "
            "state, or use an implicit method (cvodes BDF)",
        time=float(t), state_norm=norm)
