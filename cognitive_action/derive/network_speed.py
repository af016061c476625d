"""Per-neuron templates for networks with a diffusion speed ``c`` (eq. 18-20).

With a finite speed the neuron constraint (19) is non-holonomic,

    N^j = g(t, x_j, ẋ_j, a_j) = ẋ_j / c + x_j − σ(a_j),      a_j = Σ_k w_jk x_k,

and under the paper's (vakonomic) multiplier rule its multiplier ``μ_j`` becomes a state
with dynamics of its own, eq. (20). Differentiating the template ``g(t, ξ, ξ̇, a)`` once
gives every row of the derived system (eq. 8-9 with the non-holonomic terms of
:func:`~cognitive_action.derive.euler_lagrange.euler_lagrange`), by the chain rule
through the bilinear ``a_j``:

    N^j_{x_k} = g_ξ [k = j] + g_a w_jk,    N^j_{w_jk} = g_a x_k,    N^j_{ẋ_j} = g_ξ̇,
    Ṅ^j = g_ξ̇ ẍ_j + h¹(t, ξ, ξ̇, a, ȧ),      ȧ_j = Σ_k ẇ_jk x_k + w_jk ẋ_k,

with ``h¹ = dg/dt`` at ``ξ̈ = 0``. When ``g_ξ̇`` is constant in time (``1/c``) the rows
of ``mass_matrix · unknowns = forcing`` are (``ρ = ϖ̇/ϖ``, multipliers per unit ``ϖ``)

- hidden neuron ``j`` (constraint row): ``g_ξ̇ ẍ_j = −h¹_j`` — explicit in ``ẍ_j``;
- hidden neuron ``q`` (coordinate row): ``m_x ẍ_q − g_ξ̇ μ̇_q = f_q`` with
  ``f_q = K_x(q) + L_F(q) − g_ξ μ_q − (Wᵀ (g_a ∘ μ))_q + ρ g_ξ̇ μ_q``, which gives
  ``μ̇_q = (m_x ẍ_q − f_q)/g_ξ̇`` (eq. 20; for ``m_x → 0``, ``c⁻¹(μ̇ + θμ) = Tμ + V_x``
  with ``T = I − (σ'W)ᵀ``);
- input neuron ``i`` (``x_i − e_i(t)``, holonomic): ``ẍ_i = ë_i`` and
  ``δ_i = f_i − m_x ẍ_i``;
- weight ``w_jk``: ``m_W ẅ_jk = K_W(w_jk) − (g_a μ)_j x_k``.

No row is coupled to another through the unknowns, so no linear solve is needed: the
compiled system (:func:`~cognitive_action.compile.network_speed.compile_speed_network`)
is a few MX matrix-vector products over the sparse weight matrix.

:func:`derive_speed_network` does the symbolic work on templates only (its cost does
not grow with the size of the network).

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.declare.network import chain
>>> c = sp.Symbol("c", positive=True)
>>> system = derive_speed_network(chain(3, speed=c).problem(parameters=[c]))
>>> system.template.g_xidot, system.template.h1
(1/c, -a_dot*(1 - tanh(a)**2) + xi_dot)
>>> [str(m) for m in system.multipliers], [str(m) for m in system.multiplier_states]
(['lambda_G1'], ['mu_G2', 'mu_G3'])
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind, RoleMap, multiplier_name
from cognitive_action.declare.symbols import MAX_ORDER, dot, symbol
from cognitive_action.derive.calculus import Differentiator, TimeDerivative
from cognitive_action.derive.contract import DerivedSystem, multiplier_roles
from cognitive_action.derive.network import XI, A, class_residual, second_derivative_of_input
from cognitive_action.derive.sparse import Walker
from cognitive_action.errors import DerivationError

__all__ = ["SpeedNeuronTemplate", "SpeedNetworkSystem", "speed_neuron_template",
           "derive_speed_network", "is_speed_network_problem"]


@dataclass(frozen=True)
class SpeedNeuronTemplate:
    """Derivatives of one non-holonomic neuron ``g(t, ξ, ξ̇, a)`` (eq. 19).

    Attributes
    ----------
    g
        The template constraint ``ξ̇/c + ξ − σ(a)``.
    g_xidot, g_xi, g_a
        ``∂g/∂ξ̇`` (``1/c``), ``∂g/∂ξ`` and ``∂g/∂a``.
    h1
        ``dg/dt`` at ``ξ̈ = 0``: a function of ``t, ξ, ξ̇, a, ȧ`` (``Ṅ = g_ξ̇ ξ̈ + h¹``).
    """

    g: sp.Expr
    g_xidot: sp.Expr
    g_xi: sp.Expr
    g_a: sp.Expr
    h1: sp.Expr


def speed_neuron_template(net: Network) -> SpeedNeuronTemplate:
    """Differentiate the network's neuron template (eq. 19) once.

    Raises
    ------
    DerivationError
        The network has no speed, or ``g_ξ̇`` is not constant in time (then ``μ g_ξ̇``
        has a time derivative of its own, which the template rows do not carry).
    """
    if net.speed is None:
        raise DerivationError("the network has no diffusion speed: its neurons are "
                              "holonomic (eq. 4)",
                              fix="use derive.network.derive_network for eq. (4) neurons")
    g = net.neuron_constraint(XI, A)
    grad = Differentiator([XI, dot(XI), A]).gradient(g)
    jets = {dot(s, k) for s in (XI, A) for k in range(MAX_ORDER + 1)}
    D = TimeDerivative(jets)
    g_xidot = grad.get(dot(XI), sp.S.Zero)
    if g_xidot == 0 or D(g_xidot) != 0:
        raise DerivationError(
            f"the neuron template's coefficient of the velocity, {g_xidot}, is zero or "
            "changes in time",
            fix="the template route needs eq. (19) with a constant speed c; use "
            "compile_system(problem, route='generic')")
    h1 = Walker([dot(XI, 2)]).zero_out(D(g))
    return SpeedNeuronTemplate(g=g, g_xidot=g_xidot, g_xi=grad.get(XI, sp.S.Zero),
                               g_a=grad.get(A, sp.S.Zero), h1=h1)


def is_speed_network_problem(problem: Problem) -> bool:
    """Whether ``problem`` was built by ``Network.problem`` with a speed ``c`` (eq. 19)
    and uses the vakonomic rule (multipliers as states, eq. 20).

    Cheap: it looks at the problem's network and rule only. :func:`derive_speed_network`
    checks the rest (unchanged constraints and coordinates, one mass per class, a loss
    of the outputs) and raises :class:`~cognitive_action.errors.DerivationError`
    otherwise.
    """
    net = problem.network
    return isinstance(net, Network) and net.speed is not None and \
        problem.nonholonomic == "vakonomic"


class SpeedNetworkSystem(DerivedSystem):
    """The derived system of a speed-``c`` network problem, kept as templates plus graph.

    Build it with :func:`derive_speed_network`. It holds what
    :class:`~cognitive_action.derive.network.NetworkSystem` holds (``problem``,
    ``network``, ``kinetic_x``, ``kinetic_w``, ``rate``, ``loss_gradient``, ``targets``,
    ``sources``), with the hidden-neuron :class:`SpeedNeuronTemplate` as ``template``,
    the masses ``mass_x``, ``mass_W`` read as the coefficients of ``ξ̈`` in the kinetic
    residuals, and:

    Attributes
    ----------
    multipliers
        Multipliers of the input constraints (``λ``, or ``δ = λ/ϖ``), in input order.
    multiplier_states
        Multipliers ``μ`` (or ``ν = μ/ϖ``) of the neuron constraints (eq. 19), in
        network order of the non-input neurons: the states of eq. (20).
    input_index, hidden_index
        Positions of input and non-input neurons in network order.
    input_accelerations
        ``ë_i`` of each input constraint, by position.
    """

    def __init__(self, problem: Problem) -> None:
        net = problem.network
        if not isinstance(net, Network):
            raise DerivationError("not a network problem",
                                  fix="build it with Network(..., speed=c).problem(); "
                                  "otherwise use euler_lagrange")
        if net.speed is None:
            raise DerivationError("the network has no diffusion speed (eq. 4 neurons)",
                                  fix="use derive.network.derive_network, or "
                                  "compile_system(problem, route='network')")
        if problem.nonholonomic != "vakonomic":
            raise DerivationError(
                f"the template route implements the vakonomic rule (eq. 20), not "
                f"{problem.nonholonomic!r}",
                fix="use compile_system(problem, route='generic') for the "
                "Lagrange-d'Alembert rule")
        xs, ws = net.neurons, net.weights
        if tuple(problem.coordinates) != xs + ws:
            raise DerivationError("the problem's coordinates were changed after it was "
                                  "built from its network",
                                  fix="use compile_system(problem, route='generic') for "
                                  "modified problems")
        if not net.is_uniform:
            raise DerivationError("the speed-c template route takes one activation for the "
                                  "whole network",
                                  fix="use compile_system(problem, route='generic') (the "
                                  "default route falls back to it)")
        self.template = speed_neuron_template(net)
        _check_constraints(problem, net, self.template)
        action = problem.action
        F = action.lagrangian
        if _depends_on_weights_or_velocities(F, problem, ws):
            raise DerivationError("F depends on weights or velocities",
                                  fix="use compile_system(problem, route='generic') for "
                                  "such Lagrangians")
        mass_x = action.masses[xs[0]]
        mass_w = action.masses[ws[0]] if ws else sp.S.One
        if any(_differs(action.masses[x], mass_x) for x in xs) or \
                any(_differs(action.masses[w], mass_w) for w in ws):
            raise DerivationError("masses differ within neurons or weights",
                                  fix="use compile_system(problem, route='generic') for "
                                  "per-coordinate masses")
        self.problem, self.network = problem, net
        weight = action.weight
        self.kinetic_x, self.rate = class_residual(mass_x, weight)
        self.kinetic_w, _ = class_residual(mass_w, weight)
        self.mass_x = -self.kinetic_x.coeff(dot(XI, 2))
        self.mass_W = -self.kinetic_w.coeff(dot(XI, 2))
        loss = Differentiator(xs).gradient(F)
        if weight != 1:
            loss = {q: sp.Add(*(a_ / weight for a_ in sp.Add.make_args(v)))
                    for q, v in loss.items()}
        self.loss_gradient = loss
        weighted = weight != 1
        self.multipliers = tuple(symbol(multiplier_name(c.name, holonomic=True,
                                                        weighted=weighted))
                                 for c in problem.holonomic)
        self.multiplier_states = tuple(symbol(multiplier_name(c.name, holonomic=False,
                                                              weighted=weighted))
                                       for c in problem.nonholonomic_constraints)
        idx = {n: i for i, n in enumerate(net.order)}
        in_set = set(net.inputs)
        self.input_index = np.array([idx[i] for i in net.inputs], dtype=np.int64)
        self.hidden_index = np.array([idx[j] for j in net.order if j not in in_set],
                                     dtype=np.int64)
        edges = [(idx[j], idx[k]) for (j, k) in net.w]
        self.targets = np.array([e[0] for e in edges], dtype=np.int64).reshape(-1)
        self.sources = np.array([e[1] for e in edges], dtype=np.int64).reshape(-1)
        self.input_accelerations = {int(i): second_derivative_of_input(problem, int(i))
                                    for i in self.input_index}

    form = "speed_network"

    @functools.cached_property
    def roles(self) -> RoleMap:
        """The problem's roles and those of the multipliers ``λ`` (inputs) and ``μ``
        (neurons, eq. 19-20)."""
        p = self.problem
        return p.roles.merged(multiplier_roles(
            self.multipliers, tuple(c.name for c in p.holonomic), self.multiplier_states,
            tuple(c.name for c in p.nonholonomic_constraints)))

    @property
    def states(self) -> tuple[sp.Symbol, ...]:
        """``x, W``, their velocities, then the multiplier states ``μ`` of eq. (20)."""
        coords = self.network.neurons + self.network.weights
        return coords + tuple(dot(q) for q in coords) + self.multiplier_states

    @property
    def unknowns(self) -> tuple[sp.Symbol, ...]:
        """``ẍ, Ẅ``, the input multipliers, then ``μ̇``."""
        coords = self.network.neurons + self.network.weights
        return (tuple(dot(q, 2) for q in coords) + self.multipliers
                + tuple(dot(m) for m in self.multiplier_states))
    @property
    def mass_w(self) -> sp.Expr:
        """Deprecated alias of :attr:`mass_W` (one name, as in ``Network.problem(mass_W=)``)."""
        warnings.warn("mass_w is now mass_W", DeprecationWarning, stacklevel=2)
        return self.mass_W

    def __repr__(self) -> str:
        return (f"SpeedNetworkSystem({len(self.network.order)} neurons, "
                f"{len(self.network.weights)} weights, c = {self.network.speed})")

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """Constraint names in the generic route's order: inputs (holonomic), then the
        neurons of eq. (19)."""
        return tuple(c.name for c in self.problem.holonomic +
                     self.problem.nonholonomic_constraints)


def _check_constraints(problem: Problem, net: Network, tpl: SpeedNeuronTemplate) -> None:
    """The problem's constraints must be the network's own: eq. (19) per non-input
    neuron and ``x_i − e_i`` per input (the input signals may be expressions of ``t``).

    Each neuron's constraint is compared with the template ``g(ξ, ξ̇, a)`` at
    ``ξ = x_j`` after its net input ``a_j`` (found as the sum of the products
    ``w_jk x_k`` over the arcs into ``j``) is replaced by ``a``: linear in the arcs,
    without rebuilding ``Σ_k w_jk x_k`` (or ``−a_j``, as in the logistic's
    ``exp(−a)``). When neither is a subexpression (SymPy merged ``a_j`` into a larger
    sum, e.g. for the identity), the constraint is compared with the network's own
    rebuilt one.
    """
    got = problem.constraints
    names = [c.name for c in got]
    want = [f"G{j}" for j in net.order]
    if names != want:
        extra = [n for n in names if n not in want]
        what = (f"constraint(s) {', '.join(extra)} not made by the network" if extra else
                f"constraints {names} instead of the network's {want}")
        raise DerivationError(
            f"{what}: the per-neuron template route needs exactly the constraints of eq. "
            "(19) (non-input neurons) and x_i - e_i(t) (inputs)",
            fix="compile_system(problem, route='generic') derives modified problems "
            "entry by entry")
    inputs = set(net.inputs)
    coords = set(problem.coordinates)
    for j, c in zip(net.order, got):
        xj = net.x[j]
        if j in inputs:
            if c.kind != "holonomic" or c.expr.free_symbols & coords != {xj}:
                raise DerivationError(
                    f"input constraint {c.name} = {c.expr} is not x_i - e_i(t)",
                    fix="compile_system(problem, route='generic') for modified problems")
            continue
        pairs = {frozenset((net.w[j, k], net.x[k])) for k in net.graph.predecessors(j)}
        found = _find_net_input(c.expr, pairs)
        want_g = tpl.g.xreplace({XI: xj, dot(XI): dot(xj)})
        if (found is None or c.expr.xreplace({found[0]: found[1] * A}) != want_g) and \
                c.expr != net.neuron_constraint(xj, net.net_input(j)):
            # (the second comparison rebuilds a_j: for activations whose canonical form
            # absorbs a_j into a larger sum, e.g. the identity)
            raise DerivationError(
                f"constraint {c.name} = {_short(c.expr)} is not the network's neuron "
                f"{_short(want_g)} with a = sum of w{j}_k*x_k over the arcs into {j} "
                "(eq. 19)",
                fix="compile_system(problem, route='generic') for modified problems")


def _differs(a: sp.Expr, b: sp.Expr) -> bool:
    """``a != b``, skipping the comparison for the one shared mass object."""
    return a is not b and a != b


def _depends_on_weights_or_velocities(F: sp.Expr, problem: Problem, ws) -> bool:
    """Whether ``F`` has a weight, or a velocity or acceleration of a coordinate, among
    its (few) free symbols (by their roles)."""
    wset = set(ws)
    for s in F.free_symbols:
        role = problem.roles.get(s)
        if s in wset or (role is not None and role.kind == RoleKind.COORDINATE
                         and role.order >= 1):
            return True
    return False


def _find_net_input(expr: sp.Expr, pairs: set[frozenset]) -> tuple[sp.Expr, int] | None:
    """The subexpression ``κ Σ_k w_jk x_k`` (``κ = ±1``) of ``expr`` and ``κ``, given
    the terms as the factor pairs ``{w_jk, x_k}`` (compared as sets: no product is
    built). ``κ = −1`` covers activations written through ``exp(−a)`` (logistic)."""
    minus = sp.S.NegativeOne

    def pair(term: sp.Expr) -> tuple[frozenset, int]:
        args = term.args
        if term.is_Mul and len(args) == 3 and args[0] is minus:
            return frozenset(args[1:]), -1
        return frozenset(args), 1

    for node in sp.preorder_traversal(expr):
        if node.is_Add and len(node.args) == len(pairs):
            got = [pair(a) for a in node.args]
            signs = {k for _, k in got}
            if len(signs) == 1 and {f for f, _ in got} == pairs:
                return node, signs.pop()
        elif len(pairs) == 1 and node.is_Mul:
            f, k = pair(node)
            if f in pairs and len(f) == 2:
                return node, k
    return None


def _short(expr: sp.Expr, n: int = 120) -> str:
    s = str(expr)
    return s if len(s) <= n else s[:n] + " …"




def derive_speed_network(problem: Problem) -> SpeedNetworkSystem:
    """Derive the vakonomic equations (8)-(9), (20) of a speed-``c`` network by templates.

    Parameters
    ----------
    problem
        Made by :meth:`cognitive_action.declare.network.Network.problem` on a
        ``Network(..., speed=c)`` (neurons of eq. 19), vakonomic rule.

    Returns
    -------
    SpeedNetworkSystem
        Templates plus the graph; compile with
        :func:`~cognitive_action.compile.network_speed.compile_speed_network`.

    Raises
    ------
    DerivationError
        Not such a problem, or one modified after it was built (other constraints or
        coordinates, per-coordinate masses, a loss of weights or velocities, the
        d'Alembert rule); the message says what and points to the generic route.
    """
    return SpeedNetworkSystem(problem)

