"""The verifier: named checks of a derived learning law, gathered in a :class:`Report`.

:func:`verify` runs, as they apply to the problem:

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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.initial import (
    complete_initial_conditions,
)
from cognitive_action.derive.initial import (
    validate_initial_conditions as _check_ic,
)
from cognitive_action.derive.limits import GAMMA, Limit, backprop, reduce
from cognitive_action.derive.network import NetworkState, derive_network, is_network_problem
from cognitive_action.derive.rank import constraint_rank
from cognitive_action.errors import (
    CognitiveActionError,
    DeclarationError,
    InconsistentInitialConditionsError,
)
from cognitive_action.verify import metrics
from cognitive_action.verify.laws import LearningLaw, derived_limit, evaluate_at_ratio
from cognitive_action.verify.reference import (
    casadi_gradients,
    composed_loss,
    depths,
    forward_pass,
    input_expressions,
    loss_of,
    network_of,
    numpy_forward,
)
from cognitive_action.verify.report import Check, Report

__all__ = ["verify", "random_state", "check_rank", "check_backprop_symbolic",
           "check_backprop_numeric", "check_convergence", "check_stability",
           "check_initial_conditions", "check_formula", "ANTI_STABLE_VARIANTS"]

#: What to run instead of integrating anti-stable multiplier dynamics forward in time.
ANTI_STABLE_VARIANTS = (
    "integrate the multipliers backward in time (an adjoint sweep, as for costates: "
    "compile.adjoint_sweep)",
    "the quasi-static reduction (c -> oo: T delta = -V_x, derive.limits.backprop(speed=c))",
    "the stable relaxation c^-1 delta_dot = -(T delta + V_x), same equilibrium "
    "(the backward diffusion wave)",
)


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
    net = network_of(problem)
    from cognitive_action.declare.initializers import initialize

    rng = np.random.default_rng(seed)  # the weights first, then t and signals from rng
    w = initialize([net.graph.in_degree(j) for (j, _k) in net.w], scale=scale, rng=rng)
    # a generic time (time-dependent inputs such as sin(t) vanish at t = 0)
    vals: dict[str, float] = {"t": float(rng.uniform(0.5, 1.5))}
    for s in problem.signals:
        vals[str(s)] = float(rng.standard_normal())
        vals[str(dot(s))] = 0.0
        vals[str(dot(s, 2))] = 0.0
    vals.update({str(k): float(v) for k, v in (values or {}).items()})
    x, _ = numpy_forward(problem, w, vals)
    z = np.zeros_like(x)
    return SampledState(NetworkState(x=x, x_dot=z, w=w, w_dot=np.zeros_like(w),
                                     t=vals["t"]), vals)


def _rel(a: np.ndarray, g: np.ndarray) -> float:
    return float(metrics.relative_error(a, g))


# -- Proposition 1 -----------------------------------------------------------------------
def check_rank(problem: Problem, *, tol: float = 1e-10, seed: int = 0,
               symbolic_max: int = 12, values: Mapping[str, float] | None = None) -> Check:
    """Proposition 1: rank of ``G_ξ`` (networks) or ``G_q`` (other problems).

    Small feedforward networks are checked symbolically (``G_ξ`` is triangular); other
    networks numerically at random states (exact elimination of ``tanh`` entries blows up
    already for a cyclic 4-neuron network; docs/performance.md).
    """
    if is_network_problem(problem):
        net = problem.network
        if len(net.order) <= symbolic_max and net.is_feedforward:
            r = constraint_rank(problem, wrt=list(net.neurons), method="symbolic")
            sv = None
        else:  # numeric at random states, from the per-neuron templates
            ns = derive_network(problem)
            ranks = []
            for k in range(3):
                st = random_state(problem, seed=seed + k, values=values)
                vals = {str(p): 1.0 for p in problem.parameters} | st.values
                s = np.linalg.svd(ns.evaluate(st.state, vals).J_x.toarray(), compute_uv=False)
                ranks.append((int(np.sum(s > tol * s[0])), s))
            rank, sv = min(ranks, key=lambda x: x[0])
            r = type("R", (), {"rank": rank, "size": len(net.order),
                               "full": rank == len(net.order), "dependent": (),
                               "method": "numeric"})()
        what = "G_xi"
    else:
        r = constraint_rank(problem, tol=tol, seed=seed, at=values)
        sv = r.singular_values or None
        what = "G_q"
    details = {"method": r.method, "dependent": list(r.dependent)}
    if sv is not None:
        details["sigma_min/sigma_max"] = float(sv[-1] / sv[0]) if len(sv) else None
    msg = (f"{what} has rank {r.rank} of {r.size} ({r.method})" if r.full else
           f"{what} has rank {r.rank} < {r.size}: dependent constraints "
           f"{', '.join(r.dependent) or '?'}; remove them or use a feedforward graph")
    return Check("rank", "pass" if r.full else "fail", r.rank, r.size, msg, details)


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
            out[net.x[j]] = net.activation(a) + p
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
    red = reduce(el, backprop(rate=el.rate, gamma=gamma))
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
                     "sign_agreement": float(lm.sign_agreement)})
    return rows


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
    bad = [r for r in table if not r["ok"]]
    worst = max(bad, key=lambda r: r["relative_error"]) if bad else None
    msg = ("per-layer weight velocities match the gradient" if ok else
           f"layer {worst['layer']} is off the gradient: relative error "
           f"{worst['relative_error']:.3g}, {worst['angle_deg']:.3g} deg "
           f"(cosine {worst['cosine']:.3g}, sign agreement {worst['sign_agreement']:.2f})")
    checks.append(Check("backprop.numeric.layers", "pass" if ok else "fail",
                        max((r["angle_deg"] for r in table if not r["negligible"]),
                            default=0.0), None, msg,
                        {"layers": table, "tolerance_relative_error": rtol}))
    return checks


def check_convergence(problem: Problem, *, ratios: Iterable[float] = (1e-1, 1e-2, 1e-3, 1e-4),
                      expected: float = 1.0, order_tol: float = 0.1, gamma: float = 1.0,
                      seed: int = 0, values: Mapping[str, float] | None = None) -> Check:
    """Order of convergence of eq. (10)'s multipliers to the backprop delta in ``m_x/m_W``.

    Expected order 1: ``m_x/m_W`` multiplies ``J_W J_Wᵀ`` in eq. (10) times ``m_x``,
    so ``δ(r) = δ₀ + O(r)``.
    """
    ns = derive_network(problem)
    st = random_state(problem, seed=seed, values=values)
    ref = casadi_gradients(problem, st.state.w, st.values)
    rs = np.array(list(ratios), dtype=float)
    errs = np.array([_rel(evaluate_at_ratio(ns, st.state, st.values, gamma, r).delta,
                          ref.delta) for r in rs])
    fit = metrics.convergence_order(rs, errs)
    ok = abs(fit.order - expected) <= order_tol
    return Check("convergence.mass_ratio", "pass" if ok else "fail", fit.order, expected,
                 f"error ~ (m_x/m_W)^{fit.order:.3f}, {fit.confidence:.0%} CI "
                 f"[{fit.ci[0]:.3f}, {fit.ci[1]:.3f}], R^2 = {fit.r_squared:.4f}",
                 {"ratios": rs, "errors": errs, "ci": fit.ci, "r_squared": fit.r_squared,
                  "order_tolerance": order_tol})


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
    msg = ("multiplier dynamics stable forward in time" if ok else
           f"anti-stable multiplier dynamics (max Re eig = {worst:.4g}): integrated forward "
           f"they blow up like exp({worst:.3g} t); use " + "; or ".join(ANTI_STABLE_VARIANTS))
    return Check(name, "pass" if ok else "fail", worst, tol, msg,
                 {"eigenvalues": [complex(e) for e in eig], "point": point,
                  "variants": list(ANTI_STABLE_VARIANTS)})


# -- initial conditions ------------------------------------------------------------------
def check_initial_conditions(problem: Problem, initial: Mapping[str, float] | None = None, *,
                             el: EulerLagrange | None = None, tol: float = 1e-9,
                             seed: int = 0, symbolic_max: int = 12,
                             values: Mapping[str, float] | None = None) -> Check:
    """``G = 0`` and ``Ġ = 0`` at ``t = 0`` (general eq. 11).

    With ``initial`` given, check it; otherwise (networks) complete random weights and
    inputs with :func:`~cognitive_action.derive.initial.complete_initial_conditions`
    and check the result.
    """
    name = "initial_conditions"
    if initial is None:
        if not is_network_problem(problem):
            return Check(name, "skip", message="no initial conditions given")
        net = problem.network
        el = el or derive_network(problem).euler_lagrange()
        st = random_state(problem, seed=seed, values=values)
        given = {str(w): float(v) for w, v in zip(net.weights, st.state.w)}
        given |= {str(dot(w)): 0.0 for w in net.weights}
        given |= {k: v for k, v in st.values.items()}
        given = {str(p): 1.0 for p in problem.parameters} | given
        initial = complete_initial_conditions(el, given, t0=st.state.t)
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
        limit = backprop(rate=el.rate)
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
def verify(problem: Problem, *, law: LearningLaw | None = None,
           formulas: Mapping[str, Mapping[sp.Symbol, sp.Expr]] | None = None,
           initial: Mapping[str, float] | None = None,
           values: Mapping[str, float] | None = None, gamma: float = 1.0, rtol: float = 1e-9,
           fd_rtol: float = 1e-6, seed: int = 0, symbolic_max: int = 12,
           skip: Iterable[str] = (), simulate: bool = False) -> Report:
    """Run every applicable check on a problem and return the :class:`Report`.

    Parameters
    ----------
    problem
        The declared learning law.
    law
        A :data:`~cognitive_action.verify.laws.LearningLaw` to check numerically instead
        of the derived one (e.g. your own update rule).
    formulas
        ``{name: {unknown: expression}}`` compared with the derived reduced system.
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
        Largest network (neurons) for the symbolic checks.
    skip
        Names (or prefixes) of checks not to run.
    simulate
        Also run the checks that simulate (seconds each, see
        :mod:`~cognitive_action.verify.simulated_limits`): the order of convergence of
        simulated weights to the gradient flow (14) as ``θ → ∞`` and to eq. (12)-(13) as
        ``m_x → 0``, for feedforward networks with ``ϖ = exp(θt)``; and (see
        :mod:`~cognitive_action.verify.convergence`) the order of the velocities ``Ẇ``
        after the initial layer (``θ → ∞``), of the multipliers toward the backprop
        deltas (eq. 17, ``m_x → 0``) and the drift ``max |Ġ|`` of one learning run.

    Raises
    ------
    DeclarationError
        If ``problem`` is not a :class:`~cognitive_action.declare.problem.Problem`.
    """
    if not isinstance(problem, Problem):
        raise DeclarationError(f"verify takes a Problem, got {type(problem).__name__}",
                               fix="declare it with Problem(...) or Network(...).problem()")
    skip = tuple(skip)
    report = Report(problem.name)

    def wanted(name: str) -> bool:
        return not any(name.startswith(s) for s in skip)

    def run(name: str, fn: Callable[[], Check | list[Check]]) -> None:
        if not wanted(name):
            return
        try:
            out = fn()
        except CognitiveActionError as exc:
            if isinstance(exc, DeclarationError) and name != "initial_conditions":
                raise
            out = Check(name, "fail", None, None, str(exc))
        report.checks.extend(out if isinstance(out, list) else [out])

    network = is_network_problem(problem)
    feedforward = network and problem.network.is_feedforward
    small = network and len(problem.network.order) <= symbolic_max
    el = euler_lagrange(problem) if (not network or small) else None
    run("rank", lambda: check_rank(problem, seed=seed, symbolic_max=symbolic_max,
                                   values=values))
    if feedforward:
        if small:
            run("backprop.symbolic", lambda: check_backprop_symbolic(problem, el=el, seed=seed))
        run("backprop.numeric", lambda: check_backprop_numeric(
            problem, law=law, gamma=gamma, rtol=rtol, fd_rtol=fd_rtol, seed=seed,
            values=values))
        run("convergence", lambda: check_convergence(problem, gamma=gamma, seed=seed,
                                                     values=values))
    if not network or (problem.network.speed is not None and small):
        run("stability", lambda: check_stability(problem, values=values, seed=seed, el=el))
    if initial is not None:
        initial = {str(k): float(v) for k, v in (values or {}).items()} | dict(initial)
    if initial is not None or network:
        run("initial_conditions", lambda: check_initial_conditions(
            problem, initial, el=el if initial is not None else None, seed=seed,
            symbolic_max=symbolic_max, values=values))
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
    for fname, formula in (formulas or {}).items():
        run(f"formula.{fname}", lambda f=formula, n=fname: check_formula(
            el or euler_lagrange(problem), f, name=n, seed=seed))
    return report


__all__ += ["SampledState"]
_ = t  # time symbol re-exported for formulas written against this module
