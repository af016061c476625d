"""Assemble derived systems into compiled first-order ODEs ``ẏ = f(t, y, p)``.

Two routes lead to the same :class:`CompiledSystem`:

- **generic** (:func:`compile_system` on a :class:`~cognitive_action.declare.problem.Problem`
  or an :class:`~cognitive_action.derive.euler_lagrange.EulerLagrange`): the mass-matrix
  form ``mass_matrix · unknowns = forcing`` (rows: coordinates, then constraints) is
  translated entry by entry into a scalar CasADi SX graph, and the unknowns
  (``q̈``, the multipliers ``λ`` and, under the vakonomic rule, ``μ̇``) are obtained by a
  sparse linear-solve node (CasADi ``Linsol``, QR by default) inside the compiled
  function, never by a symbolic inverse (design notes: expression swell). The state is
  ``el.states``: ``q``, ``q̇`` and, for the vakonomic rule, ``μ``.
- **network** (on a :class:`~cognitive_action.derive.network.NetworkSystem`, or a
  problem made by ``Network.problem``): the right-hand side of eq. (8)-(10) is built as
  CasADi MX matrix and vector operations from the per-neuron templates and the sparse
  weight matrix (``a = W x``, ``J_x = diag(g_ξ) + diag(g_a) W``, eq. 10 as
  ``(J_x J_xᵀ/m_x + diag(g_a² ∘ P x²)/m_W) δ = b`` solved by a linear-solve node over the
  non-input neurons, the input constraints eliminated exactly; from 45 non-input
  neurons by a Cholesky kernel in NumPy's OpenBLAS, :mod:`.dense_kernels`). The
  graph's size grows with the number of distinct templates, not with the number of
  weights, so dense networks build quickly (docs/performance.md).

Signals (inputs ``e``, targets ``y``) are either given as SymPy expressions of ``t``
(their time derivatives are taken symbolically) or left as constant runtime parameters
(their derivatives are then zero). Every compiled function takes the parameter vector
``p`` = the problem's parameters, the constant signals, and two hidden Baumgarte gains
``(α, β)`` (zero unless a simulation asks for stabilization): the acceleration-level
constraints are then ``G̈ + 2α Ġ + β² G = 0`` (holonomic) and ``Ṅ + α N = 0``
(non-holonomic).

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Constraint, Problem
>>> q1, q2 = S.coordinates("q1 q2"); m, g, L = S.parameters("m g L")
>>> pendulum = Problem(Action([q1, q2], masses=m, lagrangian=m * g * q1),
...                    [Constraint(q1**2 + q2**2 - L**2, name="rod")], parameters=[m, g, L])
>>> sys = compile_system(pendulum)
>>> sys.states, sys.parameters
(('q1', 'q2', 'q1_dot', 'q2_dot'), ('L', 'g', 'm'))
>>> sys.evaluate(0.0, {"q1": 1.0, "q2": 0.0, "q1_dot": 0.0, "q2_dot": 0.0},
...              {"m": 2.0, "g": 9.81, "L": 1.0}).round(12).tolist()
[0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np
import sympy as sp

from cognitive_action.compile.assembly import (
    LINEAR_SOLVERS,
    STABILIZATION_PARAMETERS,
    argument_symbols,
    bind_parameters,
    bind_signals,
    column,
    constraint_projection,
    listing,
    loss_forcing,
    parameter_names,
    signal_values,
    sparse_sx,
    suggest,
    take,
)
from cognitive_action.compile.dense_kernels import SPD_KERNEL, spd_solve
from cognitive_action.compile.routes import BuildOptions, register_route, route_for
from cognitive_action.compile.translate import Translator
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import MAX_ORDER, dot
from cognitive_action.derive.calculus import TimeDerivative
from cognitive_action.derive.euler_lagrange import EulerLagrange
from cognitive_action.derive.forms import derived
from cognitive_action.derive.network import (
    XI,
    NetworkSystem,
)
from cognitive_action.derive.network import A as A_SYM
from cognitive_action.errors import CompileError

if TYPE_CHECKING:
    from cognitive_action.derive.limits import ReducedSystem

__all__ = ["CompiledSystem", "compile_system", "STABILIZATION_PARAMETERS", "LINEAR_SOLVERS",
           "NETWORK_LINEAR_SOLVERS"]

#: Solvers for the network route, whose eq. (10) matrix ``J M⁻¹ Jᵀ`` is symmetric positive
#: definite under Proposition 1: an LDLᵀ factorization without pivoting is valid there,
#: and so is the Cholesky kernel ``"scipy_cholesky"`` (:mod:`.dense_kernels`, not a
#: CasADi plugin: the VM only).
#: Measured times of forming ``J_x J_xᵀ`` and solving with each: docs/performance.md.
NETWORK_LINEAR_SOLVERS = ("ldl", "csparsecholesky", SPD_KERNEL) + LINEAR_SOLVERS

_ORDERS = range(MAX_ORDER + 1)


@dataclass
class CompiledSystem:
    """A derived system compiled to CasADi: ``ẏ = f(t, y, p)`` plus diagnostics.

    Attributes
    ----------
    name
        For reports.
    route
        ``"generic"`` (scalar SX graph of the mass-matrix form), ``"network"`` (MX
        matrix operations from per-neuron templates), ``"network_speed"`` (the same for
        neurons with a speed ``c``, eq. 18-20) or ``"reduced"`` (a limit's system).
    states
        State names in the order of ``y``: coordinates, velocities, then the
        non-holonomic multipliers ``μ`` under the vakonomic rule.
    coordinates, velocities, multiplier_states
        The three blocks of ``states``.
    parameters
        Names of the runtime parameters the user gives values for (the problem's
        parameters, then the constant signals). The full parameter vector also holds
        the hidden Baumgarte gains :data:`STABILIZATION_PARAMETERS`.
    rhs
        CasADi function ``(t, y, p) → ẏ``.
    unknowns
        CasADi function ``(t, y, p) → u``: accelerations and multipliers, named by
        ``unknown_names``.
    constraints
        CasADi function ``(t, y, p) → (G, Ġ)`` over all constraints (for non-holonomic
        ones ``Ġ`` is reported as ``0`` and ``G`` is ``N``); ``None`` without constraints.
    constraint_names, constraint_kinds
        One entry per constraint.
    projection
        CasADi function ``(t, y, p) → y`` projecting onto ``G = 0``, ``Ġ = 0``,
        ``N = 0`` (minimum-norm Gauss-Newton steps); ``None`` without constraints.
        Built on first use.
    dae
        Index-1 DAE form for IDAS: ``{"function": (t, y, z, p) → (ẏ, 0 = alg),
        "z_names": ..., "z_from_unknowns": indices}``, or ``None``.
    vakonomic
        Whether the system has multiplier states (non-holonomic, vakonomic rule).
    linear_solver
        The CasADi ``Linsol`` plugin of the linear-solve node.
    build_time
        Seconds spent translating and building the functions.
    signals
        How each signal is given (an expression of ``t``, or ``"constant parameter"``).
    library
        The :class:`~cognitive_action.compile.codegen.Library` the functions were loaded
        from (generated C), or ``None`` (CasADi's virtual machine).
    variant
        How the multiplier dynamics run: ``"forward"`` (as derived) or a stable variant
        of :func:`~cognitive_action.compile.variants.stable_variant`.
    multipliers
        The names among ``unknown_names`` that are multipliers (by the derived system's
        roles), as opposed to rates and promoted velocities.
    trajectory_constraints
        ``(times (n_t,), Y (n_t, n_y), p, rates=True) → (G, Ġ or None)``, each
        ``(n_t, n_constraints)``: ``constraints`` at every output point in one vectorised
        pass (the drift report; equal to ``constraints`` point by point to round-off), or
        ``None`` (then the report maps ``constraints``). Networks only.
    """

    name: str
    route: str
    states: tuple[str, ...]
    coordinates: tuple[str, ...]
    velocities: tuple[str, ...]
    multiplier_states: tuple[str, ...]
    parameters: tuple[str, ...]
    rhs: ca.Function
    unknowns: ca.Function
    unknown_names: tuple[str, ...]
    constraints: ca.Function | None
    constraint_names: tuple[str, ...]
    constraint_kinds: tuple[str, ...]
    projection_builder: Callable[[], ca.Function] | None
    dae: dict | None
    vakonomic: bool
    linear_solver: str
    build_time: float
    signals: dict[str, str] = field(default_factory=dict)
    library: object = None
    variant: str = "forward"
    multipliers: tuple[str, ...] = ()
    origin: tuple | None = field(default=None, repr=False)
    trajectory_constraints: Callable[..., tuple[np.ndarray, np.ndarray | None]] | None = \
        field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- sizes and vectors --------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_parameters(self) -> int:
        """Length of the full parameter vector (user parameters and hidden gains)."""
        return len(self.parameters) + len(STABILIZATION_PARAMETERS)

    @property
    def projection(self) -> ca.Function | None:
        if self.projection_builder is None:
            return None
        fn = self._cache.get("projection")
        if fn is None:
            fn = self._cache["projection"] = self.projection_builder()
        return fn

    def __repr__(self) -> str:
        return (f"CompiledSystem({self.name!r}, route={self.route!r}, {self.n_states} states, "
                f"{len(self.parameters)} parameters, {len(self.constraint_names)} "
                f"constraints)")

    def state_vector(self, values: Mapping[str | sp.Symbol, float] | Sequence[float]
                     | np.ndarray, *, strict: bool = False) -> np.ndarray:
        """The state vector ``y`` from a mapping by name or from an array.

        Parameters
        ----------
        values
            Numbers for every state by name (extra names, such as the parameters and
            signals :func:`~cognitive_action.derive.initial.complete_initial_conditions`
            returns, are ignored unless ``strict``), or an array of length
            :attr:`n_states`.
        strict
            Reject names that are not states.

        Raises
        ------
        CompileError
            A missing state, an unknown name (strict), a wrong length or a non-finite value.
        """
        if isinstance(values, Mapping):
            vals = {str(k): v for k, v in values.items()}
            missing = [s for s in self.states if s not in vals]
            if missing:
                hint = ""
                if self.multiplier_states and set(missing) <= set(self.multiplier_states):
                    hint = " (the vakonomic multipliers μ are states: give their initial values)"
                raise CompileError(
                    f"no initial value for the state(s) {listing(missing)}{hint}",
                    fix="give every state of system.states, e.g. with "
                    "complete_initial_conditions(el, given) for consistent values")
            if strict:
                extra = sorted(set(vals) - set(self.states))
                if extra:
                    raise CompileError(f"{listing(extra)} are not states",
                                       fix=suggest(extra[0], self.states))
            y = np.array([float(vals[s]) for s in self.states], dtype=float)
        else:
            y = np.asarray(values, dtype=float).reshape(-1)
            if y.shape != (self.n_states,):
                raise CompileError(
                    f"the state vector has length {y.size}, but the system has "
                    f"{self.n_states} states",
                    fix=f"give {self.n_states} values in the order of system.states "
                    f"({listing(self.states, 6)}), or a mapping by name")
        if not np.all(np.isfinite(y)):
            bad = [s for s, v in zip(self.states, y) if not np.isfinite(v)]
            raise CompileError(f"non-finite initial value for {listing(bad)}",
                               fix="give finite numbers")
        return y

    def parameter_vector(self, values: Mapping[str | sp.Symbol, float] | None = None, *,
                         fallback: Mapping[str | sp.Symbol, float] | None = None,
                         baumgarte: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """The full parameter vector from values by name.

        Parameters
        ----------
        values
            Numbers for every name of :attr:`parameters`.
        fallback
            Where to look for names missing from ``values`` (e.g. the mapping returned
            by ``complete_initial_conditions``); its other names are ignored.
        baumgarte
            The gains ``(α, β)``.

        Raises
        ------
        CompileError
            A missing value (all missing names listed), an unknown name in ``values``
            (with a spelling suggestion), or a non-finite value.
        """
        vals = {str(k): v for k, v in (values or {}).items()}
        known = set(self.parameters)
        extra = sorted(set(vals) - known)
        if extra:
            raise CompileError(
                f"{listing(extra)} {'is' if len(extra) == 1 else 'are'} not a parameter "
                f"of {self.name!r} (parameters: {listing(self.parameters)})",
                fix=suggest(extra[0], self.parameters + self.states))
        fb = {str(k): v for k, v in (fallback or {}).items()}
        missing = [n for n in self.parameters if n not in vals and n not in fb]
        if missing:
            raise CompileError(
                f"no value given for the parameter(s) {listing(missing)}",
                fix="pass params={name: value} for every name in system.parameters "
                "(constant signals such as inputs and targets are parameters too)")
        out = [float(vals[n]) if n in vals else float(fb[n]) for n in self.parameters]
        out += [float(baumgarte[0]), float(baumgarte[1])]
        p = np.array(out, dtype=float)
        if not np.all(np.isfinite(p)):
            raise CompileError("a parameter value is not finite", fix="give finite numbers")
        return p

    # -- numeric evaluation (convenience, not for inner loops) --------------------------
    def evaluate(self, time_: float, y: Mapping | Sequence[float] | np.ndarray,
                 params: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """``ẏ`` at a point (a convenience; integrators call :attr:`rhs` directly)."""
        yv = self.state_vector(y)
        pv = self._params(params)
        return np.asarray(self.rhs(float(time_), yv, pv).full(), dtype=float).reshape(-1)

    def evaluate_unknowns(self, time_: float, y, params) -> dict[str, float]:
        """Accelerations and multipliers at a point, by name."""
        u = self.unknowns(float(time_), self.state_vector(y), self._params(params))
        return dict(zip(self.unknown_names, np.asarray(u.full()).reshape(-1).tolist()))

    def evaluate_constraints(self, time_: float, y, params) -> tuple[np.ndarray, np.ndarray]:
        """``(G, Ġ)`` at a point (empty arrays without constraints)."""
        if self.constraints is None:
            return np.zeros(0), np.zeros(0)
        g, gd = self.constraints(float(time_), self.state_vector(y), self._params(params))
        return np.asarray(g.full()).reshape(-1), np.asarray(gd.full()).reshape(-1)

    def jacobian(self, time_: float, y, params) -> np.ndarray:
        """The dense Jacobian ``∂f/∂y`` at a point."""
        fn = self._cache.get("jac")
        if fn is None:
            tt = ca.MX.sym("t")
            yy = ca.MX.sym("y", self.n_states)
            pp = ca.MX.sym("p", self.n_parameters)
            fn = ca.Function("rhs_jacobian", [tt, yy, pp], [ca.jacobian(self.rhs(tt, yy, pp), yy)])
            self._cache["jac"] = fn
        return np.asarray(ca.densify(fn(float(time_), self.state_vector(y),
                                        self._params(params))).full())

    def eigenvalues(self, time_: float, y, params) -> np.ndarray:
        """Eigenvalues of the linearization ``∂f/∂y`` at a point (dense; small systems)."""
        return np.linalg.eigvals(self.jacobian(time_, y, params))

    def _params(self, params) -> np.ndarray:
        if isinstance(params, np.ndarray) and params.shape == (self.n_parameters,):
            return params.astype(float)
        return self.parameter_vector(params)


# -- entry point -------------------------------------------------------------------------
#: How ``compile_system``'s ``route`` asks for a form (``derive.forms.FORMS``).
_FORM_OF_ROUTE = {"auto": "auto", "generic": "generic", "network": "template"}


def compile_system(system: Problem | EulerLagrange | NetworkSystem | ReducedSystem, *,
                   signals: Mapping[str | sp.Symbol, object] | None = None,
                   route: str = "auto", linear_solver: str | None = None,
                   name: str | None = None, blas: bool = True) -> CompiledSystem:
    """Compile a derived system into CasADi functions.

    Parameters
    ----------
    system
        A problem (derived here), its :class:`EulerLagrange` system, a
        :class:`NetworkSystem` from :func:`~cognitive_action.derive.network.derive_network`,
        a :class:`~cognitive_action.derive.network_speed.SpeedNetworkSystem`, or the
        leading-order system of a limit (``derive.limits.reduce``: gradient flow
        (14), backprop (15)-(17), the quasi-static diffusion (20)), compiled by
        :func:`~cognitive_action.compile.reduced.compile_reduced` (``route`` and
        ``blas`` do not apply).
    signals
        Signals given as SymPy expressions of ``t`` (or numbers), by name. Signals not
        given are constant runtime parameters (their time derivatives are zero).
    route
        ``"auto"`` (network route for holonomic network problems, the speed-c template
        route for networks with a speed ``c``, generic otherwise), ``"generic"`` or
        ``"network"`` (either template route; a problem the templates do not fit raises
        under ``"network"`` and falls back to generic under ``"auto"``).
    linear_solver
        CasADi ``Linsol`` plugin for the linear-solve node: one of :data:`LINEAR_SOLVERS`
        (default ``"qr"``) for the generic route, of :data:`NETWORK_LINEAR_SOLVERS`
        (default ``"ldl"``: eq. 10's matrix is symmetric positive definite; from 45
        non-input neurons ``"scipy_cholesky"``, the ``dsyrk`` + Cholesky kernel of
        :mod:`~cognitive_action.compile.dense_kernels` in NumPy/SciPy's OpenBLAS, faster
        there, unless ``blas=False``) for the network route.
    name
        Name for reports (default: the problem's).
    blas
        Let dense MX products (network route) call CasADi's BLAS plugin when the build
        has one. Generated C cannot use it (:func:`~cognitive_action.compile.codegen.
        codegen_system` recompiles without).

    Raises
    ------
    CompileError
        An unknown route, linear solver or signal; a signal expression with symbols
        other than ``t`` and parameters.
    TranslationError
        An expression outside the translator's whitelist.
    """
    if route not in ("auto", "generic", "network"):
        raise CompileError(f"unknown route {route!r}", fix="use 'auto', 'generic' or 'network'")
    if linear_solver is not None and linear_solver not in NETWORK_LINEAR_SOLVERS:
        raise CompileError(f"unknown linear solver {linear_solver!r}",
                           fix=f"use one of {', '.join(NETWORK_LINEAR_SOLVERS)}")
    t0 = time.perf_counter()
    derived_system = derived(system, _FORM_OF_ROUTE[route])
    options = BuildOptions(signals=signals, linear_solver=linear_solver, name=name, blas=blas)
    out = route_for(derived_system)(derived_system, options)
    out.build_time = time.perf_counter() - t0
    out.origin = (system, {"signals": signals, "route": route, "linear_solver": linear_solver,
                           "name": name, "blas": blas})
    return out


# -- the generic route ---------------------------------------------------------------------
@register_route("euler_lagrange")
def _euler_lagrange_route(el: EulerLagrange, options: BuildOptions) -> CompiledSystem:
    return _from_euler_lagrange(el, options.signals, options.linear_solver, options.name)


@register_route("network")
def _network_route(ns: NetworkSystem, options: BuildOptions) -> CompiledSystem:
    return _from_network(ns, options.signals, options.linear_solver, options.name,
                         options.blas)


def _from_euler_lagrange(el: EulerLagrange, signals, linear_solver, name) -> CompiledSystem:
    problem = el.problem
    lsolver = linear_solver or "qr"
    if lsolver not in LINEAR_SOLVERS:
        raise CompileError(
            f"the linear solver {lsolver!r} cannot solve the mass-matrix form (an indefinite "
            "saddle-point matrix: ldl returns NaN on its zero pivots)",
            fix=f"use one of {', '.join(LINEAR_SOLVERS)}")
    vakonomic = problem.nonholonomic == "vakonomic" and bool(el.nonholonomic_multipliers)
    states = [str(s) for s in el.states]
    nq = len(el.coordinates)
    sig_exprs, constants, described = signal_values(problem, signals, ca.SX)
    pnames = parameter_names(problem, constants)
    tt, y, p = argument_symbols(ca.SX, len(states), len(pnames) + 2)
    alpha, beta = p[len(pnames)], p[len(pnames) + 1]
    values: dict[str, object] = {"t": tt}
    for i, s in enumerate(states):
        values[s] = y[i]
    bind_parameters(values, pnames, p)
    tr = Translator(values)
    bind_signals(values, sig_exprs, tr)
    tr = Translator(values)  # fresh memo now that every symbol has a value

    n_u = len(el.unknowns)
    col = {u: j for j, u in enumerate(el.unknowns)}
    rows, cols, vals = [], [], []
    for i, row in enumerate(el.mass_matrix.rows):
        for u, e in row.items():
            rows.append(i)
            cols.append(col[u])
            vals.append(tr(e))
    M = sparse_sx(len(el.mass_matrix.rows), n_u, rows, cols, vals)
    f = [tr(e) for e in el.forcing]

    # constraints, their time derivatives, Baumgarte terms on the constraint rows
    cons = problem.holonomic + problem.nonholonomic_constraints
    D = el.time_derivative()
    G, Gd = [], []
    for c in cons:
        G.append(tr(c.expr))
        Gd.append(tr(D(c.expr)) if c.kind == "holonomic" else ca.SX(0))
    for j, c in enumerate(cons):
        r = nq + j
        if c.kind == "holonomic":
            f[r] = f[r] - 2 * alpha * Gd[j] - beta * beta * G[j]
        else:
            f[r] = f[r] - alpha * G[j]
    f_vec = ca.vertcat(*f) if f else ca.SX(0, 1)
    mf = ca.Function("mass_forcing", [tt, y, p], [M, f_vec], ["t", "y", "p"], ["M", "f"])

    # MX wrapper with the linear-solve node
    tm, ym, pm = argument_symbols(ca.MX, len(states), len(pnames) + 2)
    Mm, fm = mf(tm, ym, pm)
    u = ca.solve(Mm, fm, lsolver)
    nlam = len(el.multipliers)
    parts = [ym[nq:2 * nq], u[:nq]]
    if vakonomic:
        parts.append(u[nq + nlam:])
    ydot = ca.vertcat(*parts)
    rhs = ca.Function("rhs", [tm, ym, pm], [ydot], ["t", "y", "p"], ["ydot"])
    unknowns = ca.Function("unknowns", [tm, ym, pm], [u], ["t", "y", "p"], ["u"])

    # index-1 DAE for IDAS: z = unknowns, 0 = M z - f
    z = ca.SX.sym("z", n_u)
    ode_parts = [y[nq:2 * nq], z[:nq]]
    if vakonomic:
        ode_parts.append(z[nq + nlam:])
    dae_fn = ca.Function("dae", [tt, y, z, p], [ca.vertcat(*ode_parts), ca.mtimes(M, z) - f_vec],
                         ["t", "y", "z", "p"], ["ode", "alg"])

    constraints = projection = None
    if cons:
        constraints = ca.Function("constraints", [tt, y, p], [ca.vertcat(*G), ca.vertcat(*Gd)],
                                  ["t", "y", "p"], ["G", "Gdot"])
        hol = [G[j] for j, c in enumerate(cons) if c.kind == "holonomic"]
        vel = [Gd[j] for j, c in enumerate(cons) if c.kind == "holonomic"] + \
              [G[j] for j, c in enumerate(cons) if c.kind == "nonholonomic"]
        Gh = ca.vertcat(*hol) if hol else None
        Vv = ca.vertcat(*vel) if vel else None

        def projection() -> ca.Function:
            return constraint_projection(tt, y, p, nq, Gh, Vv, lsolver)
    return CompiledSystem(
        name=name or problem.name, route="generic", states=tuple(states),
        coordinates=tuple(states[:nq]), velocities=tuple(states[nq:2 * nq]),
        multiplier_states=tuple(states[2 * nq:]), parameters=pnames, rhs=rhs,
        unknowns=unknowns, unknown_names=tuple(str(x) for x in el.unknowns),
        multipliers=tuple(str(m) for m in el.multiplier_unknowns()),
        constraints=constraints, constraint_names=tuple(c.name for c in cons),
        constraint_kinds=tuple(c.kind for c in cons), projection_builder=projection,
        dae={"function": dae_fn, "z_names": tuple(str(x) for x in el.unknowns)},
        vakonomic=vakonomic, linear_solver=lsolver, build_time=0.0, signals=described)


# -- the network route ---------------------------------------------------------------------
def _blas() -> str | None:
    """CasADi's BLAS plugin for dense MX products, when the build has one."""
    try:
        return "classic" if ca.has_blas("classic") else None
    except Exception:  # noqa: BLE001 (a missing plugin DLL raises)
        return None


_BLAS = _blas()


def _mtimes(a, b, blas: bool = True):
    """Dense MX product through BLAS when available (the reference kernel is a loop)."""
    if blas and _BLAS is not None and a.is_dense() and b.is_dense():
        return ca.mtimes(a, b, _BLAS)
    return ca.mtimes(a, b)


def _times_t(Mt, v):
    """``M v`` from ``Mᵀ`` held sparse: ``(vᵀ Mᵀ)ᵀ``, a pass over ``Mᵀ``'s columns (no
    transposed copy)."""
    return ca.mtimes(v.T, Mt).T


def _complete_block(tg: np.ndarray, sc: np.ndarray) -> tuple[list[int], list[int]] | None:
    """``(T, S)`` when the arcs are exactly ``T × S`` listed target by target with the
    sources in the same order ``S`` for every target, else ``None``."""
    if tg.size == 0:
        return None
    T = list(dict.fromkeys(tg.tolist()))
    n_s = tg.size // len(T)
    if n_s * len(T) != tg.size:
        return None
    S = sc[:n_s]
    if (len(set(S.tolist())) != n_s or not np.array_equal(tg, np.repeat(T, n_s))
            or not np.array_equal(sc, np.tile(S, len(T)))):
        return None
    return T, S.tolist()


class _NetworkGraph:
    """Eq. (8)-(10) of a network as MX operations on a symbolic state.

    The SymPy work (templates, input signals, loss gradient) is done once here; :meth:`build`
    then assembles MX expressions at any symbolic ``(t, y, p)`` (the right-hand side, the
    projection).
    """

    def __init__(self, ns: NetworkSystem, pnames: Sequence[str],
                 sig_exprs: dict[str, sp.Expr], blas: bool = True) -> None:
        problem, net = ns.problem, ns.network
        self.blas = blas
        self.ns, self.pnames, self.sig_exprs = ns, tuple(pnames), sig_exprs
        self.nu, self.tg, self.sc = len(net.order), ns.targets, ns.sources
        self.ne = len(self.tg)
        self.tg_l, self.sc_l = self.tg.tolist(), self.sc.tolist()
        # W is held as its transpose Wᵀ (rows: sources, columns: targets), whose
        # compressed-column order is the weights' order when they are listed target by
        # target (as Network lists them): no gather of the 2 n_W weight values and
        # rates, W v computed as (vᵀ Wᵀ)ᵀ, Wᵀ v directly
        perm_t = np.lexsort((self.sc, self.tg))
        self.perm_t = None if np.array_equal(perm_t, np.arange(self.ne)) else perm_t.tolist()
        self.spWt = (ca.Sparsity.triplet(self.nu, self.nu, self.sc[perm_t].tolist(),
                                         self.tg[perm_t].tolist()) if self.ne else None)
        # a complete bipartite block of arcs (targets T × sources S, listed target by
        # target: dense layers, dense recurrent nets): per-arc products u[target] x[source]
        # are the outer product x_S u_Tᵀ, read column by column
        self.block = _complete_block(self.tg, self.sc)
        self.neurons = [str(x) for x in net.neurons]
        self.inputs = [int(i) for i in ns.input_index]
        # hidden neurons grouped by template (one per activation), groups concatenated
        jets = {dot(s, k) for s in (XI, A_SYM) for k in _ORDERS}
        self.groups = [(tpl, TimeDerivative(jets)(tpl.g),
                        np.flatnonzero(ns.template_index == n).tolist())
                       for n, tpl in enumerate(ns.templates)]
        self.hidden = [i for _, _, rows in self.groups for i in rows]
        # input neurons: G = x - e(t) and its derivatives, with a derivative operator
        # restricted to the symbols of each input constraint
        self.input_exprs = []
        sig_jets = {dot(s, k) for s in problem.signals for k in _ORDERS}
        for i in self.inputs:
            c = problem.constraints[i]
            xi = net.neurons[i]
            D = TimeDerivative(sig_jets | {dot(xi, k) for k in _ORDERS})
            self.input_exprs.append((c.expr, D(c.expr), ns.input_accelerations[i]))
        acc = dot(XI, 2)
        self.mass_x = -ns.kinetic_x.coeff(acc)
        self.mass_W = -ns.kinetic_w.coeff(acc)
        self.kin_x, self.kin_w = ns.kinetic_forcing
        # f_W = (scalar coefficient) · (per-weight part): one pass over the weights
        # instead of one per factor (−m_W θ ẇ is ẇ scaled once, not three times)
        jet_w = [s for s in self.kin_w.free_symbols
                 if s.name in {XI.name, XI.name + "_dot", A_SYM.name, A_SYM.name + "_dot"}]
        self.kin_w_coeff, self.kin_w_rest = (self.kin_w.as_independent(*jet_w, as_Add=False)
                                             if jet_w else (self.kin_w, sp.Integer(1)))
        idx = {s: i for i, s in enumerate(net.neurons)}
        self.loss = [(idx[q], e) for q, e in ns.loss_gradient.items()]

    def build(self, tt, y, p) -> dict[str, ca.MX]:
        nu, ne, hidden, inputs = self.nu, self.ne, self.hidden, self.inputs
        nh = len(hidden)
        base: dict[str, object] = {"t": tt}
        bind_parameters(base, self.pnames, p)
        bind_signals(base, self.sig_exprs, Translator(base))
        # one split of y (slices would be copied again by every cast of them to W's pattern)
        x, w, xd, wd = ca.vertsplit(y, [0, nu, nu + ne, 2 * nu + ne, 2 * (nu + ne)])
        if ne:
            Wt = ca.MX(self.spWt, self.arcs(w))
            Wdt = ca.MX(self.spWt, self.arcs(wd))
            Pt = ca.DM(self.spWt, 1.0)
        else:
            Wt = Wdt = ca.MX(nu, nu)
            Pt = ca.DM(nu, nu)
        a = _times_t(Wt, x)
        wd_x = _times_t(Wdt, x)
        adot = wd_x + _times_t(Wt, xd)

        parts: list[list[ca.MX]] = [[] for _ in range(5)]
        for tpl, gdot_tpl, rows in self.groups:
            trh = Translator(base | {XI.name: take(x, rows), XI.name + "_dot": take(xd, rows),
                                     A_SYM.name: take(a, rows),
                                     A_SYM.name + "_dot": take(adot, rows)})
            for out, e in zip(parts, (tpl.g, gdot_tpl, tpl.g_xi, tpl.g_a, tpl.h0)):
                out.append(column(trh(e), len(rows)))
        g_h, gd_h, gxi_h, ga_h, h0_h = (ca.vertcat(*v) for v in parts) \
            if nh else (ca.MX(0, 1),) * 5
        vals_i = dict(base)
        for i in inputs:
            vals_i[self.neurons[i]] = x[i]
            vals_i[self.neurons[i] + "_dot"] = xd[i]
        tri = Translator(vals_i)
        g_i = [tri(e[0]) for e in self.input_exprs]
        gd_i = [tri(e[1]) for e in self.input_exprs]
        h_i = [-tri(e[2]) for e in self.input_exprs]
        order = inputs + hidden
        inv = None if order == list(range(nu)) else np.argsort(order).tolist()

        def assemble(v_in, v_h):
            full = ca.vertcat(*([column(v, 1) for v in v_in] + ([v_h] if nh else [])))
            return full if inv is None else full[inv]

        n_in = len(inputs)
        q = {"x": x, "w": w, "xd": xd, "wd": wd, "Wt": Wt, "Wdt": Wdt, "Pt": Pt, "a": a,
             "adot": adot}
        q["g_xi"] = assemble([1.0] * n_in, gxi_h)
        q["g_a"] = assemble([0.0] * n_in, ga_h)
        q["G"] = assemble(g_i, g_h)
        q["Gd"] = assemble(gd_i, gd_h)
        h_hidden = h0_h + 2 * ga_h * take(_times_t(Wdt, xd), hidden) if nh else ca.MX(0, 1)
        q["h"] = assemble(h_i, h_hidden)
        tr0 = Translator(base)
        q["m_x"], q["m_w"] = tr0(self.mass_x), tr0(self.mass_W)
        trx = Translator(base | {XI.name: x, XI.name + "_dot": xd, A_SYM.name: a,
                                 A_SYM.name + "_dot": adot})
        f_x = column(trx(self.kin_x), nu) + loss_forcing(self.loss, self.neurons, base, x, xd)
        q["f_x"] = f_x
        if ne:
            wvals = base | {XI.name: w, XI.name + "_dot": wd}
            need = {s.name for s in self.kin_w.free_symbols}
            if need & {A_SYM.name, A_SYM.name + "_dot"}:
                wvals |= {A_SYM.name: a[self.tg_l], A_SYM.name + "_dot": adot[self.tg_l]}
            coeff = tr0(self.kin_w_coeff)
            if self.kin_w_rest == dot(XI, 1):  # f_W = coeff · ẇ: F x = coeff · Ẇ x
                rest, F_x = wd, coeff * wd_x
            else:
                rest = column(Translator(wvals)(self.kin_w_rest), ne)
                F_x = coeff * _times_t(ca.MX(self.spWt, self.arcs(rest)), x)
            q["f_w_coeff"], q["f_w_rest"], q["F_x"] = coeff, rest, F_x
            q["f_w"] = coeff * rest
        else:
            q["f_w"] = ca.MX(0, 1)
            q["f_w_coeff"], q["f_w_rest"], q["F_x"] = ca.MX(0), ca.MX(0, 1), ca.MX.zeros(nu)
        return q

    def hidden_block(self, H: list[int]) -> tuple[int, int] | None:
        """``(r0, |S|)`` when the arcs are a complete block ``H × S`` with the targets in
        the order of ``H`` and ``H`` a contiguous run ``S[r0:r0 + |H|]`` of the sources:
        the weight vector, read as the ``|S| × |H|`` matrix ``Wᵀ[S, H]``, then holds
        ``Wᵀ[H, H]`` as its rows ``r0 …``."""
        if self.block is None:
            return None
        T, S = self.block
        if T != H:
            return None
        try:
            r0 = S.index(H[0])
        except ValueError:
            return None
        return (r0, len(S)) if S[r0:r0 + len(H)] == H else None

    def weight_block(self, q):
        """``j_W = diag(J_W J_Wᵀ) = g_a² ∘ (P x²)`` (``P`` the arc pattern): on a
        complete block ``T × S``, ``(P x²)_T = Σ_S x²`` for every target."""
        if self.block is not None:
            T, S = self.block
            sq = ca.sumsqr(take(q["x"], S))
            mask = np.zeros(self.nu)
            mask[T] = 1.0
            return q["g_a"] * q["g_a"] * (sq * ca.DM(mask))
        return q["g_a"] * q["g_a"] * _times_t(q["Pt"], q["x"] * q["x"])

    def arcs(self, v):
        """A vector over the arcs (weight order) in ``Wᵀ``'s nonzero order."""
        return v if self.perm_t is None else v[self.perm_t]

    def per_arc(self, u, x):
        """``u[target] · x[source]`` for every arc, in weight order (``J_Wᵀ``'s product)."""
        if self.block is not None:
            T, S = self.block
            return ca.vec(_mtimes(take(x, S), take(u, T).T, self.blas))
        return u[self.tg_l] * x[self.sc_l]

    def jacobian_products(self, q, metric_x=1.0, metric_w=1.0):
        """``J_x`` (dense) and ``J M⁻¹ Jᵀ`` with ``M⁻¹ = diag(metric_x, metric_w)``."""
        Jx = ca.densify(ca.diag(q["g_xi"]) + ca.mtimes(ca.diag(q["g_a"]), q["Wt"].T))
        jw = self.weight_block(q)
        A = _mtimes(Jx, Jx.T, self.blas) * metric_x + ca.diag(jw) * metric_w
        return Jx, A

    def transpose_times(self, q, Jx, v):
        """``Jᵀ v`` split into its neuron and weight parts."""
        vx = _mtimes(Jx.T, v, self.blas)
        vw = self.per_arc(q["g_a"] * v, q["x"]) if self.ne else ca.MX(0, 1)
        return vx, vw

    def jx_times(self, q, v):
        """``J_x v = g_ξ ∘ v + g_a ∘ (W v)`` on the sparse ``W`` (no dense ``J_x``)."""
        return q["g_xi"] * v + q["g_a"] * _times_t(q["Wt"], v)

    def jx_transpose_times(self, q, v):
        """``J_xᵀ v = g_ξ ∘ v + Wᵀ (g_a ∘ v)`` on the sparse ``W``."""
        return q["g_xi"] * v + ca.mtimes(q["Wt"], q["g_a"] * v)

    def solve_multipliers(self, q, m_x, m_w, b, lsolver: str):
        """Eq. (10), ``(J_x J_xᵀ/m_x + diag(j_W)/m_W) δ = b``, with the input constraints
        eliminated exactly.

        An input neuron's constraint ``x_i − e_i`` has the row ``J_x[i, :] = e_iᵀ`` and no
        weight part (no arc enters an input), so with ``B = J_x[H, I]``, ``L = J_x[H, H]``
        (``H`` the other neurons) the matrix is ``[[I, Bᵀ], [B, BBᵀ + LLᵀ + r D]]/m_x``.
        Its Schur complement on ``H`` is ``S = L Lᵀ/m_x + diag(j_W[H])/m_W`` — the
        ``BBᵀ`` terms cancel — so

            S δ_H = b_H − B b_I,      δ_I = m_x b_I − Bᵀ δ_H,

        a dense solve of the size of ``H`` instead of all neurons (42 instead of 106 at
        64-32-10), ``B`` applied through the sparse ``W``. ``S`` is symmetric positive
        definite when eq. (10)'s matrix is (Proposition 1), so ``ldl`` applies.
        """
        nu, I = self.nu, self.inputs
        H = [j for j in range(nu) if j not in set(I)]
        jw = self.weight_block(q)
        if not H:
            return m_x * b
        if I:  # B b_I = diag(g_a) W[H, I] b_I: only the inputs' columns of W
            Wt_ih = q["Wt"][I, H]
            b_h = take(b, H) - take(q["g_a"], H) * _times_t(Wt_ih, take(b, I))
        else:
            b_h = b
        Wt_hh = q["Wt"][H, H] if I else q["Wt"]
        g_xi_h, g_a_h = take(q["g_xi"], H), take(q["g_a"], H)
        if lsolver == SPD_KERNEL:  # L formed, dsyrk + Cholesky in NumPy's OpenBLAS
            block = self.hidden_block(H)
            if block is not None:  # Wᵀ[H, H] is rows r0.. of the weights' block: no copy
                r0, n_s = block
                d_h = spd_solve(ca.reshape(q["w"], n_s, len(H)), g_a_h, g_xi_h,
                                take(jw, H) / m_w, 1 / m_x, b_h, transposed=True,
                                rows=(r0, n_s))
            else:
                d_h = spd_solve(Wt_hh, g_a_h, g_xi_h, take(jw, H) / m_w, 1 / m_x, b_h,
                                transposed=True)
        else:
            L = ca.densify(ca.diag(g_xi_h) + ca.mtimes(ca.diag(g_a_h), Wt_hh.T))
            S = _mtimes(L, L.T, self.blas) / m_x + ca.diag(take(jw, H)) / m_w
            d_h = ca.solve(S, b_h, lsolver)
        if not I:
            return d_h
        d_i = m_x * take(b, I) - ca.mtimes(Wt_ih, g_a_h * d_h)
        delta = ca.MX.zeros(nu)
        delta[I] = d_i
        delta[H] = d_h
        return delta


#: Temporary elements (output points × neurons, or × arcs on a general graph) of one
#: block of :class:`_TrajectoryConstraints`: the net inputs and the constraint values of a
#: block stay this small whatever the number of points (the states are read in place).
_DRIFT_BLOCK = 50_000

#: Weights (per run of points) that :class:`_TrajectoryConstraints` keeps in the cache
#: between the products ``W x`` and ``W ẋ`` (1 MiB).
_CACHED_WEIGHTS = 131_072


def _index(idx: list[int]) -> slice | np.ndarray:
    """A slice for a contiguous run of indices (a view in NumPy), else an index array."""
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return slice(idx[0], idx[0] + len(idx))
    return np.asarray(idx)


class _TrajectoryConstraints:
    """``G`` and ``Ġ`` of a network at ``K`` output points at once (the drift report).

    The net inputs ``a = W x`` and ``ȧ = Ẇ x + W ẋ`` of all points of a block are batched
    products in NumPy, on the weights read in place from the states: ``np.matmul`` on the
    ``(K, |T|, |S|)`` view of a complete block of arcs ``T × S`` (dense layers, dense
    recurrent nets), per-arc products summed target by target (``np.add.reduceat``)
    otherwise. The rest — the activation templates ``G = g(ξ, a)``, their time derivative,
    and the input constraints ``x_i − e_i(t)`` with theirs — is one CasADi function of
    ``(neurons × K)`` matrices built by the same :class:`Translator` from the same SymPy
    templates as :meth:`_NetworkGraph.build`, so the same formulas applied elementwise.
    The sums of ``W x`` run in BLAS's order instead of CasADi's, so the values equal
    ``CompiledSystem.constraints`` point by point to round-off (not bit for bit).

    Called as ``(times (n_t,), Y (n_t, n_y), p, rates=True) → (G, Ġ or None)``, each
    ``(n_t, n_neurons)``.
    """

    def __init__(self, graph: _NetworkGraph, n_p: int) -> None:
        self.graph, self.n_p = graph, n_p
        nu, ne = graph.nu, graph.ne
        self.slices = (slice(0, nu), slice(nu, nu + ne), slice(nu + ne, 2 * nu + ne),
                       slice(2 * nu + ne, 2 * (nu + ne)))
        self.targets = np.unique(graph.tg)
        if graph.block is not None:
            T, S = graph.block
            self.T, self.S = _index(T), _index(S)
            self.shape = (len(T), len(S))
            width = nu
        elif ne:
            order = np.lexsort((graph.sc, graph.tg))  # target by target
            self.order = None if np.array_equal(order, np.arange(ne)) else order
            self.src = graph.sc[order]
            tg = graph.tg[order]
            self.starts = np.flatnonzero(np.r_[True, tg[1:] != tg[:-1]])
            width = max(nu, ne)
        else:
            width = nu
        self.K = max(1, _DRIFT_BLOCK // max(width, 1))
        self._fns: dict[tuple[int, bool], ca.Function] = {}

    # -- the batched products ------------------------------------------------------------
    def _times(self, Wb: np.ndarray, X: np.ndarray, out: np.ndarray, add: bool) -> None:
        """``out = W X`` (``add``: ``out += W X``) on the targets for a block:
        ``Wb (K, n_arcs)`` (a view of the states), ``X (K, n_neurons)``."""
        g = self.graph
        if g.block is not None:
            Wm = Wb.reshape(Wb.shape[0], *self.shape)
            v = np.matmul(Wm, X[:, self.S, None])[..., 0]
            idx = self.T
        elif g.ne:
            Wa = Wb if self.order is None else Wb[:, self.order]
            v = np.add.reduceat(Wa * X[:, self.src], self.starts, axis=1)
            idx = self.targets
        else:
            return
        if add:
            out[:, idx] += v
        else:
            out[:, idx] = v

    def _block_rates(self, Wb, Wdb, X, Xd, A, Ad) -> None:
        """``A = W X``, ``Ad = Ẇ X + W Ẋ`` on a complete block, by runs of points whose
        weights stay in the cache between ``W X`` and ``W Ẋ`` (the weights are most of
        the states: read from memory once instead of twice)."""
        K = Wb.shape[0]
        nT = self.shape[0]
        step = max(1, _CACHED_WEIGHTS // max(Wb.shape[1], 1))
        a, ad = np.empty((K, nT, 1)), np.empty((K, nT, 1))
        tmp = np.empty((min(step, K), nT, 1))
        Xs, Xds = X[:, self.S, None], Xd[:, self.S, None]
        for s in range(0, K, step):
            e = min(s + step, K)
            Wm = Wb[s:e].reshape(e - s, *self.shape)
            np.matmul(Wm, Xs[s:e], out=a[s:e])
            np.matmul(Wm, Xds[s:e], out=ad[s:e])
            np.matmul(Wdb[s:e].reshape(e - s, *self.shape), Xs[s:e], out=tmp[:e - s])
            ad[s:e] += tmp[:e - s]
        A[:, self.T] = a[..., 0]
        Ad[:, self.T] = ad[..., 0]

    # -- the elementwise part ------------------------------------------------------------
    def function(self, K: int, rates: bool) -> ca.Function:
        """The CasADi function ``(t (1×K), X, A[, Ẋ, Ȧ] (n×K), p) → G[, Ġ] (n×K)``."""
        key = (K, rates)
        fn = self._fns.get(key)
        if fn is not None:
            return fn
        g = self.graph
        nu = g.nu
        T = ca.MX.sym("t", 1, K)
        p = ca.MX.sym("p", self.n_p)
        X, A = ca.MX.sym("x", nu, K), ca.MX.sym("a", nu, K)
        Xd, Ad = ca.MX.sym("xd", nu, K), ca.MX.sym("ad", nu, K)

        def base(r: int) -> dict[str, object]:
            vals: dict[str, object] = {"t": T if r == 1 else ca.repmat(T, r, 1)}
            bind_parameters(vals, g.pnames, p)
            bind_signals(vals, g.sig_exprs, Translator(vals))
            return vals

        def block(v, r: int):
            if isinstance(v, (int, float)):
                return ca.MX(ca.DM.ones(r, K) * float(v))
            if v.shape == (1, 1):
                return ca.repmat(v, r, K)
            if v.shape[0] == 1 and r != 1:
                return ca.repmat(v, r, 1)
            return v

        def rows_of(M, rows):
            if rows == list(range(rows[0], rows[0] + len(rows))):
                return M[rows[0]:rows[0] + len(rows), :]
            return M[rows, :]

        G_parts, Gd_parts = [], []
        base1 = base(1)
        for i, (e_g, e_gd, _) in zip(g.inputs, g.input_exprs):
            vals = dict(base1)
            vals[g.neurons[i]], vals[g.neurons[i] + "_dot"] = X[i, :], Xd[i, :]
            tri = Translator(vals)
            G_parts.append(block(tri(e_g), 1))
            if rates:
                Gd_parts.append(block(tri(e_gd), 1))
        for tpl, gdot_tpl, rows in g.groups:
            if not rows:
                continue
            r = len(rows)
            trh = Translator(base(r) | {XI.name: rows_of(X, rows),
                                        XI.name + "_dot": rows_of(Xd, rows),
                                        A_SYM.name: rows_of(A, rows),
                                        A_SYM.name + "_dot": rows_of(Ad, rows)})
            G_parts.append(block(trh(tpl.g), r))
            if rates:
                Gd_parts.append(block(trh(gdot_tpl), r))
        order = g.inputs + g.hidden
        inv = None if order == list(range(nu)) else np.argsort(order).tolist()

        def assemble(parts):
            full = ca.vertcat(*parts) if parts else ca.MX(0, K)
            return full if inv is None else full[inv, :]

        if rates:
            fn = ca.Function("trajectory_constraints", [T, X, A, Xd, Ad, p],
                             [assemble(G_parts), assemble(Gd_parts)])
        else:
            fn = ca.Function("trajectory_G", [T, X, A, p], [assemble(G_parts)])
        self._fns[key] = fn
        return fn

    def prepare(self, n_t: int, rates: bool = True) -> None:
        """Build the functions a call over ``n_t`` points uses (full and last block)."""
        for K in {min(self.K, n_t), n_t % self.K or min(self.K, n_t)}:
            self.function(K, rates)

    def __call__(self, times: np.ndarray, Y: np.ndarray, p: np.ndarray, rates: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        nu = self.graph.nu
        Y = np.ascontiguousarray(Y, dtype=float)
        tv = np.ascontiguousarray(times, dtype=float).reshape(-1)
        pb = np.ascontiguousarray(np.asarray(p, dtype=float).reshape(-1))
        n_t = tv.size
        sx, sw, sxd, swd = self.slices
        G = np.empty((n_t, nu))
        Gd = np.empty((n_t, nu)) if rates else None
        bufs: dict[int, tuple] = {}
        for s in range(0, n_t, self.K):
            e = min(s + self.K, n_t)
            K = e - s
            if K not in bufs:
                bufs[K] = self.function(K, rates).buffer()
            buf, evaluate = bufs[K]
            Yb = Y[s:e]
            X = np.ascontiguousarray(Yb[:, sx])
            A = np.zeros((K, nu))
            if not (rates and self.graph.block is not None):
                self._times(Yb[:, sw], X, A, False)
            args = [tv[s:e], X, A]
            if rates:
                Xd = np.ascontiguousarray(Yb[:, sxd])
                Ad = np.zeros((K, nu))
                if self.graph.block is not None:  # W read once for W x and W ẋ
                    self._block_rates(Yb[:, sw], Yb[:, swd], X, Xd, A, Ad)
                else:
                    self._times(Yb[:, swd], X, Ad, False)
                    self._times(Yb[:, sw], Xd, Ad, True)
                args += [Xd, Ad]
            args.append(pb)
            for i, a in enumerate(args):
                buf.set_arg(i, memoryview(a))
            buf.set_res(0, memoryview(G[s:e]))
            if rates:
                buf.set_res(1, memoryview(Gd[s:e]))
            evaluate()
        return G, Gd


#: Non-input neurons (the size of eq. (10)'s dense solve, the inputs eliminated) from
#: which the network route solves eq. (10) with LAPACK's LU by default: the
#: dense factorization beats the sparse LDLᵀ there (measured per right-hand side of the
#: dense learning system: docs/performance.md); below, LDLᵀ is as fast and its C is
#: self-contained.
_LAPACK_FROM = 100

#: Non-input neurons from which the network route forms and solves eq. (10)'s Schur
#: matrix with NumPy's OpenBLAS (:data:`~cognitive_action.compile.dense_kernels.SPD_KERNEL`:
#: ``dsyrk`` + Cholesky in a CasADi Callback) when run in the VM (``blas=True``). The
#: Callback has a fixed cost per call (Python), so per right-hand side of the dense
#: learning system it breaks even with ``ldl`` at about 40 non-input neurons; the
#: threshold sits above the break-even (measurements: docs/compile.md,
#: ``benchmarks/bench_rhs_kernel.py``).
_KERNEL_FROM = 45


def _casadi_solver(n_neurons: int, blas: bool) -> str:
    """The CasADi ``Linsol`` plugin for eq. (10): ``lapacklu`` for large nets run in the
    VM, ``ldl`` otherwise (and whenever C is generated: ``blas=False``)."""
    try:
        lapack = ca.has_linsol("lapacklu")
    except Exception:  # noqa: BLE001 (a missing plugin library raises)
        lapack = False
    return "lapacklu" if blas and lapack and n_neurons >= _LAPACK_FROM else "ldl"


def _network_solver(n_neurons: int, blas: bool) -> str:
    """The default solver of eq. (10) for ``n_neurons`` non-input neurons: the NumPy
    kernel from :data:`_KERNEL_FROM` in the VM, else :func:`_casadi_solver`."""
    if blas and n_neurons >= _KERNEL_FROM:
        return SPD_KERNEL
    return _casadi_solver(n_neurons, blas)


def _from_network(ns: NetworkSystem, signals, linear_solver, name, blas: bool = True
                  ) -> CompiledSystem:
    problem = ns.problem
    # the dense solve is over the non-input neurons (inputs are eliminated exactly)
    lsolver = linear_solver or _network_solver(len(ns.network.order) - len(ns.input_index),
                                               blas)
    sig_exprs, constants, described = signal_values(problem, signals, ca.MX)
    pnames = parameter_names(problem, constants)
    graph = _NetworkGraph(ns, pnames, sig_exprs, blas)
    nu, ne = graph.nu, graph.ne
    coords = graph.neurons + [w.name for w in ns.network.weights]  # not str(): slow at 40k
    states = coords + [c + "_dot" for c in coords]
    tt, y, p = argument_symbols(ca.MX, len(states), len(pnames) + 2)
    alpha, beta = p[len(pnames)], p[len(pnames) + 1]
    q = graph.build(tt, y, p)
    m_x, m_w = q["m_x"], q["m_w"]
    h_eff = q["h"] + 2 * alpha * q["Gd"] + beta * beta * q["G"]
    # eq. (10): (J_x J_xᵀ/m_x + J_W J_Wᵀ/m_W) δ = J_x f_x/m_x + J_W f_w/m_W + h, solved
    # with the input constraints eliminated (_NetworkGraph.solve_multipliers)
    b = graph.jx_times(q, q["f_x"]) / m_x + q["g_a"] * q["F_x"] / m_w + h_eff
    delta = graph.solve_multipliers(q, m_x, m_w, b, lsolver)
    vx = graph.jx_transpose_times(q, delta)
    # ẅ = (f_W − J_Wᵀ δ)/m_W with the scalings done on neuron-sized vectors
    wdd = ((q["f_w_coeff"] / m_w) * q["f_w_rest"] - graph.per_arc(q["g_a"] * delta / m_w,
                                                                   q["x"])) if ne \
        else ca.MX(0, 1)
    Jx, A_mat = graph.jacobian_products(q, 1 / m_x, 1 / m_w)  # the IDAS form below
    xdd = (q["f_x"] - vx) / m_x
    ydot = ca.vertcat(q["xd"], q["wd"], xdd, wdd)
    rhs = ca.Function("rhs", [tt, y, p], [ydot], ["t", "y", "p"], ["ydot"])
    unknown_names = tuple(c + "_ddot" for c in coords) + tuple(str(m) for m in ns.multipliers)
    unknowns = ca.Function("unknowns", [tt, y, p], [ca.vertcat(xdd, wdd, delta)],
                           ["t", "y", "p"], ["u"])
    constraints = ca.Function("constraints", [tt, y, p], [q["G"], q["Gd"]], ["t", "y", "p"],
                              ["G", "Gdot"])
    # index-1 DAE for IDAS: z = δ, 0 = A δ - b
    z = ca.MX.sym("z", nu)
    zx, zw = graph.transpose_times(q, Jx, z)
    dae_fn = ca.Function("dae", [tt, y, z, p],
                         [ca.vertcat(q["xd"], q["wd"], (q["f_x"] - zx) / m_x,
                                     (q["f_w"] - zw) / m_w), _mtimes(A_mat, z, blas) - b],
                         ["t", "y", "z", "p"], ["ode", "alg"])
    n_acc = nu + ne

    def projection() -> ca.Function:
        # the projection's A is formed whole (inputs included): a CasADi plugin solves it
        psolver = _casadi_solver(nu, blas) if lsolver == SPD_KERNEL else lsolver
        return _network_projection(graph, len(states), len(pnames) + 2, psolver)

    return CompiledSystem(
        name=name or problem.name, route="network", states=tuple(states),
        coordinates=tuple(coords), velocities=tuple(states[len(coords):]),
        multiplier_states=(), parameters=pnames, rhs=rhs, unknowns=unknowns,
        unknown_names=unknown_names, constraints=constraints,
        multipliers=tuple(str(m) for m in ns.multipliers),
        constraint_names=tuple(ns.names), constraint_kinds=("holonomic",) * nu,
        projection_builder=projection,
        dae={"function": dae_fn, "z_names": unknown_names[n_acc:], "z_offset": n_acc},
        vakonomic=False, linear_solver=lsolver, build_time=0.0, signals=described,
        trajectory_constraints=_TrajectoryConstraints(graph, len(pnames) + 2))


def _network_projection(graph: _NetworkGraph, n_y: int, n_p: int, lsolver: str
                        ) -> ca.Function:
    """Projection of a network state onto ``G = 0``, ``Ġ = 0`` with the structured ``J``."""
    ts, ys, ps = ca.MX.sym("t"), ca.MX.sym("y", n_y), ca.MX.sym("p", n_p)
    qs = graph.build(ts, ys, ps)
    Jx, A = graph.jacobian_products(qs)
    parts = ca.Function("parts", [ts, ys, ps], [qs["G"], qs["Gd"], Jx, A, qs["g_a"]])
    nq = graph.nu + graph.ne
    tm, ym, pm = ca.MX.sym("t"), ca.MX.sym("y", n_y), ca.MX.sym("p", n_p)
    cur = ym
    for k in range(7):  # five Gauss-Newton steps on G, then two on Ġ (linear in q̇)
        G, Gd, Jx_k, A_k, ga_k = parts(tm, cur, pm)
        lam = ca.solve(A_k, G if k < 5 else Gd, lsolver)
        vx, vw = graph.transpose_times({"g_a": ga_k, "x": cur[:graph.nu]}, Jx_k, lam)
        step = ca.vertcat(vx, vw)
        cur = ca.vertcat(cur[:nq] - step, cur[nq:]) if k < 5 else \
            ca.vertcat(cur[:nq], cur[nq:] - step)
    return ca.Function("projection", [tm, ym, pm], [cur], ["t", "y", "p"], ["y_projected"])


# -- messages ------------------------------------------------------------------------------
