"""The verifier: named checks of a derived learning law, gathered in a :class:`Report`.

:func:`verify` runs, as they apply to the problem:

``masses``
    The masses (or the mass matrix) positive definite with the given values, at the
    initial state when there is one, and eq. (8)-(10) solvable there: the physical
    checks a run makes before it starts (:mod:`cognitive_action.derive.physical`).
``rank``
    Proposition 1: full rank of ``G_ξ`` (network problems) or of ``G_q``.
``backprop.symbolic``
    The reduced system of the backprop limit (:func:`~cognitive_action.derive.limits.reduce`,
    eq. 15-17) against ``sympy.diff`` of the composed loss ``V(f_W(e))``: every
    difference must simplify to 0 (small networks, ``ϖ = exp(θt)``).
``backprop.numeric.*``
    The derived law in the limit (:mod:`cognitive_action.verify.laws`) at a random
    state against CasADi AD of an independent forward pass (``multipliers``,
    ``weights``, relative error ≤ ``rtol``), against finite differences
    (``finite_differences``) and per layer (``layers``: cosine, angle, relative error,
    sign agreement from :mod:`cognitive_action.verify.metrics`).
``convergence.mass_ratio``
    The order of convergence of eq. (10) toward the limit as ``m_x/m_W → 0``
    (expected 1: the ratio enters eq. 10 linearly).
``stability.multipliers``
    Eigenvalues of ``∂μ̇/∂μ`` for non-holonomic (vakonomic) multipliers: eq. (20)
    is anti-stable forward in time (design.md); the check names the variants to use.
``initial_conditions``
    Consistency of initial conditions (the general form of eq. 11).
``formula.<name>``
    A user-supplied formula (e.g. eq. 15 as printed) against the derived one.

Examples
--------
>>> import sympy as sp
>>> import cognitive_action as ca
>>> from cognitive_action.declare import symbols as S
>>> theta, = S.parameters("theta")
>>> p = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
>>> report = verify(p, seed=1)
>>> report.exit_code, report["backprop.symbolic"].status
(0, 'pass')
>>> report["backprop.numeric.multipliers"].value < 1e-9
True
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import sympy as sp

from cognitive_action.declare.energy import EnergyModel
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.initial import (
    complete_initial_conditions,
    complete_network_initial_conditions,
    is_plain_network,
    network_constraint_jacobian,
    network_constraint_residuals,
    network_names,
)
from cognitive_action.derive.initial import (
    validate_initial_conditions as _check_ic,
)
from cognitive_action.derive.limits import GAMMA, Limit, backprop, backprop_limit, reduce
from cognitive_action.derive.network import NetworkState, derive_network, is_network_problem
from cognitive_action.derive.rank import constraint_rank, triangular_full_rank
from cognitive_action.errors import (
    CognitiveActionError,
    DeclarationError,
    InconsistentInitialConditionsError,
)
from cognitive_action.verify import metrics
from cognitive_action.verify.budget import DEFAULT_BUDGET, run_with_budget
from cognitive_action.verify.laws import (
    Law,
    LearningLaw,
    as_learning_law,
    derived_limit,
    evaluate_at_ratio,
)
from cognitive_action.verify.reference import (
    casadi_gradients,
    composed_loss,
    depths,
    forward_pass,
    input_expressions,
    loss_of,
    network_of,
    numpy_forward,
    random_sample,
)
from cognitive_action.verify.report import Check, Report

__all__ = ["verify", "random_state", "check_masses", "check_rank", "check_rank_symbolic",
           "check_backprop_symbolic", "SYMBOLIC_MAX",
           "check_backprop_numeric", "check_convergence", "check_stability",
           "check_initial_conditions", "check_formula", "ANTI_STABLE_VARIANTS",
           "GENERIC_ANTI_STABLE_VARIANTS"]

#: What to run instead of integrating anti-stable multiplier dynamics forward in time.
ANTI_STABLE_VARIANTS = (
    "integrate the multipliers backward in time (an adjoint sweep, as for costates: "
    "compile.adjoint_sweep)",
    "the quasi-static reduction (c -> oo: T delta = -V_x, derive.limits.backprop(speed=c))",
    "the stable relaxation c^-1 delta_dot = -(T delta + V_x), same equilibrium "
    "(the backward diffusion wave)",
)

#: The same for a problem whose non-holonomic constraints are not neurons with a speed
#: ``c`` (eq. 18-19): the quasi-static and relaxation variants do not apply there.
GENERIC_ANTI_STABLE_VARIANTS = (
    ANTI_STABLE_VARIANTS[0],
    "if the constraints are the phase dynamics x_dot = -dE/dx of an energy (an "
    "energy-based law such as equilibrium propagation), declare the energy with "
    "declare.energy.EnergyModel (or hopfield): its verifier relaxes the phases to their "
    "fixed points and checks the EP update against recurrent backprop",
)


#: Largest network (neurons) or constraint set on which :func:`verify` runs the symbolic
#: checks that grow fast with the size (row reduction of ``G_ξ``, ``simplify`` of the
#: reduced backprop system) unless asked with ``symbolic=True`` (docs/performance.md).
SYMBOLIC_MAX = 6


# -- states ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampledState:
    """A random consistent state of a network problem with static signals."""

    state: NetworkState
    values: dict[str, float]


def random_state(problem: Problem, *, seed: int = 0, scale: float = 1.0,
                 values: Mapping[str, float] | None = None) -> SampledState:
    """Random weights ``N(0, scale²/fan_in)``, inputs and targets ``N(0, 1)``, ``x`` from
    the forward pass, zero velocities (consistent: ``G = 0``, ``Ġ = 0`` with ``ė = 0``).
    """
    network_of(problem)  # raises a typed error for a graph with cycles
    w, vals = _random_weights(problem, seed=seed, scale=scale, values=values)
    x, _ = numpy_forward(problem, w, vals)
    z = np.zeros_like(x)
    return SampledState(NetworkState(x=x, x_dot=z, w=w, w_dot=np.zeros_like(w),
                                     t=vals["t"]), vals)


def _random_weights(problem: Problem, *, seed: int = 0, scale: float = 1.0,
                    values: Mapping[str, float] | None = None
                    ) -> tuple[np.ndarray, dict[str, float]]:
    """Weights ``N(0, scale²/fan_in)``, a generic time, signals ``N(0, 1)`` at rest
    (:func:`~cognitive_action.verify.reference.random_sample`)."""
    return random_sample(problem, seed=seed, scale=scale, values=values)


def _consistent_state(problem: Problem, *, seed: int = 0,
                      values: Mapping[str, float] | None = None) -> SampledState:
    """A random state with ``G = 0``, ``Ġ = 0`` whatever the loss: the forward pass of a
    feedforward net, a fixed point (Newton) of a net with cycles; the weights of
    :func:`random_state`."""
    net = problem.network
    w, vals = _random_weights(problem, seed=seed, values=values)
    given = {str(p): 1.0 for p in problem.parameters} | vals
    names = network_names(net)
    given |= dict(zip(names[2], w.tolist()))
    ic = complete_network_initial_conditions(problem, given, t0=vals["t"])
    x = np.array([ic[s] for s in names[0]])
    return SampledState(NetworkState(x=x, x_dot=np.zeros_like(x), w=w,
                                     w_dot=np.zeros_like(w), t=vals["t"]), vals)


def _rel(a: np.ndarray, g: np.ndarray) -> float:
    return float(metrics.relative_error(a, g))


# -- Proposition 1 -----------------------------------------------------------------------
def _no_constraints(name: str) -> Check:
    return Check(name, "skip", message="the problem has no constraints: Proposition 1 "
                 "(full rank of the constraint Jacobian) has nothing to rank",
                 details={"skipped": "not applicable"})


def check_rank(problem: Problem, *, tol: float = 1e-10, seed: int = 0,
               values: Mapping[str, float] | None = None, samples: int = 3,
               symbolic_max: int | None = None) -> Check:
    """Proposition 1, numerically: rank of ``G_ξ`` (networks) or ``G_q`` by SVD.

    Networks: ``G_ξ`` from the per-neuron templates at ``samples`` random consistent
    states (the forward pass, or a fixed point for a graph with cycles); other problems:
    :func:`~cognitive_action.derive.rank.constraint_rank` at random points. The smallest
    rank found counts. Cost: one dense SVD per sample. :func:`check_rank_symbolic` is
    the exact counterpart (``symbolic_max`` is accepted for compatibility and unused).
    """
    if not problem.constraints:
        return _no_constraints("rank")
    plain_network = is_network_problem(problem) and is_plain_network(problem)
    what = "G_xi" if plain_network else "G_q"
    if plain_network:
        net = problem.network
        ranks = []
        for k in range(max(1, samples)):
            try:
                st = _consistent_state(problem, seed=seed + k, values=values)
            except InconsistentInitialConditionsError:
                continue  # no fixed point at these weights: try the next sample
            vals = {str(p): 1.0 for p in problem.parameters} | st.values
            names = network_names(net)
            vals |= dict(zip(names[0], st.state.x.tolist()))
            vals |= dict(zip(names[2], st.state.w.tolist()))
            J = network_constraint_jacobian(problem, vals)
            s = np.linalg.svd(J.toarray(), compute_uv=False)
            ranks.append((int(np.sum(s > tol * s[0])) if s[0] > 0 else 0, s))
        if not ranks:
            return Check("rank", "skip", None, len(net.order),
                         f"no consistent state found at {samples} random weights (no fixed "
                         "point of the network): the rank was not measured",
                         {"skipped": "not applicable"})
        rank, sv = min(ranks, key=lambda x: x[0])
        size = len(net.order)
        full = rank == size
        dependent: tuple[str, ...] = ()
        method = "numeric"
    else:
        r = constraint_rank(problem, method="numeric", tol=tol, seed=seed, at=values,
                            samples=samples)
        rank, size, full, dependent, sv = r.rank, r.size, r.full, r.dependent, \
            np.asarray(r.singular_values)
        method = r.method
    details = {"method": method, "dependent": list(dependent), "samples": samples,
               "sigma_min/sigma_max": float(sv[-1] / sv[0]) if len(sv) and sv[0] else None}
    msg = (f"{what} has rank {rank} of {size} (SVD at {samples} random states)" if full
           else f"{what} has rank {rank} < {size}: dependent constraints "
           f"{', '.join(dependent) or '?'}; remove them or use a feedforward graph")
    return Check("rank", "pass" if full else "fail", rank, size, msg, details)


def _has_long_cycle(net) -> bool:
    """A directed cycle through two neurons or more (self-loops do not count)."""
    import networkx as nx

    g = nx.DiGraph(net.graph)
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return not nx.is_directed_acyclic_graph(g)


def check_rank_symbolic(problem: Problem, *, seed: int = 0,
                        values: Mapping[str, float] | None = None,
                        reduce_max: int | None = None) -> Check:
    """Proposition 1, exactly: the generic rank of ``G_ξ`` (networks) or ``G_q``.

    First the triangular certificate of
    :func:`~cognitive_action.derive.rank.triangular_full_rank` (linear in the arcs, any
    size: Proposition 1's own argument), then row reduction, whose cost grows fast with
    the size: with ``reduce_max`` set, larger systems are reported as skipped instead.
    Run it under a time budget (:func:`verify` does).
    """
    if not problem.constraints:
        return _no_constraints("rank.symbolic")
    # G_xi for a network as built; G_q over every coordinate once constraints were
    # added (tied weights): those rows do not involve the neurons
    network = is_network_problem(problem) and is_plain_network(problem)
    wrt = list(problem.network.neurons) if network else None
    what = "G_xi" if network else "G_q"
    at = values or None
    n = len(problem.constraints)
    too_big = reduce_max is not None and n > reduce_max
    if too_big and network and _has_long_cycle(problem.network):
        cert = False  # a cycle through two neurons or more: G_xi is not triangular
    else:
        cert = triangular_full_rank(problem, wrt=wrt, at=at, seed=seed)
    if cert:
        return Check("rank.symbolic", "pass", n, n,
                     f"{what} has generic rank {n} of {n}: triangular (acyclic "
                     "dependencies) with no zero on the diagonal",
                     {"method": "triangular certificate"})
    if too_big:
        return Check("rank.symbolic", "skip", None, n,
                     f"{what} is not triangular and row reduction of {n} > {reduce_max} "
                     "constraints can take minutes: pass symbolic=True (or [verify] "
                     "symbolic = true) to run it under the time budget",
                     {"skipped": "size", "size": n, "symbolic_max": reduce_max})
    r = constraint_rank(problem, wrt=wrt, method="symbolic", at=at, seed=seed)
    msg = (f"{what} has generic rank {r.rank} of {r.size} (row reduction)" if r.full else
           f"{what} has generic rank {r.rank} < {r.size}: dependent constraints "
           f"{', '.join(r.dependent) or '?'}")
    return Check("rank.symbolic", "pass" if r.full else "fail", r.rank, r.size, msg,
                 {"method": "row reduction", "dependent": list(r.dependent)})


# -- backprop limit, symbolic ------------------------------------------------------------
def _perturbed_loss(problem: Problem) -> tuple[sp.Expr, list[sp.Symbol]]:
    """``V(f_W(e) + p)``: the composed loss with an additive ``p_j`` on each output."""
    net = network_of(problem)
    ps = [sp.Symbol(f"_p{i}", real=True) for i in range(len(net.order))]
    e = input_expressions(problem)
    out: dict[sp.Symbol, sp.Expr] = {}
    for j, p in zip(net.order, ps):
        if j in net.inputs:
            out[net.x[j]] = e[j] + p
        else:
            a = sp.Add(*(net.w[j, k] * out[net.x[k]] for k in net.graph.predecessors(j)))
            out[net.x[j]] = net.activation_of(j)(a) + p
    return loss_of(problem).xreplace(out), ps


def _is_zero(expr: sp.Expr, rng: np.random.Generator, samples: int = 3) -> tuple[bool, float]:
    """Exact zero test (expand, then simplify) plus the largest value at random points."""
    syms = sorted(expr.free_symbols, key=str)
    worst = 0.0
    if syms:
        f = sp.lambdify(syms, expr, "numpy", dummify=True)  # same-name symbols stay apart
        for _ in range(samples):
            worst = max(worst, abs(float(f(*rng.standard_normal(len(syms))))))
    else:
        worst = abs(float(expr))
    zero = sp.expand(expr) == 0 or sp.simplify(expr) == 0
    return zero, worst


def check_backprop_symbolic(problem: Problem, *, el: EulerLagrange | None = None,
                            gamma: sp.Symbol = GAMMA, seed: int = 0) -> Check:
    """Reduced eq. (15)-(17) against ``sympy.diff`` of the composed loss (small nets)."""
    name = "backprop.symbolic"
    net = network_of(problem)
    el = el or euler_lagrange(problem)
    if not isinstance(el.rate, sp.Symbol):
        return Check(name, "skip", message="needs the time weight exp(theta t): the limit "
                     "takes theta = gamma/m_W")
    red = reduce(el, backprop_limit(problem, gamma=gamma))
    sol = red.solve()
    fwd = forward_pass(net, input_expressions(problem))
    Vbar = composed_loss(problem)
    Vp, ps = _perturbed_loss(problem)
    at0 = dict.fromkeys(ps, 0)
    rng = np.random.default_rng(seed)
    diffs: dict[str, str] = {}
    worst = 0.0
    for w in net.weights:
        d = sol[dot(w)].xreplace(fwd) + sp.diff(Vbar, w) / gamma
        zero, val = _is_zero(d, rng)
        worst = max(worst, val)
        if not zero:
            diffs[str(dot(w))] = str(d)
    for c, p in zip(problem.constraints, ps):
        lam = red.multiplier_of(c.name)
        d = sol[lam].xreplace(fwd) + sp.diff(Vp, p).xreplace(at0)
        zero, val = _is_zero(d, rng)
        worst = max(worst, val)
        if not zero:
            diffs[str(lam)] = str(d)
    ok = not diffs
    msg = ("reduced multipliers = -dV/dx (eq. 17) and weight law = -(1/gamma) dV/dW (eq. 14), "
           "differences simplify to 0" if ok else
           f"{len(diffs)} reduced expressions differ from the gradient of V(f_W(e))")
    return Check(name, "pass" if ok else "fail", len(diffs), 0, msg,
                 {"max_abs_at_random_points": worst, "differences": diffs,
                  "limit": red.limit.name})


# -- backprop limit, numeric -------------------------------------------------------------
def _layer_table(net, w_dot: np.ndarray, ref: np.ndarray) -> list[dict]:
    d = depths(net)
    layer = np.array([d[j] for (j, _k) in net.w])
    rows = []
    for k in sorted(set(layer.tolist())):
        m = layer == k
        if not np.any(ref[m] != 0) or not np.any(w_dot[m] != 0):
            continue
        lm = metrics.layer_metrics(w_dot[m], ref[m])
        rows.append({"layer": int(k), "weights": int(m.sum()), "cosine": float(lm.cosine),
                     "angle_deg": float(lm.angle),
                     "relative_error": float(lm.relative_error),
                     "sign_agreement": float(lm.sign_agreement),
                     "norm_ratio": float(np.linalg.norm(w_dot[m]) / np.linalg.norm(ref[m]))})
    return rows


def _layers_message(table: list[dict], rtol: float, bad: list[dict] | None = None) -> str:
    """One line on the per-layer table, led by the worst relative error.

    When a layer points along the gradient (angle ~0) but its norm is off, the line says
    that the scale is wrong (e.g. deltas halved), not that the direction is. ``bad``:
    the failing rows (default: those over ``rtol``).
    """
    if bad is None:
        bad = [r for r in table if r["relative_error"] > rtol]
    if not bad:
        return "per-layer weight velocities match the gradient"
    worst = max(bad, key=lambda r: r["relative_error"])
    head = (f"layer {worst['layer']}: relative error {worst['relative_error']:.3g} "
            f"(tolerance {rtol:.0e})")
    ratio = worst.get("norm_ratio", float("nan"))
    if worst["angle_deg"] < 1e-3 and abs(ratio - 1.0) > rtol:
        what = (f"the scale is wrong: parallel to the gradient (angle "
                f"{worst['angle_deg']:.2g} deg) with {ratio:.3g} times its norm")
    else:
        what = (f"{worst['angle_deg']:.3g} deg off the gradient, cosine "
                f"{worst['cosine']:.3g}, norm ratio {ratio:.3g}, sign agreement "
                f"{worst['sign_agreement']:.2f}")
    others = "" if len(bad) == 1 else f"; {len(bad) - 1} more layer(s) off"
    return f"{head}; {what}{others}"


def check_backprop_numeric(problem: Problem, *, law: LearningLaw | None = None,
                           gamma: float = 1.0, rtol: float = 1e-9, fd_rtol: float = 1e-6,
                           n_fd: int = 12, seed: int = 0,
                           values: Mapping[str, float] | None = None) -> list[Check]:
    """The law at a random state against CasADi AD and finite differences, per layer.

    The reference follows the problem's kind
    (:func:`~cognitive_action.verify.kinds.backprop_kind`): the forward pass of a
    feedforward net, the fixed point of a net with cycles (recurrent backprop), with
    the explicit ``∂V/∂W`` of a loss of the weights, projected onto ``C(W) = 0`` for
    constraints on the weights. The derived law comes from the per-neuron templates or,
    where they do not apply, from the generic route.

    Returns the checks ``backprop.numeric.multipliers``, ``.weights``,
    ``.finite_differences`` and ``.layers``; or one ``backprop.numeric`` check with
    status ``"skip"`` and the reason in words when the problem has no reference (no
    network, neurons with a speed, an unstable fixed point at given weights, ...).
    """
    from cognitive_action.verify.kinds import backprop_case

    case = backprop_case(problem, seed=seed, values=values)
    if case.reason is not None:
        return [Check("backprop.numeric", "skip", message=f"no reference: {case.reason}",
                      details={"kind": case.kind.name} | case.notes)]
    net = problem.network
    masses = (case.system.mass_x, case.system.mass_W)
    if law is None and not all(isinstance(m, sp.Symbol) for m in masses):
        return [Check("backprop.numeric", "skip",
                      message=f"no limit to take: the masses m_x = {masses[0]}, m_W = "
                      f"{masses[1]} are fixed numbers; declare them as parameters "
                      "(Network.problem's default) so that the check can take "
                      "m_x/m_W -> 0", details={"kind": case.kind.name})]
    if law is None:
        # The Richardson step leaves O(r²) with a constant that grows like
        # |J_W J_Wᵀ| / |J_x J_xᵀ|, i.e. with the fan-in: take r smaller on wide nets.
        fan_in = max((d for _, d in net.graph.in_degree()), default=1)
        law = derived_limit(ratio=1e-7 / max(1, fan_in))
    out = law(case.system, case.state, case.values, gamma)
    wref = -case.grad / gamma
    name = getattr(law, "__name__", "law")
    kind = case.kind.describe
    info = {"law": name, "kind": kind, "reference": case.kind.reference} | case.notes
    e_d, e_w = _rel(out.delta, case.delta), _rel(out.w_dot, wref)
    checks = [
        Check("backprop.numeric.multipliers", "pass" if e_d <= rtol else "fail", e_d, rtol,
              f"{name}: |delta - delta_AD|/|delta_AD| over {len(net.order)} neurons ({kind})",
              info | {"neurons": len(net.order)}),
        Check("backprop.numeric.weights", "pass" if e_w <= rtol else "fail", e_w, rtol,
              f"{name}: |W_dot + grad_W V/gamma|/|grad_W V/gamma| over {len(wref)} weights"
              + (" (gradient projected onto the constraints)" if case.kind.tied else ""),
              info | {"weights": len(wref), "gamma": gamma}),
    ]
    rng = np.random.default_rng(seed + 1)
    nd = case.n_directions
    wi = np.sort(rng.choice(nd, size=min(n_fd, nd), replace=False))
    ni = np.sort(rng.choice(len(net.order), size=min(n_fd, len(net.order)), replace=False))
    gw, dp = case.finite_differences(wi, ni)
    fd_w, fd_d = -gw / gamma, dp
    law_w, ref_w = case.along(out.w_dot, wi), case.along(wref, wi)
    e_fd = max(_rel(law_w, fd_w) if np.any(fd_w) else 0.0,
               _rel(out.delta[ni], fd_d) if np.any(fd_d) else 0.0)
    e_ref = max(_rel(ref_w, fd_w) if np.any(fd_w) else 0.0,
                _rel(case.delta[ni], fd_d) if np.any(fd_d) else 0.0)
    along = "free directions of the constraints" if case.kind.tied else "weights"
    checks.append(Check("backprop.numeric.finite_differences",
                        "pass" if e_fd <= fd_rtol else "fail", e_fd, fd_rtol,
                        f"{name} against central differences on {len(wi)} {along} and "
                        f"{len(ni)} neurons (AD vs differences: {e_ref:.1e})",
                        {"ad_vs_fd": e_ref}))
    table = _layer_table(net, out.w_dot, wref)
    # A layer that no gradient reaches (weights downstream of the outputs in a net with
    # cycles) has a reference at rounding level: its relative error and angle are noise,
    # so it is judged by its error against the whole gradient instead.
    level = depths(net)
    layer_of = np.array([level[j] for (j, _k) in net.w])
    total = float(np.linalg.norm(wref))
    for r in table:
        m = layer_of == r["layer"]
        share = float(np.linalg.norm(wref[m])) / total if total else 0.0
        r["gradient_share"] = share
        r["negligible"] = share <= 1e-12
        r["ok"] = (float(np.linalg.norm(out.w_dot[m] - wref[m])) <= rtol * total
                   if r["negligible"] else r["relative_error"] <= rtol)
    ok = all(r["ok"] for r in table)
    msg = _layers_message(table, rtol, bad=[r for r in table if not r["ok"]])
    checks.append(Check("backprop.numeric.layers", "pass" if ok else "fail",
                        max((r["angle_deg"] for r in table if not r["negligible"]),
                            default=0.0), None, msg,
                        {"layers": table, "tolerance_relative_error": rtol}))
    return checks


def check_convergence(problem: Problem, *, ratios: Iterable[float] = (1e-1, 1e-2, 1e-3, 1e-4),
                      expected: float = 1.0, order_tol: float = 0.1, gamma: float = 1.0,
                      seed: int = 0, values: Mapping[str, float] | None = None,
                      max_points: int = 12, window: int = 4, floor: float = 1e-12,
                      evaluate: Callable[..., object] | None = None) -> Check:
    """Order of convergence of eq. (10)'s multipliers to the backprop delta in ``m_x/m_W``.

    Expected order 1: ``m_x/m_W`` multiplies ``J_W J_Wᵀ`` in eq. (10) times ``m_x``,
    so ``δ(r) = δ₀ + O(r)``. The error ``|δ(r) − δ_AD|/|δ_AD|`` (CasADi AD of the
    composed loss at a random state) is measured from ``ratios`` on, and the range is
    extended toward ``r → 0`` (one decade at a time) until the fitted order is stable
    (:func:`~cognitive_action.verify.asymptotic.search_order`): a large network whose
    error is still pre-asymptotic at ``r = 10⁻¹`` is not failed for it.

    Parameters
    ----------
    problem
        A feedforward network problem with symbolic masses.
    ratios
        The first ratios ``m_x/m_W`` (decreasing); the sequence continues geometrically.
    expected, order_tol
        A stable order passes when ``|order − expected| ≤ order_tol``.
    gamma, seed, values
        ``γ``, the seed of the random state and numbers for signals and parameters.
    max_points, window, floor
        At most ``max_points`` ratios, fits on ``window`` points, errors at or below
        ``floor`` are round-off (see :func:`~cognitive_action.verify.asymptotic.search_order`).
    evaluate
        ``(system, state, values, gamma, ratio) -> LawOutput``: the law at a finite ratio
        returning an object with the multipliers ``delta`` (default: eq. 10 by
        :func:`~cognitive_action.verify.laws.evaluate_at_ratio`).

    Returns
    -------
    Check
        ``convergence.mass_ratio``: ``pass``/``fail`` on a stable order, ``inconclusive``
        when it never stabilised (or round-off came first); value the fitted order,
        details the ratios and errors, the range used, the CI and R².
    """
    from cognitive_action.verify.asymptotic import order_check, search_order

    evaluate = evaluate or evaluate_at_ratio
    ns = derive_network(problem)
    st = random_state(problem, seed=seed, values=values)
    ref = casadi_gradients(problem, st.state.w, st.values)

    def error_at(r: float) -> float:
        return _rel(evaluate(ns, st.state, st.values, gamma, r).delta, ref.delta)

    search = search_order(error_at, list(ratios), window=window, max_points=max_points,
                          precision=order_tol, floor=floor)
    return order_check("convergence.mass_ratio", search, expected=expected,
                       order_tol=order_tol, parameter="m_x/m_W",
                       what="eq. (10) multipliers -> backprop deltas (AD)",
                       details={"ratios": search.parameters})


# -- stability of multiplier dynamics ----------------------------------------------------
def check_stability(problem: Problem, *, values: Mapping[str, float] | None = None,
                    seed: int = 0, tol: float = 1e-9, el: EulerLagrange | None = None
                    ) -> Check:
    """Eigenvalues of ``∂μ̇/∂μ`` of the derived system at a random state.

    The multiplier rates solve ``mass_matrix · unknowns = forcing`` and are affine in the
    multipliers, so the Jacobian is exact from ``1 + n`` solves. Parameters not in
    ``values`` are set to 1.
    """
    name = "stability.multipliers"
    el = el or euler_lagrange(problem)
    mu = el.nonholonomic_multipliers
    if not mu or problem.nonholonomic != "vakonomic":
        return Check(name, "skip", message="multipliers are algebraic (holonomic constraints "
                     "or d'Alembert rule): no multiplier dynamics")
    rng = np.random.default_rng(seed)
    given = {str(k): float(v) for k, v in (values or {}).items()}
    M = el.mass_matrix.to_matrix()
    syms = sorted((M.free_symbols | set().union(*(f.free_symbols for f in el.forcing)))
                  - set(el.unknowns), key=str)
    point = {str(s): given.get(str(s), 1.0 if s in problem.parameters
                               else float(rng.standard_normal())) for s in syms}
    fM = sp.lambdify(syms, M, "numpy")
    ff = sp.lambdify(syms, list(el.forcing), "numpy")
    rates = [el.unknowns.index(dot(m)) for m in mu]

    def solve(at: dict[str, float]) -> np.ndarray:
        args = [at[str(s)] for s in syms]
        return np.linalg.solve(np.asarray(fM(*args), dtype=float),
                               np.asarray(ff(*args), dtype=float))[rates]

    base_pt = point | {str(m): 0.0 for m in mu}
    r0 = solve(base_pt)
    J = np.column_stack([solve(base_pt | {str(m): 1.0}) - r0 for m in mu])
    eig = np.linalg.eigvals(J)
    worst = float(np.max(eig.real))
    ok = worst <= tol
    net = getattr(problem, "network", None)
    variants = ANTI_STABLE_VARIANTS if getattr(net, "speed", None) is not None else \
        GENERIC_ANTI_STABLE_VARIANTS
    msg = ("multiplier dynamics stable forward in time" if ok else
           f"anti-stable multiplier dynamics (max Re eig = {worst:.4g}): integrated forward "
           f"they blow up like exp({worst:.3g} t); instead: " + "; or ".join(variants))
    return Check(name, "pass" if ok else "fail", worst, tol, msg,
                 {"eigenvalues": [complex(e) for e in eig], "point": point,
                  "variants": list(variants)})


# -- physical checks ---------------------------------------------------------------------
def check_masses(problem: Problem, *, values: Mapping[str, float] | None = None,
                 initial: Mapping[str, float] | None = None,
                 el: EulerLagrange | None = None) -> Check:
    """The masses (or the mass matrix) positive definite, numerically, with the given
    parameter values and at the initial state when one is given; with an initial state
    and no network, the equations of motion (8)-(10) solvable there
    (:mod:`cognitive_action.derive.physical`, the checks a run makes before it starts).
    """
    from cognitive_action.derive.physical import check_masses as masses
    from cognitive_action.derive.physical import check_solvable

    name = "masses"
    point = {str(k): float(v) for k, v in (values or {}).items()} | {
        str(k): float(v) for k, v in (initial or {}).items()}
    try:
        got = masses(problem, point)
        ratio = None
        if initial is not None and not is_network_problem(problem):
            ratio = check_solvable(el or euler_lagrange(problem), point)
    except CognitiveActionError as exc:
        return Check(name, "fail", None, None, str(exc))
    if got.evaluated == 0 and ratio is None:
        what = (f"no value for {', '.join(got.unevaluated)} (pass values=...)"
                if got.unevaluated else "no masses declared (kinetic energy in F) and no "
                "initial state to evaluate eq. (8)-(10) at")
        return Check(name, "skip", message=f"nothing to evaluate: {what}",
                     details={"skipped": "not applicable"})
    parts = []
    if got.evaluated:
        parts.append(f"masses positive definite (smallest {got.smallest:.4g})")
    if ratio is not None:
        parts.append(f"eq. (8)-(10) solvable at the initial state (smallest/largest "
                     f"singular value {ratio:.3g})")
    msg = "; ".join(parts)
    if got.unevaluated:
        msg += f"; not evaluated (no value): {', '.join(got.unevaluated)}"
    return Check(name, "pass", got.smallest if got.evaluated else ratio, 0.0, msg)


# -- initial conditions ------------------------------------------------------------------
def check_initial_conditions(problem: Problem, initial: Mapping[str, float] | None = None, *,
                             el: EulerLagrange | None = None, tol: float = 1e-9,
                             seed: int = 0, symbolic_max: int | None = None,
                             values: Mapping[str, float] | None = None,
                             spot_checks: int = 8) -> Check:
    """``G = 0`` and ``Ġ = 0`` at ``t = 0`` (general eq. 11).

    With ``initial`` given, check it. Otherwise (networks) complete random weights and
    inputs: networks of eq. (4) numerically from the per-neuron template
    (:func:`~cognitive_action.derive.initial.complete_network_initial_conditions`: a
    forward pass or a fixed point for ``x(0)``, a sparse linear solve for ``ẋ(0)``),
    with ``G`` and ``Ġ`` of every neuron from the template and, independently, of
    ``spot_checks`` declared constraints differentiated by SymPy; other networks with
    :func:`~cognitive_action.derive.initial.complete_initial_conditions`.
    ``symbolic_max`` is accepted for compatibility and unused.
    """
    name = "initial_conditions"
    if initial is None:
        if not is_network_problem(problem):
            return Check(name, "skip", message="no initial conditions given (pass "
                         "initial=... or an [initial] table)", details={
                             "skipped": "not applicable"})
        net = problem.network
        w, vals = _random_weights(problem, seed=seed, values=values)
        names = network_names(net)
        given = dict(zip(names[2], w.tolist())) | dict.fromkeys(names[3], 0.0)
        given |= vals
        given = {str(p): 1.0 for p in problem.parameters} | given
        if is_plain_network(problem):
            initial = complete_network_initial_conditions(problem, given, t0=vals["t"])
            res = network_constraint_residuals(problem, initial)
            rng = np.random.default_rng(seed)
            picks = rng.choice(len(problem.constraints),
                               size=min(spot_checks, len(problem.constraints)), replace=False)
            spot = _declared_residuals(problem, initial, sorted(int(i) for i in picks))
            bad = {k: v for k, (g, gd) in res.items() for k, v in
                   ((k, g), (f"d{k}/dt", gd)) if abs(v) > tol}
            bad |= {k: v for k, v in spot.items() if abs(v) > tol}
            worst = max((abs(v) for r in res.values() for v in r), default=0.0)
            worst = max([worst, *(abs(v) for v in spot.values())])
            if bad:
                listing = ", ".join(f"{k} = {v:.3g}" for k, v in list(bad.items())[:8])
                return Check(name, "fail", worst, tol,
                             f"completed initial conditions violate {listing}",
                             {"violated": bad})
            return Check(name, "pass", worst, tol,
                         f"G = 0 and dG/dt = 0 at t = 0 for {len(res)} neurons (completed "
                         f"numerically: forward pass or fixed point, linear solve for "
                         f"x_dot; {len(spot) // 2} declared constraints and their rates "
                         "checked by SymPy)", {"spot_checked": sorted(spot)})
        from cognitive_action.verify.constrained import project_weights, weight_constraints

        if weight_constraints(problem):  # random weights onto C(W) = 0 (e.g. tied weights)
            w = project_weights(problem, w, given)
            given |= dict(zip(names[2], w.tolist()))
        el = el or euler_lagrange(problem)
        initial = complete_initial_conditions(el, given, t0=vals["t"])
        source = "completed by complete_initial_conditions"
    else:
        el = el or euler_lagrange(problem)
        source = "as given"
    try:
        _check_ic(el, initial, tol=tol)
    except InconsistentInitialConditionsError as exc:
        worst = max(abs(v) for v in exc.violated.values())
        return Check(name, "fail", worst, tol, str(exc), {"violated": exc.violated})
    return Check(name, "pass", 0.0, tol, f"G = 0 and dG/dt = 0 at t = 0 ({source})")


def _declared_residuals(problem: Problem, values: Mapping[str, float],
                        rows: Iterable[int]) -> dict[str, float]:
    """``G`` and ``dG/dt`` of some declared constraints, by SymPy (a reference for the
    template's numbers)."""
    from cognitive_action.declare.symbols import MAX_ORDER
    from cognitive_action.derive.calculus import TimeDerivative
    from cognitive_action.derive.numeric import to_float

    out: dict[str, float] = {}
    rows = list(rows)
    timed = set(problem.coordinates) | set(problem.signals)
    used = set().union(*(problem.constraints[i].expr.free_symbols for i in rows)) & timed
    D = TimeDerivative({dot(s, k) for s in used for k in range(MAX_ORDER + 1)})
    for i in rows:
        c = problem.constraints[i]
        out[c.name] = to_float(c.expr, values)
        out[f"d{c.name}/dt"] = to_float(D(c.expr), values)
    return out


# -- formula check -----------------------------------------------------------------------
def check_formula(problem: Problem | EulerLagrange, expected: Mapping[sp.Symbol, sp.Expr], *,
                  limit: Limit | None = None, name: str = "formula", seed: int = 0) -> Check:
    """Compare user formulas ``{unknown: expression}`` with the derived reduced system.

    ``limit`` defaults to :func:`~cognitive_action.derive.limits.backprop` with the
    problem's rate. Unknowns of the reduced system that occur in a user expression (the
    multipliers ``δ`` in eq. 15) are replaced by their derived values, so both sides are
    functions of the state. The check reports each difference and whether the user
    formula is the derived one with the opposite sign.
    """
    el = problem if isinstance(problem, EulerLagrange) else euler_lagrange(problem)
    if limit is None:
        if not isinstance(el.rate, sp.Symbol):
            raise DeclarationError("no limit given and the problem has no exp(theta t) weight",
                                   fix="pass limit=... (a derive.limits.Limit)")
        limit = backprop_limit(el.problem) if el.problem.network is not None else \
            backprop(rate=el.rate)
    red = reduce(el, limit)
    sol = red.solve()
    rng = np.random.default_rng(seed)
    diffs, flipped, worst = {}, [], 0.0
    # A user symbol named like a derived one but with other assumptions (``gamma`` real
    # against GAMMA positive) would never cancel: identify symbols by name.
    known = {str(s): s for e in sol.values() for s in e.free_symbols} | {
        str(u): u for u in sol} | {GAMMA.name: GAMMA}
    def same(e):
        e = sp.sympify(e)  # safe: a SymPy expression from the caller
        return e.xreplace({s: known[str(s)] for s in e.free_symbols
                           if str(s) in known and known[str(s)] != s})
    expected = {same(u): same(v) for u, v in expected.items()}
    for u, user in expected.items():
        if u not in sol:
            raise DeclarationError(f"{u} is not an unknown of the reduced system",
                                   fix=f"compare one of {', '.join(map(str, sol))}")
        user_state = sp.sympify(user).xreplace(sol)  # safe: a SymPy expression from the caller
        d = user_state - sol[u]
        zero, val = _is_zero(d, rng)
        worst = max(worst, val)
        if not zero:
            diffs[str(u)] = str(sp.simplify(d))
            if _is_zero(user_state + sol[u], rng)[0]:
                flipped.append(str(u))
    ok = not diffs
    if ok:
        msg = f"agrees with the derived {limit.name} system"
    elif flipped and len(flipped) == len(diffs):
        msg = (f"opposite sign to the derived law for {', '.join(flipped)} "
               "(user = -derived)")
    else:
        msg = f"{len(diffs)} of {len(expected)} expressions differ from the derived ones"
    return Check(f"formula.{name}", "pass" if ok else "fail", worst, 0.0, msg,
                 {"differences": diffs, "opposite_sign": flipped, "limit": limit.name})


# -- everything --------------------------------------------------------------------------
class _Progress:
    """One line per check on a stream (the terminal's stderr), or nothing."""

    def __init__(self, stream: TextIO | None, problem: str) -> None:
        self.stream, self.problem = stream, problem

    def start(self, name: str, note: str = "") -> float:
        if self.stream is not None:
            self.stream.write(f"verify {self.problem}: {name}{note} ...")
            self.stream.flush()
        return time.perf_counter()

    def done(self, checks: list[Check], t0: float) -> None:
        if self.stream is not None:
            status = ", ".join(sorted({c.status for c in checks})) or "-"
            self.stream.write(f" {status} ({time.perf_counter() - t0:.1f} s)\n")
            self.stream.flush()


def _timeout_check(name: str, budget: float, elapsed: float) -> Check:
    return Check(name, "skip", None, budget,
                 f"ran out of its {budget:g} s time budget and was stopped: not checked; "
                 "give it longer with budget=... (or [verify] budget, --budget)",
                 {"skipped": "timeout", "budget": budget, "elapsed": elapsed})


def verify(problem: Problem | EnergyModel, *, law: Law | LearningLaw | None = None,
           formulas: Mapping[str, Mapping[sp.Symbol, sp.Expr]] | None = None,
           initial: Mapping[str, float] | None = None,
           values: Mapping[str, float] | None = None, gamma: float = 1.0, rtol: float = 1e-9,
           fd_rtol: float = 1e-6, seed: int = 0, symbolic_max: int = SYMBOLIC_MAX,
           skip: Iterable[str] = (), simulate: bool = False, symbolic: bool | None = None,
           budget: float | None = DEFAULT_BUDGET,
           progress: bool | TextIO | None = None) -> Report:
    """Run every applicable check on a problem and return the :class:`Report`.

    The numeric checks run first and decide the verdict; the symbolic ones follow where
    they are cheap (or when asked), each under a time budget. Every check that does not
    run is in the report as skipped, with the reason (by request, not applicable, too
    large for the symbolic route, out of time).

    Parameters
    ----------
    problem
        The declared learning law.
    law
        A law to check instead of the derived one (e.g. your own update rule): a
        :data:`~cognitive_action.verify.laws.Law` (the public protocol) or a
        :data:`~cognitive_action.verify.laws.LearningLaw`. Besides ``backprop.numeric``
        it gets ``alignment.training``: how its update lines up with the gradient along
        a teacher-student training run
        (:func:`~cognitive_action.verify.alignment.check_alignment`), and the checks of
        its own published claims when it has an ``extra_checks(problem, *, seed, gamma,
        values)`` method (predictive coding:
        :class:`~cognitive_action.verify.predictive_coding.PredictiveCodingLaw`).
    formulas
        ``{name: {unknown: expression}}`` compared with the derived reduced system
        (symbolic; always run when given, under the budget).
    initial
        Initial conditions to check (by name).
    values
        Numbers for parameters and signals that the checks cannot choose themselves.
    gamma, rtol, fd_rtol
        ``γ`` of the numeric backprop limit and the tolerances against AD and finite
        differences.
    seed
        Seed of the random states.
    symbolic_max
        Largest network (neurons) or constraint set for the symbolic checks whose cost
        grows fast with the size, when ``symbolic`` is ``None``.
    skip
        Names (or prefixes) of checks not to run; they are reported as skipped by
        request.
    simulate
        Also run the checks that simulate (seconds each, see
        :mod:`~cognitive_action.verify.simulated_limits`): the order of convergence of
        simulated weights to the gradient flow (14) as ``θ → ∞`` and to eq. (12)-(13) as
        ``m_x → 0``, for feedforward networks with ``ϖ = exp(θt)``; and (see
        :mod:`~cognitive_action.verify.convergence`) the order of the velocities ``Ẇ``
        after the initial layer (``θ → ∞``), of the multipliers toward the backprop
        deltas (eq. 17, ``m_x → 0``) and the drift ``max |Ġ|`` of one learning run.
    symbolic
        ``None``: the symbolic checks where cheap (up to ``symbolic_max``; the
        triangular rank certificate at any size); ``True``: at any size; ``False``:
        none (reported as skipped).
    budget
        Seconds each symbolic check may take (``None``: no limit); one that runs out is
        stopped and reported as skipped with the reason
        (:func:`~cognitive_action.verify.budget.run_with_budget`).
    progress
        A line per check on stderr (``True``), on a given stream, or none (``False``);
        default: when stderr is a terminal.

    An :class:`~cognitive_action.declare.energy.EnergyModel` gets the checks of an
    energy-based law instead (:func:`~cognitive_action.verify.equilibrium.verify_energy`:
    fixed points, the EP update against recurrent backprop; ``seed``, ``values`` and
    ``skip`` apply, the other options are the network checks').

    Raises
    ------
    DeclarationError
        If ``problem`` is neither a :class:`~cognitive_action.declare.problem.Problem`
        nor an ``EnergyModel``, or a ``law`` is given for an ``EnergyModel``.
    """
    if isinstance(problem, EnergyModel):
        if law is not None:
            raise DeclarationError(
                "a registered network law cannot judge an energy model",
                fix="pass the update to judge to verify.equilibrium.check_equilibrium("
                "update=...)")
        from cognitive_action.verify.equilibrium import verify_energy

        return verify_energy(problem, seed=seed, values=values, skip=skip)
    if not isinstance(problem, Problem):
        raise DeclarationError(f"verify takes a Problem, got {type(problem).__name__}",
                               fix="declare it with Problem(...) or Network(...).problem()")
    skip = tuple(skip)
    law = as_learning_law(law) if law is not None else None
    report = Report(problem.name)
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    stream = (sys.stderr if progress is True else progress) if progress else None
    bar = _Progress(stream, problem.name)

    def wanted(*names: str) -> bool:
        return not any(n.startswith(s) for s in skip for n in names)

    def skipped(name: str, reason: str, why: str = "not applicable") -> None:
        report.checks.append(Check(name, "skip", message=reason, details={"skipped": why}))

    def run(name: str, fn: Callable[[], Check | list[Check]], *, label: str | None = None,
            timed: bool = False) -> None:
        label = label or name
        if not wanted(name, label):
            skipped(label, f"skipped by request (skip={list(skip)})", "request")
            return
        t0 = bar.start(label, f" (budget {budget:g} s)" if timed and budget else "")
        try:
            if timed:
                got = run_with_budget(fn, budget)
                if got.timed_out:
                    out: Check | list[Check] = _timeout_check(label, float(budget),
                                                               got.elapsed)
                elif got.error is not None:
                    raise got.error
                else:
                    out = got.value
            else:
                out = fn()
        except CognitiveActionError as exc:
            if isinstance(exc, DeclarationError) and name != "initial_conditions":
                raise
            out = Check(label, "fail", None, None, str(exc))
        outs = out if isinstance(out, list) else [out]
        report.checks.extend(outs)
        bar.done(outs, t0)

    network = is_network_problem(problem)
    plain = network and is_plain_network(problem)
    feedforward = network and problem.network.is_feedforward
    net = getattr(problem, "network", None)
    leaky = net is not None and getattr(net, "speed", None) is not None
    size = len(net.order) if net is not None else len(problem.constraints)
    small = size <= symbolic_max
    want_symbolic = symbolic if symbolic is not None else small
    el_cache: list[EulerLagrange] = []

    def el_() -> EulerLagrange:
        if not el_cache:
            el_cache.append(euler_lagrange(problem))
        return el_cache[0]

    # numeric checks: the verdict
    run("rank", lambda: check_rank(problem, seed=seed, values=values))
    masses = check_masses(problem, values=values, initial=initial,
                          el=el_() if initial is not None and not network else None
                          ) if wanted("masses") else None
    if masses is not None and masses.status == "skip":  # nothing to evaluate: no line
        report.checks.append(masses)
    else:
        run("masses", lambda: masses)
    from cognitive_action.verify.kinds import backprop_kind

    kind = backprop_kind(problem)  # which reference applies (feedforward, recurrent, ...)
    plain_feedforward = kind.name == "feedforward" and kind.templates
    if kind.reason is None or not leaky:  # the check says itself why it has no reference
        run("backprop.numeric", lambda: check_backprop_numeric(
            problem, law=law, gamma=gamma, rtol=rtol, fd_rtol=fd_rtol, seed=seed,
            values=values))
    else:
        skipped("backprop.numeric", "neurons with a speed c (eq. 18-19): backprop is their "
                "c -> oo limit, checked by backprop.speed and convergence.speed")
    if plain_feedforward:
        run("convergence", lambda: check_convergence(problem, gamma=gamma, seed=seed,
                                                     values=values),
            label="convergence.mass_ratio")
    else:
        skipped("convergence.mass_ratio", kind.reason or
                f"measured on feedforward networks derived from templates; this one is "
                f"{kind.name}" + (" with weight constraints" if kind.tied else "")
                + (" with a loss of the weights" if kind.weight_loss else ""))
    if leaky:
        from cognitive_action.verify.speed import check_speed_backprop, check_speed_limit

        run("backprop.speed", lambda: check_speed_backprop(problem, seed=seed,
                                                           values=values))
        run("convergence.speed", lambda: check_speed_limit(problem, seed=seed,
                                                           values=values))
    if law is not None:
        from cognitive_action.verify.alignment import check_alignment

        run("alignment.training", lambda: check_alignment(problem, law, seed=seed,
                                                          gamma=gamma, values=values))
        claims = getattr(law, "extra_checks", None)   # a law's own published claims
        if callable(claims):
            run("law.claims", lambda: claims(problem, seed=seed, gamma=gamma, values=values))
    if network:
        skipped("stability.multipliers", "holonomic neuron constraints: the multipliers "
                "are algebraic (eq. 10), no multiplier dynamics")
    elif symbolic is False and leaky:
        skipped("stability.multipliers", "symbolic checks off (symbolic=False): it "
                "evaluates the symbolic derivation of eq. (20)", "request")
    elif leaky and not (small or symbolic):
        skipped("stability.multipliers",
                f"evaluates the symbolic derivation of eq. (20), run up to {symbolic_max} "
                f"neurons by default (this network has {size}): pass symbolic=True",
                "size")
    else:  # derived symbolically, evaluated numerically: under the budget
        run("stability", lambda: check_stability(problem, values=values, seed=seed),
            label="stability.multipliers", timed=True)
    if initial is not None:
        initial = {str(k): float(v) for k, v in (values or {}).items()} | dict(initial)
    if initial is not None or network:
        if initial is not None or plain:
            run("initial_conditions", lambda: check_initial_conditions(
                problem, initial, el=el_() if initial is not None else None, seed=seed,
                values=values))
        else:
            run("initial_conditions", lambda: check_initial_conditions(
                problem, initial, seed=seed, values=values), timed=True)
    else:
        skipped("initial_conditions", "no initial conditions given (pass initial=... or "
                "an [initial] table)")
    if simulate and feedforward and problem.roles.symbols(RoleKind.RATE):
        from cognitive_action.verify.simulated_limits import (
            check_convergence_mass_x,
            check_convergence_theta,
        )

        run("convergence.theta", lambda: check_convergence_theta(
            problem, gamma=gamma, seed=seed, values=values))
        run("convergence.mass_x", lambda: check_convergence_mass_x(
            problem, seed=seed, values=values))
        from cognitive_action.verify.convergence import (
            check_convergence_delta,
            check_convergence_velocity,
            check_learning_drift,
        )

        run("convergence.theta.velocity", lambda: check_convergence_velocity(
            problem, gamma=gamma, seed=seed, values=values))
        run("convergence.delta", lambda: check_convergence_delta(
            problem, seed=seed, values=values))
        run("drift.rate", lambda: check_learning_drift(problem, seed=seed, values=values))
    elif simulate:
        skipped("simulated", "the simulated limits need a feedforward network with the "
                "time weight exp(theta t)")
    else:
        skipped("simulated", "the simulated limits were not requested (simulate=True, "
                "--simulate)", "request")
    # symbolic checks: where cheap or asked, each under the budget
    off = "symbolic checks off (symbolic=False)"
    large = (f"the network has {size} neurons > {symbolic_max}: symbolic checks run up to "
             f"{symbolic_max} by default; pass symbolic=True (or [verify] symbolic = true) "
             "to run them under the time budget")
    if symbolic is False:
        skipped("rank.symbolic", off, "request")
    else:
        run("rank.symbolic", lambda: check_rank_symbolic(
            problem, seed=seed, values=values,
            reduce_max=None if symbolic else symbolic_max), timed=True)
    if not plain_feedforward:
        skipped("backprop.symbolic", "needs a feedforward network (a forward pass f_W(e)) "
                "derived from templates" if network else "neurons with a speed c: the "
                "c -> oo limit is checked by backprop.speed" if leaky else
                "not a network problem: no backprop limit")
    elif not want_symbolic:
        skipped("backprop.symbolic", off if symbolic is False else large,
                "request" if symbolic is False else "size")
    else:
        run("backprop.symbolic", lambda: check_backprop_symbolic(problem, seed=seed),
            timed=True)
    for fname, formula in (formulas or {}).items():
        run(f"formula.{fname}", lambda f=formula, n=fname: check_formula(
            el_(), f, name=n, seed=seed), timed=True)
    return report


__all__ += ["SampledState"]
_ = t  # time symbol re-exported for formulas written against this module
