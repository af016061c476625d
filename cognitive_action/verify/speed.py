"""The ``c → ∞`` limit of neurons with a speed (eq. 18-20), as a verifier check.

A neuron of eq. (18)-(19), ``ẋ/c + x − σ(a) = 0``, relaxes toward ``σ(a)`` at rate ``c``;
its constraint is non-holonomic, and under the paper's variational rule its multiplier
``μ`` has dynamics (eq. 20). As ``c → ∞`` both the forward and the backward wave become
instantaneous and the multipliers become the backprop deltas ``T μ = −V_x`` (eq. 17).
:func:`check_speed_limit` measures that convergence on the user's own problem, with the
weights frozen (read, not learned, as in Figures 1-3) and every signal moving in time
(with static signals the rest state *is* the limit at any ``c``, and nothing would be
measured):

1. derive the Euler-Lagrange equations of the problem, take the quasi-static limit
   ``m_x → 0`` (:func:`~cognitive_action.derive.limits.reduce` with
   :func:`~cognitive_action.derive.limits.quasi_static`: the neuron rows become the
   multiplier dynamics, the constraint rows the forward dynamics ``ẋ = c(σ(a) − x)``),
   freeze the weights and compile (:func:`~cognitive_action.compile.reduced.compile_reduced`);
2. run the multiplier dynamics in their stable form
   (:func:`~cognitive_action.compile.variants.stable_variant`, ``"relaxation"``: eq. 20 is
   anti-stable forward in time, the relaxation has the same equilibrium);
3. compare the simulated ``μ_j(t)`` with the backprop deltas at the same time, by CasADi
   AD through an independent forward pass
   (:func:`~cognitive_action.verify.reference.casadi_gradients`), and fit the order in
   ``1/c`` on a range chosen until it is stable
   (:func:`~cognitive_action.verify.convergence.simulated_order_check`).

:func:`check_speed_backprop` checks the limit itself: the derived system reduced to
leading order as ``m_x → 0`` and ``c → ∞`` together (``m_x = ε² m_x``, ``c = ε⁻² c``,
:func:`speed_backprop_limit`) has multipliers that are the backprop deltas and weight
rows ``m_W ẅ = −∂V̄/∂w`` (eq. 12-13, 17); they are evaluated at random states on the
forward pass and compared with CasADi AD.

Expected order 1: each neuron lags ``σ(a)`` by ``O(ω/c)`` (a first-order relaxation at
rate ``c`` of a signal moving at angular frequency ``ω``), and the relaxed multipliers lag
their equilibrium by ``O(ω/c)`` likewise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import t as time
from cognitive_action.verify import metrics
from cognitive_action.verify.report import Check

if TYPE_CHECKING:
    from cognitive_action.compile.system import CompiledSystem
    from cognitive_action.derive.limits import Limit

__all__ = ["check_speed_limit", "check_speed_backprop", "SpeedLimitSetup",
           "speed_limit_setup", "speed_backprop_limit"]

NAME = "convergence.speed"
LIMIT_NAME = "backprop.speed"


@dataclass(frozen=True)
class SpeedLimitSetup:
    """What :func:`check_speed_limit` simulates: the compiled relaxation, its parameters,
    initial state, grid and the AD reference deltas on the grid.

    Attributes
    ----------
    system
        The compiled quasi-static reduction with frozen weights, relaxation variant.
    params
        Parameter values by name, without the speed.
    speed
        Name of the speed parameter ``c``.
    y0
        Initial state (forward pass and backprop deltas at ``t = 0``: the rest state of
        ``c = ∞``).
    grid
        Output times.
    multipliers
        Names of the multiplier states, and ``neurons`` the index (network order) of the
        neuron of each.
    reference
        Backprop deltas of those neurons at every time of ``grid`` (rows).
    signals
        The time-varying signals used, by name (as text).
    """

    system: CompiledSystem
    params: dict[str, float]
    speed: str
    y0: np.ndarray
    grid: np.ndarray
    multipliers: tuple[str, ...]
    neurons: tuple[int, ...]
    reference: np.ndarray
    signals: dict[str, str]

    def multipliers_at(self, c: float, *, rtol: float = 1e-10, atol: float = 1e-12
                       ) -> np.ndarray:
        """The simulated multipliers at speed ``c`` on :attr:`grid` (rows: times)."""
        from cognitive_action.compile.simulate import simulate

        run = simulate(self.system, self.grid, self.y0, self.params | {self.speed: float(c)},
                       rtol=rtol, atol=atol)
        return np.column_stack([run[m] for m in self.multipliers])


def _not_applicable(problem: Problem) -> str | None:
    """Why the check does not apply to ``problem`` (``None`` when it does)."""
    from cognitive_action.declare.network import Network

    net = getattr(problem, "network", None)
    if not isinstance(problem, Problem) or not isinstance(net, Network):
        return "not a network problem: no neurons with a speed"
    if net.speed is None:
        return "the neurons have no speed c (holonomic neurons): no c -> oo limit"
    if not problem.roles.symbols(RoleKind.SPEED):
        return (f"the speed is the number {net.speed}: declare it a symbol "
                "(Network(..., speed=c), parameters=[c]) to measure c -> oo")
    if not net.is_feedforward:
        return ("the network has cycles: the c -> oo reference (backprop through the forward "
                "pass) needs a feedforward network")
    mx = problem.action.masses.get(net.neurons[0])
    if problem.roles.kind(mx) != RoleKind.MASS:
        return f"the neurons' mass is {mx}, not a parameter: the m_x -> 0 reduction needs it"
    w = problem.action.weight
    if w != 1 and not problem.roles.symbols(RoleKind.RATE):
        return (f"the time weight {w} is neither 1 nor exp(theta t): the c -> oo limit is "
                "measured at weight 1")
    return None


def speed_limit_setup(problem: Problem, *, frequency: float = 0.5, amplitude: float = 0.5,
                      t_end: float = 8.0, n_points: int = 81, seed: int = 0,
                      values: Mapping[str, float] | None = None) -> SpeedLimitSetup:
    """Derive, reduce, freeze and compile a speed-``c`` network problem, with its reference.

    Parameters
    ----------
    problem
        A feedforward network problem of neurons (19) with a symbolic speed.
    frequency, amplitude
        Every signal not given in ``values`` is ``s(t) = s₀ + A sin(ω t + φ)`` with
        ``s₀ ~ N(0, 1/4)`` and a phase ``φ`` drawn from ``seed``.
    t_end, n_points
        Output grid ``linspace(0, t_end, n_points)``.
    seed
        Seed of the frozen weights (``N(0, 1/fan_in)``) and of the signals.
    values
        Numbers for signals (held constant) and parameters; other parameters are 1, a
        rate ``θ`` of ``ϖ = exp(θt)`` is 0 (``ϖ = 1``) unless given.

    Returns
    -------
    SpeedLimitSetup

    Raises
    ------
    DeclarationError
        When the check does not apply (the reason is the message).
    """
    from cognitive_action.compile.reduced import compile_reduced, freeze
    from cognitive_action.compile.variants import stable_variant
    from cognitive_action.declare.initializers import initialize
    from cognitive_action.derive.euler_lagrange import euler_lagrange
    from cognitive_action.derive.limits import quasi_static, reduce
    from cognitive_action.errors import DeclarationError
    from cognitive_action.verify.convergence import gradient_function
    from cognitive_action.verify.reference import casadi_gradients

    why = _not_applicable(problem)
    if why is not None:
        raise DeclarationError(why, fix="check_speed_limit applies to Network(..., speed=c) "
                               "feedforward problems with symbolic masses")
    net = problem.network
    given = {str(k): float(v) for k, v in (values or {}).items()}
    rng = np.random.default_rng(seed)
    w = initialize([net.graph.in_degree(j) for (j, _k) in net.w], rng=rng)
    signals: dict[str, sp.Expr] = {}
    for s in problem.signals:
        if str(s) in given:
            continue
        s0, phase = 0.5 * rng.standard_normal(), rng.uniform(0.0, 2 * np.pi)
        signals[str(s)] = sp.Float(s0) + amplitude * sp.sin(frequency * time + sp.Float(phase))
    moving = bool(signals) or any(time in c.expr.free_symbols for c in problem.constraints) \
        or time in problem.action.lagrangian.free_symbols
    if not moving or frequency == 0:
        raise DeclarationError("nothing in the problem moves in time: the rest state is the "
                               "c -> oo limit at every c, there is no order to measure",
                               fix="leave a signal free (not in values) or give inputs "
                               "depending on t")
    mx = problem.action.masses[net.neurons[0]]
    el = euler_lagrange(problem)
    red = reduce(el, quasi_static(mx))
    system = compile_reduced(freeze(red, list(net.weights)), problem=problem, signals=signals)
    speed = str(problem.roles.symbols(RoleKind.SPEED)[0])
    rates = {str(r) for r in problem.roles.symbols(RoleKind.RATE)}
    params = {n: given.get(n, 0.0 if n in rates else 1.0)
              for n in system.parameters if n != speed}
    params |= {str(wk): float(v) for wk, v in zip(net.weights, w)}
    index = {c.name: i for i, c in enumerate(problem.constraints)}
    mults, neurons = [], []
    for c in problem.nonholonomic_constraints:
        m = str(red.multiplier_of(c.name))
        if m in system.states:
            mults.append(m)
            neurons.append(index[c.name])
    grid = np.linspace(0.0, float(t_end), int(n_points))
    const = given | {k: v for k, v in params.items() if k not in given}
    ref0 = casadi_gradients(problem, w, const | {n: float(e.subs(time, 0.0))
                                                 for n, e in signals.items()} | {"t": 0.0})
    backprop = gradient_function(problem, const, signals=signals)
    reference = np.array([backprop(tt, w, delta=True)[1][neurons] for tt in grid])
    states = dict(zip([str(net.x[j]) for j in net.order], ref0.x.tolist()))
    states |= {m: float(ref0.delta[i]) for m, i in zip(mults, neurons)}
    y0 = np.array([states[n] for n in system.states])
    relaxed = stable_variant(system, "relaxation")
    return SpeedLimitSetup(relaxed, params, speed, y0, grid, tuple(mults), tuple(neurons),
                           reference, {n: str(e) for n, e in signals.items()})


def check_speed_limit(problem: Problem, *, speeds: Sequence[float] = (10, 20, 40, 80),
                      frequency: float = 0.5, amplitude: float = 0.5, t_end: float = 8.0,
                      t_from: float = 2.0, n_points: int = 81, seed: int = 0,
                      values: Mapping[str, float] | None = None, expected: float = 1.0,
                      order_tol: float = 0.15, max_points: int | None = None,
                      max_neurons: int = 32) -> Check:
    """Order of convergence of speed-``c`` neurons' multipliers to backprop as ``c → ∞``.

    See the module docstring for the method. The error at ``c`` is the relative error
    ``sqrt(Σ_t |μ(t) − δ_AD(t)|² / Σ_t |δ_AD(t)|²)`` over the times ``t ≥ t_from`` (after
    the start-up) of every multiplier state, fitted against ``1/c``.

    Parameters
    ----------
    problem
        A feedforward network problem of neurons (19), ``Network(..., speed=c)`` with a
        symbolic ``c``, symbolic masses and ``ϖ = 1`` (or ``exp(θt)``, run at ``θ = 0``
        unless ``values`` gives ``θ``).
    speeds
        The first speeds (increasing); doubled further until the fitted order is stable.
    frequency, amplitude
        Angular frequency and amplitude of the signals (see :func:`speed_limit_setup`).
    t_end, t_from, n_points
        Error measured on ``[t_from, t_end]`` of an ``n_points`` grid on ``[0, t_end]``.
    seed
        Seed of the frozen weights and the signals' offsets and phases.
    values
        Numbers for parameters and for signals to hold constant.
    expected, order_tol
        A stable order passes when ``|order − expected| ≤ order_tol``.
    max_points
        Largest number of simulations (default
        :data:`~cognitive_action.verify.convergence.SIMULATED_SEARCH`).
    max_neurons
        Largest network run: the reduction is symbolic over the whole network and its
        cost grows faster than the size; a larger network is ``skip`` with the reason.

    Returns
    -------
    Check
        ``convergence.speed``: ``skip`` (with the reason) when the problem has no
        symbolic speed, is not a feedforward network, has more than ``max_neurons``
        neurons or nothing in it moves in time;
        otherwise value the fitted order in ``1/c``, ``pass``/``fail`` on a stable order,
        ``inconclusive`` when it never stabilised. ``details`` hold the speeds and errors,
        the range used, the CI, the signals used and the per-layer errors.

    Examples
    --------
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare import symbols as S
    >>> c, = S.parameters("c")
    >>> p = ca.layered([1, 2, 1], speed=c).problem(parameters=[c])
    >>> check = check_speed_limit(p, seed=1)
    >>> check.status, round(check.value, 1)
    ('pass', 1.0)
    >>> check_speed_limit(ca.layered([1, 2, 1]).problem()).status
    'skip'
    """
    from cognitive_action.errors import DeclarationError
    from cognitive_action.verify.convergence import simulated_order_check

    why = _not_applicable(problem)
    if why is not None:
        return Check(NAME, "skip", message=why)
    n = len(problem.network.order)
    if n > max_neurons:
        return Check(NAME, "skip", message=f"{n} neurons > max_neurons = {max_neurons}: the "
                     "symbolic m_x -> 0 reduction of the whole network is not run at this "
                     "size (pass max_neurons to run it)", details={"neurons": n})
    cs = np.asarray(list(speeds), dtype=float)
    if cs.size < 3 or np.any(~np.isfinite(cs)) or np.any(cs <= 0) or np.any(np.diff(cs) <= 0):
        raise DeclarationError(f"speeds {cs.tolist()} are not three or more increasing "
                               "positive numbers", fix="pass e.g. speeds=(10, 20, 40, 80)")
    if not 0.0 <= t_from < t_end:
        raise DeclarationError(f"t_from = {t_from} is not in [0, t_end = {t_end})",
                               fix="measure after the start-up and before the end")
    try:
        setup = speed_limit_setup(problem, frequency=frequency, amplitude=amplitude,
                                  t_end=t_end, n_points=n_points, seed=seed, values=values)
    except DeclarationError as exc:
        if "moves in time" in str(exc):
            return Check(NAME, "skip", message=str(exc))
        raise
    late = setup.grid >= t_from
    ref = setup.reference[late]
    depth_of = _depths(problem)
    layers = np.array([depth_of[i] for i in setup.neurons])
    per_layer: list[dict[int, float]] = []

    def error_at(p: float) -> float:
        mu = setup.multipliers_at(1.0 / p)[late]
        per_layer.append({int(k): float(metrics.relative_error(mu[:, layers == k],
                                                               ref[:, layers == k]))
                          for k in sorted(set(layers.tolist()))
                          if np.any(ref[:, layers == k])})
        return float(metrics.relative_error(mu, ref))

    return simulated_order_check(
        NAME, error_at, 1.0 / cs, expected, order_tol,
        "speed-c multipliers mu(t) -> backprop deltas (AD) as c -> oo", "1/c",
        {"speeds_first": cs, "frequency": frequency, "t_from": t_from, "t_end": t_end,
         "signals": setup.signals, "layer_errors": per_layer,
         "variant": "relaxation (quasi-static m_x -> 0, weights frozen)"}, max_points)


def _depths(problem: Problem) -> dict[int, int]:
    """Depth of each neuron, by its index in network order."""
    from cognitive_action.verify.reference import depths

    net = problem.network
    d = depths(net)
    return {i: d[j] for i, j in enumerate(net.order)}


def speed_backprop_limit(problem: Problem) -> Limit:
    """The :class:`~cognitive_action.derive.limits.Limit` ``m_x → 0, c → ∞`` of a
    speed-``c`` network problem: ``m_x = ε² m_x``, ``c = ε⁻² c`` (the speed grows faster
    than the neurons lose their mass, as in
    :func:`~cognitive_action.derive.limits.backprop` with ``speed``).

    Raises
    ------
    DeclarationError
        When the problem has no symbolic speed or neuron mass (the reason).
    """
    from cognitive_action.derive.limits import Limit
    from cognitive_action.errors import DeclarationError

    why = _not_applicable(problem)
    if why is not None:
        raise DeclarationError(why, fix="declare Network(..., speed=c) with parameters=[c] "
                               "and symbolic masses")
    mx = problem.action.masses[problem.network.neurons[0]]
    c = problem.roles.symbols(RoleKind.SPEED)[0]
    return Limit("m_x -> 0, c -> oo", {mx: 2, c: -2},
                 description="instantaneous neurons of infinite speed (eq. 20, c -> oo)")


def check_speed_backprop(problem: Problem, *, seed: int = 0, states: int = 3,
                         values: Mapping[str, float] | None = None, rtol: float = 1e-9,
                         max_neurons: int = 32) -> Check:
    """The ``c → ∞`` limit of speed-``c`` neurons against backprop by AD, at random states.

    The Euler-Lagrange equations of the problem are reduced to leading order as
    ``m_x → 0`` and ``c → ∞`` (:func:`speed_backprop_limit`) and solved for their
    unknowns; at ``states`` random states (weights ``N(0, 1/fan_in)``, signals
    ``N(0, 1)``, neurons on the forward pass, velocities 0) the multipliers of the
    neuron constraints are compared with the backprop deltas ``−∂V̄/∂x_j`` and the
    weight rows ``m_W ẅ`` with ``−∂V̄/∂w``, both by CasADi AD of an independent forward
    pass (:func:`~cognitive_action.verify.reference.casadi_gradients`).

    Parameters
    ----------
    problem
        A feedforward network problem of neurons (19) with a symbolic speed.
    seed, states
        Seed and number of the random states.
    values
        Numbers for parameters and signals (others: parameters 1, signals random).
    rtol
        Largest relative error of the multipliers and of the weight rows.
    max_neurons
        Largest network run (the reduction is symbolic over the whole network).

    Returns
    -------
    Check
        ``backprop.speed``: value the largest relative error; ``details`` hold the error
        of the multipliers and of the weight rows per state. ``skip`` with the reason
        when the problem has no symbolic speed, is cyclic or too large.

    Examples
    --------
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare import symbols as S
    >>> c, = S.parameters("c")
    >>> check = check_speed_backprop(ca.chain(3, speed=c).problem(parameters=[c]))
    >>> check.status, check.value < 1e-12
    ('pass', True)
    """
    from cognitive_action.declare.initializers import initialize
    from cognitive_action.declare.symbols import dot
    from cognitive_action.derive.euler_lagrange import euler_lagrange
    from cognitive_action.derive.limits import reduce
    from cognitive_action.verify.reference import casadi_gradients

    why = _not_applicable(problem)
    if why is not None:
        return Check(LIMIT_NAME, "skip", message=why)
    net = problem.network
    if len(net.order) > max_neurons:
        return Check(LIMIT_NAME, "skip", message=f"{len(net.order)} neurons > max_neurons = "
                     f"{max_neurons}: the symbolic m_x -> 0, c -> oo reduction of the whole "
                     "network is not run at this size (pass max_neurons to run it)")
    limit = speed_backprop_limit(problem)
    red = reduce(euler_lagrange(problem), limit)
    sol = red.solve()
    mults = [red.multiplier_of(con.name) for con in problem.constraints]
    rows = [dot(w, 2) for w in net.weights]
    exprs = [sol[m] for m in mults] + [sol[r] for r in rows]
    syms = sorted(set().union(*(e.free_symbols for e in exprs)), key=str)
    f = sp.lambdify(syms, exprs, "numpy", dummify=True)
    m_W = problem.action.masses[net.weights[0]]
    given = {str(k): float(v) for k, v in (values or {}).items()}
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(states):
        w = initialize([net.graph.in_degree(j) for (j, _k) in net.w], rng=rng)
        vals = {str(p): 1.0 for p in problem.parameters}
        vals |= {str(sg): float(rng.standard_normal()) for sg in problem.signals}
        vals |= {"t": float(rng.uniform(0.5, 1.5))} | given
        ref = casadi_gradients(problem, w, vals)
        point = dict(vals) | {str(x): float(v) for x, v in zip(
            (net.x[j] for j in net.order), ref.x)}
        point |= {str(wk): float(v) for wk, v in zip(net.weights, w)}
        out = np.asarray([float(v) for v in f(*[point.get(str(s), 0.0) for s in syms])])
        n = len(mults)
        delta, wdd = out[:n], out[n:] * point.get(str(m_W), 1.0)
        e_d = float(metrics.relative_error(delta, ref.delta))
        e_w = float(metrics.relative_error(wdd, -ref.grad_w)) if np.any(ref.grad_w) else 0.0
        errors.append({"multipliers": e_d, "weights": e_w})
    worst = max(max(e.values()) for e in errors)
    ok = worst <= rtol
    msg = (f"reduced {limit.name}: multipliers = backprop deltas and m_W w'' = -dV/dW (AD) "
           f"at {states} random states" if ok else
           f"the {limit.name} limit is not backprop: relative error {worst:.3g} against AD "
           f"(multipliers {max(e['multipliers'] for e in errors):.3g}, weight rows "
           f"{max(e['weights'] for e in errors):.3g})")
    return Check(LIMIT_NAME, "pass" if ok else "fail", worst, rtol, msg,
                 {"errors": errors, "limit": limit.name, "states": states})
