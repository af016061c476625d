"""Learning laws evaluated at a network state, for the numeric backprop check.

A learning law maps a state of a feedforward network to multipliers ``δ`` (one per
neuron, network order) and a weight velocity ``Ẇ`` (``net.weights`` order):

    law(system, state, values, gamma) -> LawOutput(delta, w_dot)

:func:`derived_limit` is the law the library derives (eq. 8-10 evaluated by
:meth:`~cognitive_action.derive.network.NetworkSystem.evaluate`) taken to the backprop
limit numerically; :func:`sign_flipped` and :func:`feedback_alignment` are deliberately
wrong laws that the verifier must reject.

**How the limit is taken numerically.** At a state with zero velocities (consistent
with constraints whose inputs are held still) eq. (10) multiplied by ``m_x`` reads
``(J_x J_xᵀ + r J_W J_Wᵀ) δ = J_x f_x`` with ``r = m_x/m_W``: ``δ`` depends on ``r``
only and is analytic in it, ``δ(r) = δ₀ + r δ₁ + O(r²)``. :func:`derived_limit`
evaluates at ``r`` and ``r/10`` (with ``m_W = 1``, ``θ = γ/m_W``) and Richardson-
extrapolates, ``δ₀ ≈ (10 δ(r/10) - δ(r))/9`` (error ``O(r²)``). The weight law is the
leading-order weight row ``γ Ẇ = -δ_j G^j_M``: the velocity at which the friction
``m_W θ Ẇ = γ Ẇ`` balances the constraint force ``m_W Ẅ|_{Ẇ=0} = -δ_j G^j_M``
computed by the engine, i.e. ``Ẇ = m_W Ẅ|_{Ẇ=0}/γ``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import sparse
from scipy.sparse.linalg import spsolve_triangular

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import dot
from cognitive_action.derive.network import NetworkState, NetworkSystem, derive_network
from cognitive_action.errors import DeclarationError, ShapeError
from cognitive_action.verify.reference import network_of, numpy_forward

__all__ = ["LawOutput", "LearningLaw", "BackpropRates", "backprop_rates", "derived_limit",
           "sign_flipped", "feedback_alignment", "feedback_rng", "FEEDBACK_STREAM"]


@dataclass(frozen=True)
class LawOutput:
    """Multipliers (network order) and weight velocities (``net.weights`` order)."""

    delta: np.ndarray
    w_dot: np.ndarray


LearningLaw = Callable[[NetworkSystem, NetworkState, Mapping[str, float], float], LawOutput]


def _limit_values(system: NetworkSystem, values: Mapping[str, float], ratio: float,
                  gamma: float) -> dict[str, float]:
    out = dict(values)
    mx, mw = system.mass_x, system.mass_W
    if not (isinstance(mx, sp.Symbol) and isinstance(mw, sp.Symbol)):
        raise DeclarationError("the masses are fixed numbers, so no mass limit can be taken",
                               fix="declare the problem with symbolic masses (the default)")
    out[str(mw)] = 1.0
    out[str(mx)] = ratio
    if isinstance(system.rate, sp.Symbol):
        out[str(system.rate)] = gamma / out[str(mw)]
    return out


def evaluate_at_ratio(system: NetworkSystem, state: NetworkState, values: Mapping[str, float],
                      gamma: float, ratio: float) -> LawOutput:
    """``δ`` and ``Ẇ = m_W Ẅ|_{Ẇ=0}/γ`` from eq. (10) at ``m_x/m_W = ratio``."""
    vals = _limit_values(system, values, ratio, gamma)
    ev = system.evaluate(state, vals)
    return LawOutput(delta=ev.multipliers, w_dot=vals[str(system.mass_W)]
                     * ev.accelerations_w / gamma)


def derived_limit(ratio: float = 1e-7, extrapolate: bool = True) -> LearningLaw:
    """The derived law in the backprop limit (see the module docstring).

    Parameters
    ----------
    ratio
        ``m_x/m_W`` of the first evaluation.
    extrapolate
        Richardson-extrapolate ``r → 0`` from ``r`` and ``r/10``; otherwise return the
        value at ``r``.
    """
    def law(system: NetworkSystem, state: NetworkState, values: Mapping[str, float],
            gamma: float) -> LawOutput:
        a = evaluate_at_ratio(system, state, values, gamma, ratio)
        if not extrapolate:
            return a
        b = evaluate_at_ratio(system, state, values, gamma, ratio / 10)
        return LawOutput(delta=(10 * b.delta - a.delta) / 9, w_dot=(10 * b.w_dot - a.w_dot) / 9)
    law.__name__ = f"derived_limit(ratio={ratio:g})"
    return law


def sign_flipped(law: LearningLaw | None = None) -> LearningLaw:
    """``law`` with the weight update's sign flipped (eq. 15 as printed does this)."""
    inner = law or derived_limit()

    def flipped(system: NetworkSystem, state: NetworkState, values: Mapping[str, float],
                gamma: float) -> LawOutput:
        out = inner(system, state, values, gamma)
        return LawOutput(delta=out.delta, w_dot=-out.w_dot)
    flipped.__name__ = "sign_flipped"
    return flipped


#: ``spawn_key`` of the random stream of feedback matrices (an arbitrary constant that
#: no other draw in the package uses).
FEEDBACK_STREAM = 0xFEEDBAC


def feedback_rng(seed: int, stream: int = FEEDBACK_STREAM) -> np.random.Generator:
    """The random stream of fixed feedback matrices, derived from ``seed``.

    ``numpy.random.default_rng(seed)`` (which draws the verifier's random weights) and
    this generator are different children of the same :class:`numpy.random.SeedSequence`
    entropy, so a feedback matrix is never a copy of the network's weights, whatever the
    seed (feedback alignment with ``B = W`` is backprop and would pass as exact).

    Examples
    --------
    >>> a = np.random.default_rng(3).standard_normal(4)
    >>> b = feedback_rng(3).standard_normal(4)
    >>> bool(np.allclose(a, b)), bool(np.allclose(b, feedback_rng(3).standard_normal(4)))
    (False, True)
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def feedback_alignment(seed: int = 0, scale: float = 1.0) -> LearningLaw:
    """Feedback alignment (Lillicrap et al., the paper's ref. 11): ``δ`` travels back
    through fixed random weights ``B`` instead of ``W``.

    The multipliers solve ``T_B δ = -V_x`` with ``T_B`` the transpose of ``G_ξ`` in which
    every ``w_jk`` is replaced by ``b_jk ~ N(0, scale²/fan_in)``; the weight law is the
    derived one, ``γ Ẇ = -δ_j G^j_M``, with these ``δ``. ``B`` comes from
    :func:`feedback_rng` (a stream derived from ``seed``, independent of the weights drawn
    with the same seed).
    """
    exact = derived_limit()

    def law(system: NetworkSystem, state: NetworkState, values: Mapping[str, float],
            gamma: float) -> LawOutput:
        bp = exact(system, state, values, gamma)
        ev = system.evaluate(state, _limit_values(system, values, 1e-8, gamma))
        tg, sc = system.targets, system.sources
        w = np.asarray(state.w, dtype=float)
        g_arc = np.asarray(ev.J_x[tg, sc]).ravel() / w  # G^j_{x_k} = g_a(a_j) w_jk
        fan_in = np.bincount(tg, minlength=len(state.x))[tg]
        b = feedback_rng(seed).standard_normal(len(w)) * scale / np.sqrt(fan_in)
        nu = len(state.x)
        J_b = sparse.csr_matrix((g_arc * b, (tg, sc)), shape=(nu, nu)) \
            + sparse.diags(ev.J_x.diagonal())
        minus_vx = ev.J_x.T @ bp.delta                    # = -V_x in the limit (eq. 17)
        delta = spsolve_triangular(J_b.T.tocsr(), minus_vx, lower=False)
        return LawOutput(delta=delta, w_dot=-(ev.J_W.T @ delta) / gamma)
    law.__name__ = f"feedback_alignment(seed={seed})"
    return law


# -- the public call ---------------------------------------------------------------------
Arc = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class BackpropRates:
    """The derived law in the backprop limit at one state, keyed by neuron and by arc.

    Attributes
    ----------
    x
        Outputs of the forward pass ``x = f_W(e)`` by neuron.
    delta
        The multipliers ``δ_j`` by neuron: the backprop deltas ``-∂V̄/∂x_j`` (eq. 17).
    w_dot
        Weight rates ``Ẇ = -∂V̄/∂w / γ`` (eq. 14-16) by arc ``(source, target)``, in the
        order the weights were given (``graph.edges`` order for an array).
    gamma
        The ``γ`` of ``θ m_W = γ``.
    """

    x: dict[Hashable, float]
    delta: dict[Hashable, float]
    w_dot: dict[Arc, float]
    gamma: float


def backprop_rates(model: Network | Problem, weights: Mapping[Arc, float] | np.ndarray,
                   values: Mapping[str, float] | None = None, *, gamma: float = 1.0,
                   system: NetworkSystem | None = None, law: LearningLaw | None = None
                   ) -> BackpropRates:
    """Deltas and weight rates of a feedforward network at given weights and signals.

    Evaluates the derived law (eq. 8-10) in the backprop limit (:func:`derived_limit`)
    at the consistent state with these weights: ``x`` from the forward pass, zero
    velocities, static signals.

    Parameters
    ----------
    model
        A feedforward :class:`~cognitive_action.declare.network.Network` (its default
        problem) or a problem built by ``Network.problem``.
    weights
        ``{(source, target): w}`` for every arc, in any order (the result follows it),
        or an array in the order of ``network.graph.edges`` (networkx's order: by source
        neuron, in the order neurons were added).
    values
        Inputs ``e<label>``, targets ``y<label>``, parameters of the loss and ``t``, by
        name; derivatives of the signals default to 0.
    gamma
        ``γ`` of the weight law ``γ Ẇ = -δ_j G^j_M``.
    system
        The derived system, if already derived (``derive_network(problem)``).
    law
        Another :data:`LearningLaw` to evaluate (default ``derived_limit()``).

    Returns
    -------
    BackpropRates

    Raises
    ------
    ShapeError
        If the weights do not name every arc exactly once.

    Examples
    --------
    >>> import numpy as np
    >>> from cognitive_action.declare.network import chain
    >>> r = backprop_rates(chain(3), {(2, 3): -1.0, (1, 2): 0.5}, {"e1": 1.0, "y3": 0.0})
    >>> list(r.w_dot)                                 # the order the weights were given
    [(2, 3), (1, 2)]
    >>> x2 = np.tanh(0.5); x3 = np.tanh(-x2)          # independent: V = x3²/2
    >>> bool(np.isclose(r.delta[3], -x3))
    True
    >>> bool(np.isclose(r.w_dot[2, 3], -x3 * (1 - x3**2) * x2))
    True
    """
    problem = model.problem() if isinstance(model, Network) else model
    net = network_of(problem)
    arcs = list(net.graph.edges)
    if isinstance(weights, Mapping):
        order = [tuple(k) for k in weights]
        missing = [a for a in arcs if a not in weights]
        extra = [a for a in order if a not in net.graph.edges]
        if missing or extra or len(set(order)) != len(order):
            raise ShapeError(
                f"weights must name every arc (source, target) once: missing {missing[:5]}, "
                f"not arcs {extra[:5]}",
                fix="key the weights by the graph's arcs, e.g. {(1, 3): 0.1, ...}")
        by_arc = {a: float(weights[a]) for a in order}
    else:
        w_arr = np.asarray(weights, dtype=float).ravel()
        if w_arr.shape != (len(arcs),):
            raise ShapeError(f"{w_arr.size} weights for {len(arcs)} arcs",
                             fix="give one weight per arc, in the order of graph.edges")
        order = arcs
        by_arc = dict(zip(arcs, w_arr.tolist()))
    w = np.array([by_arc[k, j] for (j, k) in net.w])       # net.w is keyed (target, source)
    vals: dict[str, float] = {"t": 0.0}
    for s in problem.signals:
        vals[str(dot(s))] = 0.0
        vals[str(dot(s, 2))] = 0.0
    vals.update({str(k): float(v) for k, v in (values or {}).items()})
    x, _ = numpy_forward(problem, w, vals)
    state = NetworkState(x=x, x_dot=np.zeros_like(x), w=w, w_dot=np.zeros_like(w),
                         t=vals["t"])
    out = (law or derived_limit())(system or derive_network(problem), state, vals, gamma)
    w_dot = dict(zip(((k, j) for (j, k) in net.w), out.w_dot.tolist()))
    return BackpropRates(x=dict(zip(net.order, x.tolist())),
                         delta=dict(zip(net.order, np.asarray(out.delta).tolist())),
                         w_dot={a: w_dot[a] for a in order}, gamma=gamma)
