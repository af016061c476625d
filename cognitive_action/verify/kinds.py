"""Which backprop reference a problem has, and a random state at which to judge a law.

The numeric backprop check compares a learning law with an independent gradient. Which
gradient depends on the kind of problem, read off ``problem.network``, its graph
(``network.is_feedforward``), the roles of the symbols in ``F`` and the constraints
(never from names):

============================  ==============================================  ==========
kind                          reference                                       derived by
============================  ==============================================  ==========
feedforward                   AD of the forward pass                          templates
recurrent (graph with cycles) AD of the fixed-point solve (recurrent           templates
                              backprop, implicit differentiation)
loss of the weights           the same, with the explicit ``∂V/∂W``            generic
tied weights ``C(W) = 0``     AD of the tied forward pass ``V̄(w + N θ)``       generic
anything else                 none: the check says why (status ``skip``)
============================  ==============================================  ==========

"templates" is :class:`~cognitive_action.derive.network.NetworkSystem`, "generic" is
:class:`~cognitive_action.verify.constrained.GenericNetworkSystem` (eq. 8-10 by
:func:`~cognitive_action.derive.euler_lagrange.euler_lagrange`, compiled).

Examples
--------
>>> import cognitive_action as ca
>>> backprop_kind(ca.xor().problem()).name
'feedforward'
>>> from cognitive_action.verify.recurrent import random_recurrent
>>> backprop_kind(random_recurrent(5, seed=0).problem()).name
'recurrent'
>>> from cognitive_action.declare import symbols as S
>>> from cognitive_action.declare.problem import Action, Problem
>>> q, = S.coordinates("q")
>>> kind = backprop_kind(Problem(Action([q], masses=1, lagrangian=-q**2 / 2)))
>>> kind.name, "no forward pass or fixed point" in kind.reason
('none', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.network import NetworkState, NetworkSystem, derive_network
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.constrained import (
    GenericNetworkSystem,
    neuron_constraints,
    project_weights,
    tied_gradients,
    weight_constraints,
)
from cognitive_action.verify.recurrent import (
    FixedPoint,
    central_differences,
    fixed_point,
    fixed_point_loss,
    recurrent_gradients,
    weights_by_name,
)
from cognitive_action.verify.reference import (
    _numpy_functions,
    casadi_gradients,
    numpy_forward,
    random_sample,
)

__all__ = ["BackpropKind", "backprop_kind", "BackpropCase", "backprop_case"]


@dataclass(frozen=True)
class BackpropKind:
    """The kind of a problem for the numeric backprop check.

    Attributes
    ----------
    name
        ``"feedforward"``, ``"recurrent"``, or ``"none"`` (no reference).
    reference
        The reference gradient in words (empty without one).
    templates
        Whether the per-neuron templates derive the law (otherwise the generic route).
    weight_loss
        Whether ``F`` depends on the weights (a regulariser).
    tied
        Names of the extra constraints on the weights.
    reason
        Why there is no reference (``None`` when there is one).
    """

    name: str
    reference: str = ""
    templates: bool = True
    weight_loss: bool = False
    tied: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def describe(self) -> str:
        """The kind in a few words, for messages."""
        extra = (["loss of the weights"] if self.weight_loss else []) + (
            [f"constraints {', '.join(self.tied)} on the weights"] if self.tied else [])
        return self.name + (f" with {' and '.join(extra)}" if extra else "")


def _none(reason: str) -> BackpropKind:
    return BackpropKind("none", reason=reason)


def backprop_kind(problem: Problem) -> BackpropKind:
    """Classify a problem for the numeric backprop check (see the module docstring)."""
    net = problem.network
    if not isinstance(net, Network):
        return _none("the problem is not built from a Network (an energy in the Lagrangian "
                     "of generalized coordinates): there is no forward pass or fixed point, "
                     "so no backprop gradient to compare the law with")
    if net.speed is not None:
        return _none("the neurons have a speed c (eq. 18-19): backprop is their c -> oo "
                     "limit, which this check does not take")
    if problem.nonholonomic_constraints:
        return _none("the problem has non-holonomic constraints besides eq. (4): no "
                     "backprop reference is known for them")
    if set(problem.coordinates) != set(net.neurons + net.weights):
        return _none("coordinates were added to or removed from the network's outputs and "
                     "weights: no backprop reference is known for them")
    try:
        neuron_constraints(problem)
    except DeclarationError as exc:
        return _none(f"{exc.message}: the outputs are no longer x = sigma(W x + e)")
    action = problem.action
    if action.mass_matrix is not None or \
            len({action.masses[x] for x in net.neurons}) > 1 or \
            len({action.masses[w] for w in net.weights}) > 1:
        return _none("the masses differ within the neurons or within the weights: the limit "
                     "of eq. (12)-(17) is taken for one m_x and one m_W")
    F = action.lagrangian
    if F == 0:
        return _none("F = 0 (no loss: the network has no outputs or targets), so the "
                     "backprop gradient is zero and there is nothing to compare the law with")
    velocities = {dot(q, k) for q in problem.coordinates for k in (1, 2)}
    if F.free_symbols & velocities:
        return _none("F depends on velocities: the backprop limit of eq. (12)-(17) has no "
                     "reference for such a Lagrangian")
    weights = set(net.weights)
    tied = []
    for c in weight_constraints(problem):
        free = c.expr.free_symbols
        if free & set(net.neurons) or not free & weights:
            return _none(f"the extra constraint {c.name} is not a constraint on the weights "
                         "alone: no backprop reference is known for it")
        signals = {dot(s, k) for s in problem.signals for k in range(3)}
        if t in free or free & signals:
            return _none(f"the constraint {c.name} on the weights depends on time: its "
                         "weights cannot rest, so no gradient reference applies")
        tied.append(c.name)
    weight_loss = bool(F.free_symbols & weights)
    if net.is_feedforward:
        name, ref = "feedforward", "AD of the forward pass"
    else:
        name, ref = "recurrent", ("recurrent backprop: AD of the fixed-point solve "
                                  "(casadi.rootfinder, implicit differentiation)")
    if tied:
        ref = ref.replace("AD of the", "AD of the tied", 1) + \
            ", gradient in the free parameters of the constraints"
    if weight_loss:
        ref += ", with the explicit dV/dW"
    return BackpropKind(name, ref, templates=not (tied or weight_loss),
                        weight_loss=weight_loss, tied=tuple(tied))


@dataclass
class BackpropCase:
    """A state at which to judge a law, with its reference.

    Attributes
    ----------
    kind
        The problem's :class:`BackpropKind`.
    system
        What the law evaluates: a ``NetworkSystem`` or a ``GenericNetworkSystem``.
    state, values
        The consistent state (on the fixed point and on ``C(W) = 0``) and the numbers
        for signals and parameters.
    delta, grad
        Reference deltas (network order) and the reference ``∂V̄/∂W`` (projected onto
        the tangent space for tied weights): the law's ``Ẇ`` must be ``-grad/γ``.
    directions
        Columns along which finite differences are taken: the tangent basis for tied
        weights, ``None`` for the weights themselves (unit vectors).
    loss
        ``(w, p) -> V̄`` with NumPy, for finite differences.
    notes
        Details for the report (fixed point, weight scale).
    reason
        Why no verdict can be given at this state (``None`` otherwise).
    """

    kind: BackpropKind
    system: NetworkSystem | GenericNetworkSystem | None = None
    state: NetworkState | None = None
    values: dict[str, float] = field(default_factory=dict)
    delta: np.ndarray | None = None
    grad: np.ndarray | None = None
    directions: np.ndarray | None = None
    loss: Callable[[np.ndarray, np.ndarray], float] | None = None
    notes: dict[str, object] = field(default_factory=dict)
    reason: str | None = None

    @property
    def n_directions(self) -> int:
        """How many directions finite differences can take."""
        return len(self.state.w) if self.directions is None else self.directions.shape[1]

    def along(self, v: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Components of a weight vector along ``directions[:, columns]``."""
        return v[columns] if self.directions is None else self.directions[:, columns].T @ v

    def finite_differences(self, columns: np.ndarray, neurons: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives of ``V̄`` along ``directions[:, columns]`` and ``-∂V̄/∂p_j``."""
        d = None if self.directions is None else self.directions[:, columns]
        return central_differences(self.loss, self.state.w, len(self.state.x),
                                   weights=columns, neurons=neurons, directions=d)


def _sample(problem: Problem, net: Network, seed: int, values: Mapping[str, float] | None,
            scale: float) -> tuple[np.ndarray, dict[str, float], bool]:
    """Weights ``N(0, scale²/fan_in)`` (or those given by name), ``t`` and signals."""
    w, vals = random_sample(problem, seed=seed, scale=scale, values=values)
    given = weights_by_name(net, vals)
    return (w, vals, False) if given is None else (given, vals, True)


def backprop_case(problem: Problem, *, seed: int = 0,
                  values: Mapping[str, float] | None = None,
                  kind: BackpropKind | None = None, scale: float = 1.0) -> BackpropCase:
    """Draw a consistent state and compute the reference for the problem's kind.

    Weights are drawn ``N(0, scale²/fan_in)`` unless ``values`` names every weight. On a
    graph with cycles the outputs are the fixed point; drawn weights are halved until
    it attracts (at most 10 times); given weights are kept, and an unstable fixed point
    is then reported in ``reason``. Tied weights are projected onto ``C(W) = 0``.
    Parameters of the loss not in ``values`` are set to 1.
    """
    kind = kind or backprop_kind(problem)
    case = BackpropCase(kind)
    if kind.reason is not None:
        case.reason = kind.reason
        return case
    net: Network = problem.network
    w, vals, given = _sample(problem, net, seed, values, scale)
    defaulted = [str(p) for p in problem.parameters
                 if problem.roles.kind(p) == RoleKind.PARAMETER and str(p) not in vals]
    vals.update(dict.fromkeys(defaulted, 1.0))
    if kind.tied:
        w = project_weights(problem, w, vals)
    x0 = None
    if net.is_feedforward:
        x, _ = numpy_forward(problem, w, vals)
    else:
        fp = fixed_point(problem, w, vals)
        halvings = 0
        while not fp.attracting and not given and halvings < 10:
            w = w / 2
            if kind.tied:
                w = project_weights(problem, w, vals)
            halvings += 1
            fp = fixed_point(problem, w, vals)
        case.notes = _fixed_point_notes(fp, halvings)
        if not fp.attracting:
            case.reason = (f"{fp.describe()} at the {'given' if given else 'drawn'} weights: "
                           "recurrent backprop needs an attracting fixed point, so there is "
                           "no reference")
            return case
        x = x0 = fp.x
    if kind.tied:
        ref = tied_gradients(problem, w, vals, x0=x0)
        grad, directions = ref.projected, ref.basis
    elif net.is_feedforward:
        ref = casadi_gradients(problem, w, vals)
        grad, directions = ref.grad_w, None
    else:
        ref = recurrent_gradients(problem, w, vals, x0=x0)
        grad, directions = ref.grad_w, None
    if net.is_feedforward:
        fns = _numpy_functions(problem, vals)
        case.loss = lambda wv, p: numpy_forward(problem, wv, vals, p, _fns=fns)[1]
    else:
        case.loss = fixed_point_loss(problem, vals, x0, w)
    if not (np.any(ref.delta) or np.any(grad)):
        case.reason = ("the loss does not depend on the network at this state (its gradient "
                       "is zero), so a relative error is undefined")
        return case
    case.system = derive_network(problem) if kind.templates else GenericNetworkSystem(problem)
    z = np.zeros_like(x)
    case.state = NetworkState(x=x, x_dot=z, w=w, w_dot=np.zeros_like(w), t=vals["t"])
    case.values, case.delta, case.grad, case.directions = vals, ref.delta, grad, directions
    case.notes["weights"] = "given" if given else f"drawn N(0, {scale:g}^2/fan_in)"
    if defaulted:
        case.notes["parameters set to 1"] = defaulted
    return case


def _fixed_point_notes(fp: FixedPoint, halvings: int) -> dict[str, object]:
    return {"fixed_point": fp.describe(), "max_real_eigenvalue": fp.max_real_eigenvalue,
            "spectral_radius": fp.spectral_radius, "weight_halvings": halvings}

