"""The template route for networks with a diffusion speed ``c`` (eq. 18-20).

:func:`compile_speed_network` assembles the vakonomic system of a
``Network(..., speed=c)`` problem — neurons (19) ``ẋ/c + x − σ(a) = 0``, multipliers
``μ`` as states with the dynamics (20) — as CasADi MX matrix-vector operations on the
sparse weight matrix, from the per-neuron templates of
:mod:`cognitive_action.derive.network_speed`. With ``W`` the sparse matrix over the arcs,
``a = W x``, ``ȧ = Ẇ x + W ẋ`` and ``s = g_a ∘ μ`` (zero on inputs):

    ẍ_h = −(h¹ + α N)/g_ξ̇                        (rows Ṅ + α N = 0 of eq. 19)
    ẍ_i = ë_i − 2α Ġ_i − β² G_i                   (input rows)
    ẅ   = (K_W − s[j] x[k]) / m_W                 (weight rows, eq. 9)
    f_x = K_x + L_F − g_ξ ∘ μ − Wᵀ s + ρ g_ξ̇ μ      (neuron rows, eq. 8)
    μ̇_h = (m_x ẍ_h − f_x,h)/g_ξ̇                   (eq. 20)
    δ_i = f_x,i − m_x ẍ_i                          (input multipliers, eq. 10)

Every row is explicit: the graph has no linear-solve node, and its size grows with the
number of distinct templates, not with the number of arcs (build times in
docs/performance.md; the generic route translates every entry of the mass-matrix form
instead).

The result is a :class:`~cognitive_action.compile.system.CompiledSystem` with the
generic route's states (``q, q̇, μ``), names, parameters, unknowns (``q̈, λ, μ̇``),
constraints (``G`` of the inputs, ``N`` of the neurons), IDAS form and projection, so
:func:`~cognitive_action.compile.simulate.simulate`,
:func:`~cognitive_action.compile.variants.stable_variant` and batch runs use it unchanged.

Examples
--------
>>> import sympy as sp
>>> import cognitive_action as cam
>>> c = sp.Symbol("c", positive=True)
>>> system = compile_speed_network(cam.chain(3, speed=c).problem(parameters=[c]))
>>> system.route, system.multiplier_states, system.vakonomic
('network_speed', ('mu_G2', 'mu_G3'), True)
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import casadi as ca
import numpy as np
import sympy as sp

from cognitive_action.compile.assembly import (
    argument_symbols,
    bind_parameters,
    bind_signals,
    column,
    constraint_projection,
    loss_forcing,
    parameter_names,
    signal_values,
    take,
)
from cognitive_action.compile.routes import BuildOptions, register_route
from cognitive_action.compile.system import CompiledSystem
from cognitive_action.compile.translate import Translator
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import MAX_ORDER, dot
from cognitive_action.derive.calculus import TimeDerivative
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.network import XI, A
from cognitive_action.derive.network_speed import (
    SpeedNetworkSystem,
    derive_speed_network,
    is_speed_network_problem,
)
from cognitive_action.errors import CompileError

__all__ = ["compile_speed_network", "is_speed_network_problem", "ROUTE"]

#: The ``route`` of the compiled systems made here.
ROUTE = "network_speed"

#: Linear solver of the (only) linear-solve node: the projection's Gauss-Newton steps.
_PROJECTION_SOLVER = "qr"

_ORDERS = range(MAX_ORDER + 1)


class _SpeedGraph:
    """The rows of eq. (8)-(9), (19)-(20) as MX operations at a symbolic ``(t, y, p)``."""

    def __init__(self, ns: SpeedNetworkSystem, pnames, sig_exprs) -> None:
        problem, net, tpl = ns.problem, ns.network, ns.template
        self.ns, self.pnames, self.sig_exprs, self.tpl = ns, tuple(pnames), sig_exprs, tpl
        self.nu, self.ne = len(net.order), len(ns.targets)
        self.tg_l, self.sc_l = ns.targets.tolist(), ns.sources.tolist()
        self.perm = np.lexsort((ns.targets, ns.sources)).tolist()
        self.spW = (ca.Sparsity.triplet(self.nu, self.nu, ns.targets[self.perm].tolist(),
                                        ns.sources[self.perm].tolist()) if self.ne else None)
        self.neurons = [str(x) for x in net.neurons]
        self.inputs = ns.input_index.tolist()
        self.hidden = ns.hidden_index.tolist()
        order = self.inputs + self.hidden
        self.inv = None if order == list(range(self.nu)) else np.argsort(order).tolist()
        sig_jets = {dot(s, k) for s in problem.signals for k in _ORDERS}
        self.input_exprs = []
        for i in self.inputs:
            c = problem.constraints[i]
            xi = net.neurons[i]
            D = TimeDerivative(sig_jets | {dot(xi, k) for k in _ORDERS})
            self.input_exprs.append((c.expr, D(c.expr), ns.input_accelerations[i]))
        zero = {dot(XI, 2): 0}
        self.kin_x = ns.kinetic_x.xreplace(zero)
        self.kin_w = ns.kinetic_w.xreplace(zero)
        idx = {s: i for i, s in enumerate(net.neurons)}
        self.loss = [(idx[q], e) for q, e in ns.loss_gradient.items() if e != 0]

    def assemble(self, v_in: list, v_h):
        """A vector over all neurons (network order) from input and hidden parts."""
        parts = [column(v, 1) for v in v_in] + ([v_h] if self.hidden else [])
        full = ca.vertcat(*parts)
        return full if self.inv is None else full[self.inv]

    def build(self, tt, y, p) -> dict[str, object]:
        nu, ne, hidden, inputs = self.nu, self.ne, self.hidden, self.inputs
        nh = len(hidden)
        base: dict[str, object] = {"t": tt}
        bind_parameters(base, self.pnames, p)
        bind_signals(base, self.sig_exprs, Translator(base))
        n_q = nu + ne
        x, w = y[:nu], y[nu:n_q]
        xd, wd = y[n_q:n_q + nu], y[n_q + nu:2 * n_q]
        mu = y[2 * n_q:2 * n_q + nh]
        if ne:
            W, Wd = ca.MX(self.spW, w[self.perm]), ca.MX(self.spW, wd[self.perm])
        else:
            W = Wd = ca.MX(nu, nu)
        a = ca.mtimes(W, x)
        adot = ca.mtimes(Wd, x) + ca.mtimes(W, xd)
        tpl = self.tpl
        tr0 = Translator(base)
        q: dict[str, object] = {"x": x, "w": w, "xd": xd, "wd": wd, "mu": mu, "W": W}
        q["g_xidot"] = tr0(tpl.g_xidot)
        q["m_x"], q["m_w"], q["rate"] = tr0(self.ns.mass_x), tr0(self.ns.mass_W), \
            tr0(self.ns.rate)
        if nh:
            trh = Translator(base | {XI.name: take(x, hidden),
                                     XI.name + "_dot": take(xd, hidden),
                                     A.name: take(a, hidden),
                                     A.name + "_dot": take(adot, hidden)})
            N, gxi_h, ga_h, h1 = (column(trh(e), nh) for e in (tpl.g, tpl.g_xi, tpl.g_a, tpl.h1))
        else:
            N = gxi_h = ga_h = h1 = ca.MX(0, 1)
        q["N"], q["h1"] = N, h1
        vals_i = dict(base)
        for i in inputs:
            vals_i[self.neurons[i]] = x[i]
            vals_i[self.neurons[i] + "_dot"] = xd[i]
        tri = Translator(vals_i)
        q["G_in"] = [column(tri(e[0]), 1) for e in self.input_exprs]
        q["Gd_in"] = [column(tri(e[1]), 1) for e in self.input_exprs]
        q["acc_in"] = [column(tri(e[2]), 1) for e in self.input_exprs]
        n_in = len(inputs)
        mu_full = self.assemble([0.0] * n_in, mu)
        ga_full = self.assemble([0.0] * n_in, ga_h)
        gxi_full = self.assemble([0.0] * n_in, gxi_h)
        s = ga_full * mu_full
        # f_x = K_x + L_F − Σ_j μ_j N^j_x + ρ g_ξ̇ μ  with  Σ_j μ_j N^j_x = g_ξ ∘ μ + Wᵀ s
        trx = Translator(base | {XI.name: x, XI.name + "_dot": xd})
        f_x = column(trx(self.kin_x), nu) + loss_forcing(self.loss, self.neurons, base, x, xd)
        f_x = f_x - gxi_full * mu_full - ca.mtimes(W.T, s) + q["rate"] * q["g_xidot"] * mu_full
        q["f_x"] = f_x
        if ne:
            trw = Translator(base | {XI.name: w, XI.name + "_dot": wd})
            q["f_w"] = column(trw(self.kin_w), ne) - s[self.tg_l] * x[self.sc_l]
        else:
            q["f_w"] = ca.MX(0, 1)
        return q


def _as_system(system: Problem | EulerLagrange | SpeedNetworkSystem) -> SpeedNetworkSystem:
    if isinstance(system, SpeedNetworkSystem):
        return system
    if isinstance(system, EulerLagrange):
        return derive_speed_network(system.problem)
    if isinstance(system, Problem):
        return derive_speed_network(system)
    raise CompileError(f"cannot compile a {type(system).__name__} by the speed-network "
                       "template route",
                       fix="pass a Problem made by Network(..., speed=c).problem(), its "
                       "EulerLagrange, or a SpeedNetworkSystem")


@register_route("speed_network")
def _speed_network_route(system: SpeedNetworkSystem, options: BuildOptions) -> CompiledSystem:
    return compile_speed_network(system, signals=options.signals, name=options.name)


def compile_speed_network(system: Problem | EulerLagrange | SpeedNetworkSystem, *,
                          signals: Mapping[str | sp.Symbol, object] | None = None,
                          name: str | None = None) -> CompiledSystem:
    """Compile a speed-``c`` network (eq. 19-20, vakonomic rule) from its templates.

    Parameters
    ----------
    system
        A problem made by ``Network(..., speed=c).problem()``, its
        :class:`~cognitive_action.derive.euler_lagrange.EulerLagrange` (only its problem
        is used), or a :class:`~cognitive_action.derive.network_speed.SpeedNetworkSystem`.
    signals
        Signals given as SymPy expressions of ``t`` (or numbers), by name; the others
        are constant runtime parameters (as in
        :func:`~cognitive_action.compile.system.compile_system`).
    name
        Name for reports (default: the problem's).

    Returns
    -------
    CompiledSystem
        ``route == "network_speed"``; states ``q, q̇, μ`` and every other field in the
        generic route's order and naming.

    Raises
    ------
    DerivationError
        The problem is not an unmodified speed-network problem under the vakonomic rule
        (the message says what; the generic route handles it).
    CompileError
        Something other than a problem, or an unknown signal.
    """
    t0 = time.perf_counter()
    ns = _as_system(system)
    problem = ns.problem
    sig_exprs, constants, described = signal_values(problem, signals, ca.MX)
    pnames = parameter_names(problem, constants)
    graph = _SpeedGraph(ns, pnames, sig_exprs)
    nu, ne = graph.nu, graph.ne
    nh = len(graph.hidden)
    coords = graph.neurons + [w.name for w in ns.network.weights]
    mu_names = [str(m) for m in ns.multiplier_states]
    states = coords + [c + "_dot" for c in coords] + mu_names
    tt, y, p = argument_symbols(ca.MX, len(states), len(pnames) + 2)
    alpha, beta = p[len(pnames)], p[len(pnames) + 1]
    q = graph.build(tt, y, p)
    m_x, m_w, gv = q["m_x"], q["m_w"], q["g_xidot"]
    hidden, inputs = graph.hidden, graph.inputs
    acc_in = [e - 2 * alpha * gd - beta * beta * g
              for e, g, gd in zip(q["acc_in"], q["G_in"], q["Gd_in"])]
    xdd_h = -(q["h1"] + alpha * q["N"]) / gv if nh else ca.MX(0, 1)
    xdd = graph.assemble(acc_in, xdd_h)
    wdd = q["f_w"] / m_w
    f_x = q["f_x"]
    mudot = (m_x * xdd_h - take(f_x, hidden)) / gv if nh else ca.MX(0, 1)
    lam = [f_x[i] - m_x * xdd[i] for i in inputs]
    ydot = ca.vertcat(q["xd"], q["wd"], xdd, wdd, mudot)
    rhs = ca.Function("rhs", [tt, y, p], [ydot], ["t", "y", "p"], ["ydot"])
    unknown_names = tuple(c + "_ddot" for c in coords) + \
        tuple(str(m) for m in ns.multipliers) + tuple(m + "_dot" for m in mu_names)
    unknowns = ca.Function("unknowns", [tt, y, p], [ca.vertcat(xdd, wdd, *lam, mudot)],
                           ["t", "y", "p"], ["u"])
    G = ca.vertcat(*q["G_in"], q["N"])
    Gd = ca.vertcat(*q["Gd_in"], ca.MX.zeros(nh))
    constraints = ca.Function("constraints", [tt, y, p], [G, Gd], ["t", "y", "p"],
                              ["G", "Gdot"])
    # index-1 DAE for IDAS as in the generic route: z = unknowns, 0 = M z − f
    n_in, nq = len(inputs), nu + ne
    z = ca.MX.sym("z", len(unknown_names))
    z_xdd, z_wdd = z[:nu], z[nu:nq]
    z_lam, z_mud = z[nq:nq + n_in], z[nq + n_in:]
    lam_full = graph.assemble([z_lam[k] for k in range(n_in)], ca.MX.zeros(nh))
    mud_full = graph.assemble([0.0] * n_in, z_mud)
    alg = ca.vertcat(m_x * z_xdd + lam_full - gv * mud_full - f_x,
                     m_w * z_wdd - q["f_w"],
                     *[z_xdd[i] - e for i, e in zip(inputs, acc_in)],
                     gv * take(z_xdd, hidden) + q["h1"] + alpha * q["N"] if nh
                     else ca.MX(0, 1))
    dae_fn = ca.Function("dae", [tt, y, z, p],
                         [ca.vertcat(q["xd"], q["wd"], z_xdd, z_wdd, z_mud), alg],
                         ["t", "y", "z", "p"], ["ode", "alg"])
    Gh = ca.vertcat(*q["G_in"]) if n_in else None
    Vv = ca.vertcat(*q["Gd_in"], q["N"]) if n_in + nh else None

    def projection() -> ca.Function:
        return constraint_projection(tt, y, p, nq, Gh, Vv, _PROJECTION_SOLVER)

    cons = ns.problem.holonomic + ns.problem.nonholonomic_constraints
    out = CompiledSystem(
        name=name or problem.name, route=ROUTE, states=tuple(states),
        coordinates=tuple(coords), velocities=tuple(states[nq:2 * nq]),
        multiplier_states=tuple(mu_names), parameters=pnames, rhs=rhs, unknowns=unknowns,
        unknown_names=unknown_names, multipliers=tuple(str(m) for m in ns.multipliers),
        constraints=constraints,
        constraint_names=tuple(c.name for c in cons),
        constraint_kinds=tuple(c.kind for c in cons), projection_builder=projection,
        dae={"function": dae_fn, "z_names": unknown_names}, vakonomic=True,
        linear_solver=_PROJECTION_SOLVER, build_time=0.0, signals=described)
    out.build_time = time.perf_counter() - t0
    out.origin = (system, {"signals": signals, "name": name})
    return out
