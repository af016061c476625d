"""Network problems the per-neuron templates refuse: regularised losses, tied weights.

Two modifications of a network problem leave the backprop limit well defined but take
it outside :class:`~cognitive_action.derive.network.NetworkSystem`:

- **a loss or action that depends on the weights** (a regulariser,
  ``V + (λ/2)|W|²``): the reference gradient is ``∂V̄/∂W`` with the explicit
  ``∂V/∂W`` (:func:`~cognitive_action.verify.reference.casadi_gradients` and
  :func:`~cognitive_action.verify.recurrent.recurrent_gradients` include it);
- **extra holonomic constraints on the weights** ``C(W) = 0`` (tied weights,
  ``w3_1 - w4_2 = 0``): in the limit the weight law is ``γ Ẇ = -(∇V̄ + C_Wᵀ ν)`` with
  ``C_W Ẇ = 0``, the gradient projected onto the tangent space of ``C = 0``. The
  reference, :func:`tied_gradients`, is AD of the tied forward pass
  ``V̄(w + N θ)`` in the free parameters ``θ`` (``N`` an orthonormal basis of the
  tangent space), mapped back, ``Ẇ = -N ∇_θ V̄ / γ``.

The derived law is then evaluated by the generic route (eq. 8-10 of
:func:`~cognitive_action.derive.euler_lagrange.euler_lagrange`, compiled by
:func:`~cognitive_action.compile.system.compile_system`), wrapped in
:class:`GenericNetworkSystem`, which answers ``evaluate(state, values)`` like a
``NetworkSystem`` so every :data:`~cognitive_action.verify.laws.LearningLaw` applies.

Examples
--------
>>> import numpy as np
>>> import cognitive_action as ca
>>> from cognitive_action.declare.problem import Constraint, Problem
>>> net = ca.xor()
>>> base = net.problem()
>>> tie = Constraint(net.w[3, 1] - net.w[4, 2], name="tie")
>>> p = Problem(base.action, base.constraints + (tie,), signals=base.signals,
...             parameters=base.parameters, network=net)
>>> [c.name for c in weight_constraints(p)]
['tie']
>>> vals = {"e1": 0.5, "e2": -1.0, "y5": 0.3}
>>> w = project_weights(p, np.linspace(-0.5, 0.5, 6), vals)
>>> bool(abs(w[0] - w[3]) < 1e-14)                # w3_1 = w4_2
True
>>> ref = tied_gradients(p, w, vals)
>>> bool(abs(ref.projected[0] - ref.projected[3]) < 1e-14)   # the tie moves together
True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import casadi
import numpy as np
import sympy as sp
from scipy import sparse

from cognitive_action.compile.system import CompiledSystem, compile_system
from cognitive_action.declare.network import Network, _label
from cognitive_action.declare.problem import Constraint, Problem
from cognitive_action.declare.roles import RoleMap
from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.network import NetworkEvaluation, NetworkState
from cognitive_action.errors import CognitiveActionError, DeclarationError, DerivationError
from cognitive_action.verify.recurrent import (
    _casadi_state,
    central_differences,
    fixed_point,
    fixed_point_loss,
    holonomic_network_of,
    loss_function_of,
)
from cognitive_action.verify.reference import (
    CASADI_FUNCTIONS,
    CasadiReference,
    casadi_forward,
    numpy_forward,
)

__all__ = ["neuron_constraints", "weight_constraints", "project_weights", "tangent_basis",
           "TiedReference", "tied_gradients", "tied_finite_differences",
           "GenericNetworkSystem", "state_map"]


def _neuron_constraint_names(net: Network) -> list[str]:
    # the names Network.constraints gives, without building the expressions
    return [f"G{_label(j)}" for j in net.order]


def neuron_constraints(problem: Problem) -> tuple[Constraint, ...]:
    """The constraints of eq. (4) the network made, one per neuron in network order.

    Raises
    ------
    DeclarationError
        If a neuron's constraint was removed from the problem.
    """
    net = holonomic_network_of(problem)
    by_name = {c.name: c for c in problem.constraints}
    names = _neuron_constraint_names(net)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise DeclarationError(f"the neuron constraint(s) {', '.join(missing)} were removed",
                               fix="keep every constraint Network.problem made; add others")
    return tuple(by_name[n] for n in names)


def weight_constraints(problem: Problem) -> tuple[Constraint, ...]:
    """Constraints added to a network problem beyond its neurons' (e.g. tied weights)."""
    net = holonomic_network_of(problem)
    own = set(_neuron_constraint_names(net))
    return tuple(c for c in problem.constraints if c.name not in own)


def _constants(problem: Problem, values: Mapping[str, float]) -> dict[sp.Symbol, float]:
    return {s: float(values[str(s)]) for s in problem.parameters if str(s) in values}


@functools.lru_cache(maxsize=32)
def _constraint_functions(problem: Problem, key: tuple) -> casadi.Function:
    net = holonomic_network_of(problem)
    consts = dict(key)
    W = casadi.SX.sym("W", len(net.weights))
    exprs = [c.expr.xreplace({s: v for s, v in consts.items()}) for c in
             weight_constraints(problem)]
    f = sp.lambdify(list(net.weights), exprs, modules=[CASADI_FUNCTIONS])
    C = casadi.vertcat(*f(*(W[i] for i in range(len(net.weights)))))
    return casadi.Function("weight_constraints", [W], [C, casadi.jacobian(C, W)])


def _constraint_function(problem: Problem, values: Mapping[str, float]) -> casadi.Function:
    key = tuple(sorted(_constants(problem, values).items(), key=lambda kv: str(kv[0])))
    return _constraint_functions(problem, key)


def project_weights(problem: Problem, w: np.ndarray, values: Mapping[str, float], *,
                    tol: float = 1e-14, max_iter: int = 50) -> np.ndarray:
    """The nearest point to ``w`` on ``C(W) = 0`` (minimum-norm Gauss-Newton steps).

    Raises
    ------
    DeclarationError
        If the constraints cannot be satisfied from ``w``.
    """
    w = np.asarray(w, dtype=float).copy()
    if not weight_constraints(problem):
        return w
    f = _constraint_function(problem, values)
    for _ in range(max_iter):
        C, J = (np.asarray(casadi.DM(v).full()) for v in f(w))
        C = C.ravel()
        if np.max(np.abs(C), initial=0.0) <= tol:
            return w
        w = w - np.linalg.lstsq(J, C, rcond=None)[0]
    C = np.asarray(f(w)[0]).ravel()
    if np.max(np.abs(C), initial=0.0) <= 1e3 * tol:
        return w
    raise DeclarationError(f"the weight constraints stay violated ({np.max(np.abs(C)):.2e})",
                           fix="check that the constraints on the weights can be met")


def tangent_basis(problem: Problem, w: np.ndarray, values: Mapping[str, float]
                  ) -> np.ndarray:
    """An orthonormal basis (columns) of the tangent space ``{dW : C_W dW = 0}`` at ``w``."""
    n = len(holonomic_network_of(problem).weights)
    if not weight_constraints(problem):
        return np.eye(n)
    J = np.asarray(_constraint_function(problem, values)(np.asarray(w, dtype=float))[1])
    J = np.atleast_2d(casadi.DM(J).full())
    _, s, vt = np.linalg.svd(J)
    rank = int(np.sum(s > 1e-12 * max(s[0], 1.0))) if len(s) else 0
    return vt[rank:].T


def state_map(problem: Problem, values: Mapping[str, float], W, P, x0: np.ndarray | None
              ) -> list:
    """Neuron outputs as CasADi MX expressions of the weights ``W`` and the perturbations
    ``P``: the composed forward pass (feedforward graphs) or the fixed point by a
    rootfinder node started at ``x0`` (graphs with cycles)."""
    net = holonomic_network_of(problem)
    if not net.is_feedforward:
        return _casadi_state(problem, values, W, P, x0)
    return casadi_forward(problem, values, W, P)


@dataclass(frozen=True)
class TiedReference(CasadiReference):
    """Backprop with constraints on the weights, by AD of the tied forward pass.

    Attributes
    ----------
    basis
        ``N``: orthonormal columns spanning the tangent space of ``C(W) = 0``.
    grad_free
        ``∇_θ V̄(w + N θ)`` at ``θ = 0`` (AD through the tied forward pass).
    projected
        ``N ∇_θ V̄``: the gradient projected onto the tangent space (``net.weights``
        order); the weight law of the limit is ``Ẇ = -projected / γ``.
    """

    basis: np.ndarray = None  # type: ignore[assignment]
    grad_free: np.ndarray = None  # type: ignore[assignment]
    projected: np.ndarray = None  # type: ignore[assignment]


def tied_gradients(problem: Problem, w: np.ndarray, values: Mapping[str, float], *,
                   x0: np.ndarray | None = None) -> TiedReference:
    """AD of the tied forward pass: ``∇_θ V̄(w + N θ)`` and the backprop deltas.

    Parameters
    ----------
    problem
        A network problem with instantaneous neurons, extra holonomic constraints on the
        weights only, any graph (a fixed point for one with cycles), any loss of
        outputs and weights.
    w
        Weights on ``C(W) = 0`` (:func:`project_weights`), ``net.weights`` order.
    values
        Inputs, targets, parameters and ``t`` by name.
    x0
        Near the fixed point, for graphs with cycles (default: solved here).

    Returns
    -------
    TiedReference

    Examples
    --------
    Tying the two weights of a chain, ``w2_1 = w3_2``, moves both by the mean of their
    untied gradients:

    >>> import numpy as np
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare.problem import Constraint, Problem
    >>> from cognitive_action.verify.reference import casadi_gradients
    >>> net = ca.chain(3)
    >>> base = net.problem()
    >>> p = Problem(base.action, base.constraints + (Constraint(
    ...     net.w[2, 1] - net.w[3, 2], name="tie"),), signals=base.signals,
    ...     parameters=base.parameters, network=net)
    >>> w, vals = np.array([0.6, 0.6]), {"e1": 1.0, "y3": -0.5}
    >>> g = casadi_gradients(base, w, vals).grad_w
    >>> bool(np.allclose(tied_gradients(p, w, vals).projected, g.mean(), rtol=1e-13))
    True
    """
    net = holonomic_network_of(problem)
    w = np.asarray(w, dtype=float)
    if x0 is None and not net.is_feedforward:
        fp = fixed_point(problem, w, values)
        if not fp.converged:
            raise DeclarationError(fp.describe(), fix="use smaller weights")
        x0 = fp.x
    N = tangent_basis(problem, w, values)
    nu, nw = len(net.order), len(net.weights)
    Th = casadi.MX.sym("theta", N.shape[1])
    Wm = casadi.MX.sym("W", nw)
    P = casadi.MX.sym("p", nu)
    fV, xi, wi = loss_function_of(problem, values, modules=[CASADI_FUNCTIONS])

    def loss(W):
        x = state_map(problem, values, W, P, x0)
        return fV(*(x[i] for i in xi), *(W[i] for i in wi)), x

    V, x = loss(Wm)
    Vt, _ = loss(casadi.DM(w) + casadi.DM(N) @ Th)
    f = casadi.Function("tied_backprop", [Wm, P, Th],
                        [V, casadi.gradient(V, Wm), casadi.gradient(V, P),
                         casadi.vertcat(*x), casadi.gradient(Vt, Th)])
    v, gw, gp, xv, gt = f(w, np.zeros(nu), np.zeros(N.shape[1]))
    gt = np.asarray(gt).ravel()
    return TiedReference(x=np.asarray(xv).ravel(), delta=-np.asarray(gp).ravel(),
                         grad_w=np.asarray(gw).ravel(), loss=float(v), basis=N,
                         grad_free=gt, projected=N @ gt)


def loss_function(problem: Problem, values: Mapping[str, float], x0: np.ndarray | None):
    """``(w, p) -> V̄`` with NumPy: the forward pass, or the fixed point re-solved."""
    net = holonomic_network_of(problem)
    if net.is_feedforward:
        return lambda w, p: numpy_forward(problem, w, values, p)[1]
    return fixed_point_loss(problem, values, x0)


def tied_finite_differences(problem: Problem, w: np.ndarray, values: Mapping[str, float],
                            basis: np.ndarray, *, directions: Sequence[int] = (),
                            neurons: Sequence[int] = (), h: float = 1e-3,
                            x0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Central differences (one Richardson step) along columns of ``basis``.

    Returns ``(∂V̄/∂θ_k for k in directions, -∂V̄/∂p_j for j in neurons)``.
    """
    net = holonomic_network_of(problem)
    return central_differences(loss_function(problem, values, x0), w, len(net.order),
                               neurons=neurons, directions=basis[:, list(directions)], h=h)


class GenericNetworkSystem:
    """Eq. (8)-(10) of a modified network problem by the generic route, evaluated like a
    :class:`~cognitive_action.derive.network.NetworkSystem`.

    The problem's :func:`~cognitive_action.derive.euler_lagrange.euler_lagrange` is
    compiled once (:func:`~cognitive_action.compile.system.compile_system`, route
    ``"generic"``: the mass-matrix form with a linear-solve node); :meth:`evaluate`
    returns the multipliers of the neuron constraints (network order) and the
    accelerations, so the learning laws of :mod:`cognitive_action.verify.laws` apply.

    Attributes
    ----------
    problem, network, euler_lagrange, compiled
        What was derived and compiled.
    mass_x, mass_W, rate
        The masses of neurons and weights and ``ϖ̇/ϖ``.
    targets, sources
        Network-order indices of each weight's target and source neuron.
    """

    form = "euler_lagrange"

    def __init__(self, problem: Problem) -> None:
        net = holonomic_network_of(problem)
        self.problem, self.network = problem, net
        self.euler_lagrange: EulerLagrange = euler_lagrange(problem)
        self.compiled: CompiledSystem = compile_system(self.euler_lagrange, route="generic")
        masses = problem.action.masses
        self.mass_x = masses[net.neurons[0]]
        self.mass_W = masses[net.weights[0]] if net.weights else sp.S.One
        self.rate = self.euler_lagrange.rate
        idx = {n: i for i, n in enumerate(net.order)}
        self.targets = np.array([idx[j] for (j, _k) in net.w], dtype=np.int64)
        self.sources = np.array([idx[k] for (_j, k) in net.w], dtype=np.int64)
        own = {c.name: i for i, c in enumerate(problem.holonomic)}
        self._neuron_rows = [own[n] for n in _neuron_constraint_names(net)]
        self.multipliers = tuple(self.euler_lagrange.multipliers[i] for i in self._neuron_rows)

    @property
    def roles(self) -> RoleMap:
        """The roles of the generic derivation."""
        return self.euler_lagrange.roles

    def __repr__(self) -> str:
        return (f"GenericNetworkSystem({len(self.network.order)} neurons, "
                f"{len(self.network.weights)} weights, "
                f"{len(self.problem.constraints) - len(self.network.order)} extra "
                "constraints)")

    @functools.cached_property
    def _jacobian(self) -> tuple[casadi.Function, list[sp.Symbol]]:
        """``(G_x, G_W)`` of the neuron constraints: CasADi AD of the constraints."""
        net, problem = self.network, self.problem
        rows = [problem.holonomic[i].expr for i in self._neuron_rows]
        consts = sorted(set().union(*(e.free_symbols for e in rows))
                        - set(net.neurons + net.weights), key=str)
        X = casadi.SX.sym("x", len(net.neurons))
        W = casadi.SX.sym("W", len(net.weights))
        K = casadi.SX.sym("k", len(consts))
        f = sp.lambdify([list(net.neurons), list(net.weights), consts], rows,
                        modules=[CASADI_FUNCTIONS])
        G = casadi.vertcat(*f([X[i] for i in range(X.numel())],
                              [W[i] for i in range(W.numel())],
                              [K[i] for i in range(K.numel())]))
        fn = casadi.Function("neuron_jacobians", [X, W, K],
                             [casadi.jacobian(G, X), casadi.jacobian(G, W)])
        return fn, consts

    def evaluate(self, state: NetworkState, values: Mapping[str | sp.Symbol, float]
                 ) -> NetworkEvaluation:
        """Evaluate eq. (10) at a state by the compiled generic route.

        Parameters
        ----------
        state
            Outputs, weights and their velocities (network and ``net.weights`` order).
        values
            Numbers for the parameters (masses, ``θ``, …) and the signals, by name.

        Raises
        ------
        DerivationError
            A missing value, or a singular eq. (10).
        """
        net, cs = self.network, self.compiled
        vals = {str(k): float(v) for k, v in values.items()}
        y = {str(q): float(v) for q, v in zip(net.neurons, state.x)}
        y |= {str(q): float(v) for q, v in zip(net.weights, state.w)}
        y |= {str(dot(q)): float(v) for q, v in zip(net.neurons, state.x_dot)}
        y |= {str(dot(q)): float(v) for q, v in zip(net.weights, state.w_dot)}
        missing = [n for n in cs.parameters if n not in vals]
        if missing:
            raise DerivationError(f"no value given for {', '.join(missing)}",
                                  fix="pass numbers for every parameter and signal")
        try:
            u = cs.evaluate_unknowns(float(state.t), y, {n: vals[n] for n in cs.parameters})
        except CognitiveActionError as exc:
            raise DerivationError(f"the generic route failed: {exc}",
                                  fix="check the values of the parameters") from exc
        mult = np.array([u[str(m)] for m in self.multipliers])
        acc_x = np.array([u[str(dot(q, 2))] for q in net.neurons])
        acc_w = np.array([u[str(dot(q, 2))] for q in net.weights])
        if not (np.all(np.isfinite(mult)) and np.all(np.isfinite(acc_w))):
            raise DerivationError("eq. (10) is singular at this state",
                                  fix="check the rank of the constraint Jacobian "
                                  "(Proposition 1)")
        fn, consts = self._jacobian
        cv = [float(state.t) if s == t else vals[str(s)] for s in consts]
        jx, jw = fn(np.asarray(state.x, dtype=float), np.asarray(state.w, dtype=float), cv)
        return NetworkEvaluation(J_x=sparse.csr_matrix(jx.sparse()),
                                 J_W=sparse.csr_matrix(jw.sparse()),
                                 A=np.zeros((0, 0)), b=np.zeros(0), multipliers=mult,
                                 accelerations_x=acc_x, accelerations_w=acc_w)

