"""One presentation of a sample to the full derived dynamics, compiled once.

A sample is presented for a time ``τ``: its inputs and targets are constant parameters
of the compiled system (:func:`~cognitive_action.compile.system.compile_system` without
``signals=``) over ``[t_k, t_k + τ]``. :func:`compile_presentation` builds one CasADi
function per run that does everything a presentation needs, called once per sample
through a buffer:

1. **the switch**: the neurons are put on the constraint manifold of the new sample,
   ``G = 0`` and ``Ġ = 0`` (eq. 4, 11), weights and weight velocities kept. For the
   instantaneous neurons of eq. (4) (``g_ξ = 1``, checked on the derived templates) and a
   feedforward net, the Jacobi step ``x ← x − G``, ``ẋ ← ẋ − Ġ`` on the compiled
   constraints fixes one more level of the graph per step (``x`` and ``ẋ`` of level
   ``l`` need those of the levels below, right after step ``l``), so as many steps as
   the graph has levels are exact (no linear solve, no symbolic solve). The residuals
   ``max |G|`` and ``max |Ġ|`` after it are outputs.
2. **the motion**: eq. (8)-(10) with finite masses and ``ϖ = exp(θt)`` divided through
   (``m q̈ + ρ m q̇ = …``, ``ρ = ϖ̇/ϖ`` from the derivation). On the manifold the state is
   ``(W, Ẇ)``; the neurons are functions of it. The stiff part of the motion is the
   damping ``−ρ q̇`` (its eigenvalues ``−θ``; the rest are of order one), so the weights
   are advanced by an exponential time-differencing scheme that integrates
   ``q̇ = v, v̇ = −ρ v`` exactly and treats ``n = Ẅ + ρ Ẇ`` (the compiled right-hand side's
   weight rows plus the damping, i.e. ``−δ_j G^j_W/m_W`` of eq. 9) as the forcing
   (Cox & Matthews 2002):

   - ``order=1`` (ETD1): ``n`` frozen over the step;
   - ``order=2`` (ETD2RK): a predictor, ``n`` at the predicted state, a correction
     with ``φ₂``.

   The coefficients (``e^{hL}``, ``h φ₁(hL)``, ``h φ₂(hL)`` of the 2×2 block
   ``L = [[0, 1], [0, −ρ]]``) come from one matrix exponential of an augmented 4×4
   matrix (:func:`etd_coefficients`), exact for any ``ρ h``, also ``ρ = 0``. Before every
   evaluation of ``n`` the neurons are put back on the manifold (step 1 with the same
   sample: a drift correction), so ``n`` is always evaluated at a consistent state.

With ``steps = 1`` and ``order = 1`` one presentation costs one switch and one
right-hand side; its local error is of order ``τ²`` in the drift of ``n`` over the
presentation — the order by which SGD itself (an Euler step) differs from the gradient
flow over ``τ`` it approximates. More steps or ``order = 2`` integrate the presentation
more accurately (order 1 or 2 in ``τ/steps``).

Examples
--------
>>> import numpy as np
>>> E01, E11, c1, d1, c2, d2 = etd_coefficients(rate=0.0, h=0.5)
>>> [round(float(v), 12) for v in (E01, E11, c1, d1, c2, d2)]
[0.5, 1.0, 0.125, 0.5, 0.041666666667, 0.25]
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np
import sympy as sp
from scipy.linalg import expm

from cognitive_action.compile.system import CompiledSystem
from cognitive_action.declare.network import Network
from cognitive_action.derive.network import NetworkSystem
from cognitive_action.errors import DerivationError

__all__ = ["Presentation", "compile_presentation", "etd_coefficients", "jacobi_switch"]

ORDERS = (1, 2)


def etd_coefficients(rate: float, h: float) -> tuple[float, ...]:
    """The exponential time-differencing coefficients of ``q̇ = v``, ``v̇ = −ρ v + n``.

    With ``L = [[0, 1], [0, −ρ]]``: ``e^{hL} = [[1, E01], [0, E11]]``, and the second
    columns ``(c1, d1)`` of ``h φ₁(hL)`` and ``(c2, d2)`` of ``h φ₂(hL)``, read from the
    exponential of the augmented matrix ``[[hL, h e_v, 0], [0, 0, 1], [0, 0, 0]]``.

    >>> E01, E11, c1, d1, *_ = etd_coefficients(50.0, 1.0)
    >>> round(E01, 12), E11 < 1e-21, round(c1, 12), round(d1, 12)
    (0.02, True, 0.0196, 0.02)
    """
    M = np.zeros((4, 4))
    M[0, 1] = h
    M[1, 1] = -rate * h
    M[1, 2] = h
    M[2, 3] = 1.0
    R = expm(M)
    return (float(R[0, 1]), float(R[1, 1]), float(R[0, 2]), float(R[1, 2]),
            float(R[0, 3]), float(R[1, 3]))


def _check_instantaneous(ns: NetworkSystem) -> None:
    for tpl in ns.templates:
        if sp.simplify(tpl.g_xi - 1) != 0:
            raise DerivationError(
                f"the neuron template has g_ξ = {tpl.g_xi}, not 1: the Jacobi switch is "
                "exact for instantaneous neurons x = σ(a) only",
                fix="declare neurons as x - σ(a) (eq. 4)")
    if not ns.network.is_feedforward:
        raise DerivationError("the presentation's switch is exact for feedforward nets",
                              fix="use data.run_stream (Newton steps, iterated) for nets "
                              "with cycles")


def _levels(net: Network) -> int:
    """Levels of the graph (longest path from the inputs, plus one)."""
    depth: dict = {}
    for n in net.order:
        preds = list(net.graph.predecessors(n))
        depth[n] = 0 if not preds else 1 + max(depth[p] for p in preds)
    return 1 + max(depth.values())


def jacobi_switch(system: CompiledSystem, ns: NetworkSystem, t, y, p):
    """``y`` with ``x`` and ``ẋ`` put on the manifold ``G = 0``, ``Ġ = 0`` (MX).

    One Jacobi step ``x ← x − G``, ``ẋ ← ẋ − Ġ`` on the compiled constraints per level
    of the graph (``g_ξ = 1``: each step fixes one more level of a feedforward graph,
    inputs included).
    Returns ``(y⁺, G, Ġ)`` at ``y⁺``.
    """
    nu, ne = len(ns.network.order), len(ns.targets)
    nq = nu + ne
    x, w, xd, wd = y[:nu], y[nu:nq], y[nq:nq + nu], y[nq + nu:]
    for _ in range(_levels(ns.network)):
        G, Gd = system.constraints(t, ca.vertcat(x, w, xd, wd), p)
        x, xd = x - G, xd - Gd
    y_plus = ca.vertcat(x, w, xd, wd)
    G, Gd = system.constraints(t, y_plus, p)
    return y_plus, G, Gd


@dataclass(frozen=True)
class Presentation:
    """A compiled presentation of one sample (:func:`compile_presentation`).

    Attributes
    ----------
    function
        ``(y, [p; t_k]) → (y_end, max|G|, max|Ġ|)``: the switch to the sample at ``t_k``,
        then ``steps`` steps over ``τ``; the residuals are those after the switch.
    tau, steps, order, rate
        The presentation time, the steps, the ETD order and ``ρ = ϖ̇/ϖ``.
    scheme
        A description for reports.
    """

    function: ca.Function
    tau: float
    steps: int
    order: int
    rate: float
    scheme: str


def compile_presentation(system: CompiledSystem, ns: NetworkSystem, *, tau: float,
                         rate: float, steps: int = 1, order: int = 1) -> Presentation:
    """Build the per-sample function of the full derived dynamics (see the module).

    Parameters
    ----------
    system
        The network route's compiled system of ``ns.problem`` (signals as parameters).
    ns
        Its derived :class:`~cognitive_action.derive.network.NetworkSystem`.
    tau
        Presentation time of a sample.
    rate
        ``ρ = ϖ̇/ϖ`` (``θ`` for ``ϖ = exp(θt)``), a number.
    steps, order
        ETD steps per presentation and their order (1 or 2).

    Raises
    ------
    DerivationError
        Neurons that are not ``x = σ(a)``, or a net with cycles.
    ValueError
        ``order`` not 1 or 2, ``steps < 1``, ``tau <= 0``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if int(steps) != steps or steps < 1 or not tau > 0:
        raise ValueError(f"steps = {steps!r}, tau = {tau!r}")
    _check_instantaneous(ns)
    key = ("presentation", float(tau), float(rate), int(steps), int(order))
    hit = system._cache.get(key)
    if hit is not None:
        return hit
    nu, ne = len(ns.network.order), len(ns.targets)
    nq = nu + ne
    n_y, n_p = system.n_states, system.n_parameters
    y = ca.MX.sym("y", n_y)
    P = ca.MX.sym("p", n_p + 1)
    p, tk = P[:n_p], P[n_p]
    h = float(tau) / int(steps)
    E01, E11, c1, d1, c2, d2 = etd_coefficients(float(rate), h)

    def forcing(t, on):
        """The weights' ``n = Ẅ + ρ Ẇ`` at a state on the manifold."""
        return system.rhs(t, on, p)[nq + nu:] + rate * on[nq + nu:]

    y0, G0, Gd0 = jacobi_switch(system, ns, tk, y, p)
    cur = y0
    for i in range(int(steps)):
        t = tk + i * h
        on = cur if i == 0 else jacobi_switch(system, ns, t, cur, p)[0]
        n0 = forcing(t, on)
        w, wd = on[nu:nq], on[nq + nu:]
        w1 = w + E01 * wd + c1 * n0
        wd1 = E11 * wd + d1 * n0
        if order == 2:
            pred, _, _ = jacobi_switch(system, ns, t + h,
                                       ca.vertcat(on[:nu], w1, on[nq:nq + nu], wd1), p)
            dn = forcing(t + h, pred) - n0
            w1 = w1 + c2 * dn
            wd1 = wd1 + d2 * dn
        cur = ca.vertcat(on[:nu], w1, on[nq:nq + nu], wd1)
    fn = ca.Function("presentation", [y, P],
                     [cur, ca.mmax(ca.fabs(G0)), ca.mmax(ca.fabs(Gd0))],
                     ["y", "p"], ["y_end", "g_residual", "gdot_residual"])
    label = (f"ETD{order} ({'exponential Euler' if order == 1 else 'Cox-Matthews ETD2RK'}), "
             f"{steps} step{'s' * (steps != 1)} per presentation, Jacobi switch")
    out = Presentation(fn, float(tau), int(steps), int(order), float(rate), label)
    system._cache[key] = out
    return out
