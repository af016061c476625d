"""Learning laws: what a law is given and returns, the built-in laws, a registry.

**The public protocol.** A learning law of a feedforward network is a function

    law(given: LawInput) -> LawRates

:class:`LawInput` holds the network, its weights by arc ``(source, target)``, the
forward pass (outputs ``x``, pre-activations ``a``, slopes ``σ'(a)``), the loss's own
error ``-∂V/∂x`` by neuron, the signals and ``γ``, and :meth:`LawInput.backprop` (the
derived law at that state, :class:`BackpropRates`). A law returns :class:`LawRates`:
deltas by neuron and weight rates by arc, with the signs of backprop (``δ = -∂V̄/∂x``,
``Ẇ = -∂V̄/∂w / γ``). :func:`chain_rule` and :meth:`LawInput.local_rates` are the two
halves of backprop, for laws that change one of them.

Laws are registered by name (:func:`register_law`, or an entry point of the group
``cognitive_action.laws`` whose object is a factory ``factory(seed=...) -> law``) and
built with :func:`make_law`; a problem file names one with ``[verify] law = "name"``
(never a module path). Built-ins: ``derived`` (the law the library derives),
``sign_flipped``, ``feedback_alignment``, ``direct_feedback_alignment``,
``predictive_coding`` and ``predictive_coding_fixed_prediction``
(:mod:`cognitive_action.verify.predictive_coding`); random
feedback matrices come from :func:`feedback_rng`, a stream independent of the weights.

**The engine form.** The checks call a law as ``law(system, state, values, gamma) ->
LawOutput(delta, w_dot)`` on the engine's arrays (network order and ``net.weights``
order): :data:`LearningLaw`. :func:`as_learning_law` turns a :data:`Law` into that form
(:class:`EngineLaw`); the built-ins are returned in it. :func:`derived_limit` is the law
the library derives (eq. 8-10 evaluated by
:meth:`~cognitive_action.derive.network.NetworkSystem.evaluate`) taken to the backprop
limit numerically.

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

import importlib.metadata
import inspect
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import dot
from cognitive_action.derive.network import NetworkState, NetworkSystem, derive_network
from cognitive_action.errors import DeclarationError, ShapeError
from cognitive_action.verify.reference import loss_of, network_of, numpy_forward

__all__ = ["LawInput", "LawRates", "Law", "chain_rule", "as_learning_law", "EngineLaw",
           "register_law", "unregister_law", "available_laws", "make_law", "UnknownLawError",
           "ENTRY_POINT_GROUP", "LawFactory", "derived", "sign_flipped", "feedback_alignment",
           "direct_feedback_alignment", "feedback_rng", "FEEDBACK_STREAM",
           "BackpropRates", "backprop_rates", "LawOutput", "LearningLaw", "derived_limit",
           "evaluate_at_ratio", "derived_rates", "LawEvaluator"]


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


# -- the public protocol -----------------------------------------------------------------
@dataclass(frozen=True)
class LawRates:
    """What a learning law returns: deltas by neuron and weight rates by arc.

    Attributes
    ----------
    delta
        ``δ_j`` for every neuron, in the sign of the backprop delta ``-∂V̄/∂x_j``.
    w_dot
        ``Ẇ`` for every arc ``(source, target)``, in the sign of ``-∂V̄/∂w / γ`` (a
        descent step is ``w + η γ Ẇ``).
    """

    delta: Mapping[Hashable, float]
    w_dot: Mapping[Arc, float]


@dataclass(frozen=True)
class LawInput:
    """What a learning law is given: a feedforward network at one state of its forward
    pass, everything keyed by neuron label or by arc ``(source, target)``.

    Attributes
    ----------
    network
        The :class:`~cognitive_action.declare.network.Network` (its ``graph``,
        ``inputs``, ``outputs``, ``order``: a topological order).
    weights
        ``w`` by arc, in ``network.graph.edges`` order.
    x
        Outputs of the forward pass by neuron (inputs: the input signals).
    preactivation
        ``a_j = Σ_k w_jk x_k`` by non-input neuron.
    slope
        ``σ'(a_j)`` by non-input neuron.
    error
        ``-∂V/∂x_j`` by neuron: the loss's own partial derivative at the forward pass
        (non-zero at the neurons the loss mentions, the outputs of a squared error).
    values
        Signals, parameters and ``t`` by name (inputs ``e<i>``, targets ``y<o>``).
    gamma
        ``γ`` of the weight law ``γ Ẇ = -δ_j G^j_W``.
    """

    network: Network
    weights: Mapping[Arc, float]
    x: Mapping[Hashable, float]
    preactivation: Mapping[Hashable, float]
    slope: Mapping[Hashable, float]
    error: Mapping[Hashable, float]
    values: Mapping[str, float]
    gamma: float
    _exact: Callable[[], BackpropRates] = field(repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def inputs(self) -> dict[Hashable, float]:
        """The input signals by input neuron (their outputs ``x``)."""
        return {j: self.x[j] for j in self.network.inputs}

    @property
    def targets(self) -> dict[Hashable, float]:
        """The targets ``y<o>`` by output neuron, for those given in :attr:`values`."""
        sig = self.network.target_signals()
        return {o: self.values[str(s)] for o, s in sig.items() if str(s) in self.values}

    def backprop(self) -> BackpropRates:
        """The derived law in the backprop limit at this state (eq. 8-10 through the
        engine, :func:`derived_limit`), computed once."""
        if "exact" not in self._cache:
            self._cache["exact"] = self._exact()
        return self._cache["exact"]

    def local_rates(self, delta: Mapping[Hashable, float]) -> dict[Arc, float]:
        """The local weight rule ``Ẇ_jk = δ_j σ'(a_j) x_k / γ`` (eq. 14-16) for given
        deltas, by arc in ``weights`` order."""
        g = self.gamma
        return {(k, j): delta[j] * self.slope[j] * self.x[k] / g for (k, j) in self.weights}


#: A learning law: ``law(given: LawInput) -> LawRates`` (any object with ``delta`` and
#: ``w_dot`` mappings, such as :class:`BackpropRates`, will do).
Law = Callable[[LawInput], LawRates]


def chain_rule(given: LawInput, feedback: Mapping[Arc, float] | None = None
               ) -> dict[Hashable, float]:
    """Deltas sent back through the graph, ``δ_k = error_k + Σ_j b_jk σ'(a_j) δ_j``.

    With ``feedback=None`` the matrix is ``W`` and the deltas are backprop's (the chain
    rule of ``V(f_W(e))``); with a random ``B`` they are feedback alignment's.

    Parameters
    ----------
    given
        The state.
    feedback
        ``b_jk`` by arc ``(k, j)``; default ``given.weights``.

    Returns
    -------
    dict
        ``δ`` by neuron, in ``network.order``.
    """
    net = given.network
    b = given.weights if feedback is None else feedback
    delta: dict[Hashable, float] = {}
    for k in reversed(net.order):
        d = given.error[k]
        for j in net.graph.successors(k):
            d += b[k, j] * given.slope[j] * delta[j]
        delta[k] = d
    return {j: delta[j] for j in net.order}


class LawEvaluator:
    """Builds :class:`LawInput` from arrays and reads :class:`LawRates` back into them,
    for one feedforward problem (its activation, slope, loss and loss gradient are
    lambdified once).

    Parameters
    ----------
    problem
        A problem built by ``Network.problem``.

    Attributes
    ----------
    sigma, dsigma
        The activation and its derivative (NumPy).
    loss, grad
        ``V`` and ``[∂V/∂x_j]`` as functions of ``(x in net.order, others)``.
    others
        The loss's symbols other than the outputs (targets, parameters, weights, ``t``),
        valued by :meth:`other_values`.
    """

    def __init__(self, problem: Problem) -> None:
        net = network_of(problem)
        self.problem, self.net = problem, net
        self.arcs: list[Arc] = list(net.graph.edges)
        pos = {(k, j): i for i, (j, k) in enumerate(net.w)}
        self.arc_index = np.array([pos[a] for a in self.arcs], dtype=int)
        idx = {j: i for i, j in enumerate(net.order)}
        self.src = np.array([idx[k] for k, _ in self.arcs], dtype=int)
        self.tgt = np.array([idx[j] for _, j in self.arcs], dtype=int)
        self.computing = [j for j in net.order if j not in net.inputs]
        self.computing_index = np.array([idx[j] for j in self.computing], dtype=int)
        z = sp.Symbol("z", real=True)
        fns: dict[object, tuple[Callable, Callable]] = {}
        for act in net.activation_groups():
            expr = act(z)
            fns[act] = (sp.lambdify([z], expr, "numpy"),
                        sp.lambdify([z], sp.diff(expr, z), "numpy"))
        self._by_neuron = {j: fns[net.activation_of(j)] for j in self.computing}
        self._groups = [(np.array([self.computing.index(j) for j in members], dtype=int),
                         fns[act][1]) for act, members in net.activation_groups().items()]
        if net.is_uniform:
            self.sigma, self.dsigma = fns.get(net.activation) or (
                sp.lambdify([z], net.activation(z), "numpy"),
                sp.lambdify([z], sp.diff(net.activation(z), z), "numpy"))
        V = loss_of(problem)
        xs = [net.x[j] for j in net.order]
        self.others = sorted(V.free_symbols - set(xs), key=str)
        self.weight_index = {str(w): i for i, w in enumerate(net.weights)}
        self.grad = sp.lambdify([xs, self.others], [sp.diff(V, x) for x in xs], "numpy")
        self.loss = sp.lambdify([xs, self.others], V, "numpy")

    def other_values(self, w: np.ndarray, values: Mapping[str, float]) -> list[float]:
        """Values of :attr:`others`: by name from ``values``, weights from ``w``
        (``net.weights`` order), ``t`` default 0."""
        out, missing = [], []
        for s in self.others:
            name = str(s)
            if name in values:
                out.append(float(values[name]))
            elif name in self.weight_index:
                out.append(float(w[self.weight_index[name]]))
            elif name == "t":
                out.append(0.0)
            else:
                missing.append(name)
        if missing:
            raise DeclarationError(f"no value given for {', '.join(missing)}",
                                   fix="pass numbers for the targets and parameters of the "
                                   "loss")
        return out

    def sigma_of(self, j: Hashable, a: np.ndarray) -> np.ndarray:
        """``σ_j(a)`` of the non-input neuron ``j`` (elementwise)."""
        return np.asarray(self._by_neuron[j][0](a), dtype=float) * np.ones_like(a)

    def slope_of(self, j: Hashable, a: np.ndarray) -> np.ndarray:
        """``σ_j'(a)`` of the non-input neuron ``j`` (elementwise)."""
        return np.asarray(self._by_neuron[j][1](a), dtype=float) * np.ones_like(a)

    def slopes(self, a: np.ndarray) -> np.ndarray:
        """``σ_j'(a_j)`` for the pre-activations ``a`` of the non-input neurons (in
        :attr:`computing` order), each neuron with its own activation."""
        a = np.asarray(a, dtype=float)
        out = np.zeros_like(a)
        for rows, ds in self._groups:
            out[rows] = (np.asarray(ds(a[rows]), dtype=float) * np.ones_like(a[rows]))
        return out

    def given(self, w: np.ndarray, x: np.ndarray, values: Mapping[str, float], gamma: float,
              exact: Callable[[], BackpropRates]) -> LawInput:
        """The :class:`LawInput` at weights ``w`` (``net.weights`` order) and outputs
        ``x`` (``net.order``); ``exact`` computes :meth:`LawInput.backprop` on demand."""
        w = np.asarray(w, dtype=float)
        x = np.asarray(x, dtype=float)
        w_arc = w[self.arc_index]
        a = np.zeros(len(x))
        np.add.at(a, self.tgt, w_arc * x[self.src])
        ac = a[self.computing_index]
        err = -np.asarray(self.grad(x, self.other_values(w, values)), dtype=float)
        order = self.net.order
        return LawInput(
            network=self.net, weights=dict(zip(self.arcs, w_arc.tolist())),
            x=dict(zip(order, x.tolist())),
            preactivation=dict(zip(self.computing, ac.tolist())),
            slope=dict(zip(self.computing, self.slopes(ac).tolist())),
            error=dict(zip(order, err.tolist())), values=dict(values), gamma=float(gamma),
            _exact=exact)

    def output(self, rates: LawRates, name: str) -> LawOutput:
        """``rates`` as engine arrays (raises ``ShapeError`` naming what is missing)."""
        net = self.net
        delta, w_dot = rates.delta, rates.w_dot
        missing_n = [j for j in net.order if j not in delta]
        missing_a = [a for a in self.arcs if a not in w_dot]
        if missing_n or missing_a:
            raise ShapeError(f"the law {name!r} returned no delta for neurons "
                             f"{missing_n[:5]} and no rate for arcs {missing_a[:5]}",
                             fix="return LawRates(delta={neuron: ...}, w_dot={(source, "
                             "target): ...}) for every neuron and every arc")
        return LawOutput(delta=np.array([float(delta[j]) for j in net.order]),
                         w_dot=np.array([float(w_dot[k, j]) for (j, k) in net.w]))


def derived_rates(system: NetworkSystem, state: NetworkState, values: Mapping[str, float],
                  gamma: float) -> BackpropRates:
    """The derived law (:func:`derived_limit`) at an engine state, keyed by neuron and
    by arc: what :meth:`LawInput.backprop` returns."""
    net = network_of(system.problem)
    out = derived_limit()(system, state, values, gamma)
    return BackpropRates(x=dict(zip(net.order, np.asarray(state.x).tolist())),
                         delta=dict(zip(net.order, np.asarray(out.delta).tolist())),
                         w_dot={(k, j): float(v) for (j, k), v in zip(net.w, out.w_dot)},
                         gamma=gamma)


class EngineLaw:
    """A :data:`Law` with the engine's signature ``(system, state, values, gamma) ->
    LawOutput``, the form the checks call (made by :func:`as_learning_law`).

    Attributes
    ----------
    law
        The law of the public protocol.
    __name__
        Its name in reports.
    """

    def __init__(self, law: Law, name: str) -> None:
        self.law = law
        self.__name__ = name
        self._evaluators: dict[int, tuple[Problem, LawEvaluator]] = {}

    def __repr__(self) -> str:
        return f"EngineLaw({self.__name__})"

    def evaluator(self, problem: Problem) -> LawEvaluator:
        hit = self._evaluators.get(id(problem))
        if hit is None or hit[0] is not problem:
            hit = (problem, LawEvaluator(problem))
            self._evaluators = {id(problem): hit}      # keeps the problem alive
        return hit[1]

    def __call__(self, system: NetworkSystem, state: NetworkState,
                 values: Mapping[str, float], gamma: float) -> LawOutput:
        ev = self.evaluator(system.problem)
        given = ev.given(state.w, state.x, values, gamma,
                         lambda: derived_rates(system, state, values, gamma))
        return ev.output(self.law(given), self.__name__)


def _engine_form(law: Callable) -> bool:
    """Whether ``law`` takes the engine's four arguments (else one :class:`LawInput`)."""
    try:
        params = inspect.signature(law).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 4


def as_learning_law(law: Law | LearningLaw, name: str | None = None) -> LearningLaw:
    """The engine form of a law, the one :func:`~cognitive_action.verify.checks.verify`
    and the checks call.

    Parameters
    ----------
    law
        A :data:`Law` (one :class:`LawInput` argument) or already a
        :data:`LearningLaw` (four arguments, returned as it is).
    name
        Its name in reports (default: the function's ``__name__``).

    Examples
    --------
    A law is a function of a :class:`LawInput` that returns deltas by neuron and weight
    rates by arc. This one is backprop by the chain rule at half the learning rate:

    >>> import cognitive_action as ca
    >>> from cognitive_action.verify.checks import check_backprop_numeric
    >>> def half_backprop(given: LawInput) -> LawRates:
    ...     delta = chain_rule(given)                   # δ through W: backprop's deltas
    ...     rates = given.local_rates(delta)           # Ẇ_jk = δ_j σ'(a_j) x_k / γ
    ...     return LawRates(delta=delta, w_dot={a: r / 2 for a, r in rates.items()})
    >>> checks = check_backprop_numeric(ca.layered([2, 3, 1]).problem(),
    ...                                 law=as_learning_law(half_backprop))
    >>> [(c.name, c.status) for c in checks][:2]
    [('backprop.numeric.multipliers', 'pass'), ('backprop.numeric.weights', 'fail')]
    >>> round(checks[1].value, 12)                     # |Ẇ - Ẇ_AD| / |Ẇ_AD|
    0.5
    """
    if isinstance(law, EngineLaw) or _engine_form(law):
        return law
    return EngineLaw(law, name or getattr(law, "__name__", "law"))


# -- built-in laws -----------------------------------------------------------------------
def derived() -> EngineLaw:
    """The derived law in the backprop limit (:meth:`LawInput.backprop`), as a
    :data:`Law`."""
    def derived_law(given: LawInput) -> LawRates:
        return given.backprop()
    return EngineLaw(derived_law, "derived")


def sign_flipped(law: Law | LearningLaw | None = None) -> LearningLaw:
    """``law`` (default: the derived one) with the weight update's sign flipped (eq. 15
    as printed does this)."""
    inner = derived_limit() if law is None else as_learning_law(law)
    if isinstance(inner, EngineLaw):
        inner_law = inner.law

        def flipped(given: LawInput) -> LawRates:
            out = inner_law(given)
            return LawRates(delta=dict(out.delta),
                            w_dot={a: -v for a, v in out.w_dot.items()})
        return EngineLaw(flipped, "sign_flipped")

    def flipped_engine(system: NetworkSystem, state: NetworkState,
                       values: Mapping[str, float], gamma: float) -> LawOutput:
        out = inner(system, state, values, gamma)
        return LawOutput(delta=out.delta, w_dot=-out.w_dot)
    flipped_engine.__name__ = "sign_flipped"
    return flipped_engine


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


def feedback_alignment(seed: int = 0, scale: float = 1.0) -> EngineLaw:
    """Feedback alignment (Lillicrap et al. 2016, the paper's ref. 11): ``δ`` travels
    back through fixed random weights ``B`` instead of ``W``.

    ``δ = chain_rule(given, B)`` with ``b_jk ~ N(0, scale²/fan_in(j))`` per arc, drawn
    once per network (in ``graph.edges`` order) from :func:`feedback_rng` (a stream
    derived from ``seed``, independent of weights drawn with the same seed), and the
    local weight rule ``Ẇ_jk = δ_j σ'(a_j) x_k / γ``. The output layer's deltas are
    exact; the hidden layers' are not.
    """
    matrices: dict[tuple, dict[Arc, float]] = {}

    def fa(given: LawInput) -> LawRates:
        arcs = tuple(given.weights)
        if arcs not in matrices:
            g = given.network.graph
            fan_in = np.array([g.in_degree(j) for _, j in arcs], dtype=float)
            b = feedback_rng(seed).standard_normal(len(arcs)) * scale / np.sqrt(fan_in)
            matrices[arcs] = dict(zip(arcs, b.tolist()))
        delta = chain_rule(given, matrices[arcs])
        return LawRates(delta=delta, w_dot=given.local_rates(delta))
    return EngineLaw(fa, f"feedback_alignment(seed={seed})")


def direct_feedback_alignment(seed: int = 0, scale: float = 1.0) -> EngineLaw:
    """Direct feedback alignment (Nøkland 2016): the output error goes to every neuron
    through one fixed random matrix, not back through the layers.

    Output neurons keep their error, ``δ_o = error_o``; every other neuron gets
    ``δ_k = error_k + Σ_o b_ko δ_o`` with ``b_ko ~ N(0, scale²/n_outputs)`` drawn once
    per network from :func:`feedback_rng` (``stream = FEEDBACK_STREAM + 1``); the weight
    rule is the local ``Ẇ_jk = δ_j σ'(a_j) x_k / γ``.
    """
    matrices: dict[tuple, np.ndarray] = {}

    def dfa(given: LawInput) -> LawRates:
        net = given.network
        outputs = list(net.outputs)
        others = [j for j in net.order if j not in set(outputs)]
        key = (tuple(others), tuple(outputs))
        if key not in matrices:
            rng = feedback_rng(seed, FEEDBACK_STREAM + 1)
            matrices[key] = (rng.standard_normal((len(others), len(outputs))) * scale
                             / np.sqrt(max(len(outputs), 1)))
        e = np.array([given.error[o] for o in outputs])
        sent = matrices[key] @ e if outputs else np.zeros(len(others))
        delta = {o: given.error[o] for o in outputs}
        delta |= {k: given.error[k] + float(s) for k, s in zip(others, sent)}
        delta = {j: delta[j] for j in net.order}
        return LawRates(delta=delta, w_dot=given.local_rates(delta))
    return EngineLaw(dfa, f"direct_feedback_alignment(seed={seed})")


# -- the registry ------------------------------------------------------------------------
#: The entry point group of learning laws: ``name = "package.module:factory"``.
ENTRY_POINT_GROUP = "cognitive_action.laws"

#: ``factory(seed=...) -> Law``: a law, possibly with random parts derived from the seed.
LawFactory = Callable[..., "Law | LearningLaw"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def _predictive_coding(seed: int = 0, *, fixed_prediction: bool = False) -> EngineLaw:
    from cognitive_action.verify.predictive_coding import predictive_coding

    return predictive_coding(seed=seed, fixed_prediction=fixed_prediction)


def _builtin_factories() -> dict[str, LawFactory]:
    return {"derived": lambda seed=0: derived(),
            "sign_flipped": lambda seed=0: sign_flipped(),
            "feedback_alignment": feedback_alignment,
            "direct_feedback_alignment": direct_feedback_alignment,
            "predictive_coding": _predictive_coding,
            "predictive_coding_fixed_prediction":
                lambda seed=0: _predictive_coding(seed, fixed_prediction=True)}


_REGISTRY: dict[str, LawFactory] = _builtin_factories()


class UnknownLawError(DeclarationError, KeyError):
    """No law is registered under a name.

    Attributes
    ----------
    name, known
        The name asked for and the registered names.
    """

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown learning law {name!r}",
                         fix=f"use one of {', '.join(known)}, or register yours with "
                         f"cognitive_action.verify.laws.register_law or a "
                         f"{ENTRY_POINT_GROUP!r} entry point")
        self.name, self.known = name, known

    def __str__(self) -> str:                         # KeyError would quote the message
        return DeclarationError.__str__(self)


def register_law(name: str, factory: LawFactory, *, replace: bool = False) -> LawFactory:
    """Register a learning law under a name that problem files and :func:`make_law` use.

    Parameters
    ----------
    name
        Letters, digits, ``_`` and ``-`` (a name, never a module path).
    factory
        ``factory(seed=...)`` returning a :data:`Law` (or a :data:`LearningLaw`); a law
        with random parts derives them from the seed (see :func:`feedback_rng`).
    replace
        Allow replacing a registered name.

    Returns
    -------
    LawFactory
        ``factory``.

    Raises
    ------
    DeclarationError
        On a malformed name, or a name already registered without ``replace``.

    Examples
    --------
    >>> def my_law(given: LawInput) -> LawRates:
    ...     delta = chain_rule(given)
    ...     return LawRates(delta=delta, w_dot=given.local_rates(delta))
    >>> _ = register_law("my_backprop", lambda seed=0: my_law)
    >>> "my_backprop" in available_laws()
    True
    >>> make_law("my_backprop")
    EngineLaw(my_backprop)
    >>> unregister_law("my_backprop")
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeclarationError(f"{name!r} is not a law name",
                               fix="use letters, digits, '_' and '-', e.g. 'my_law'")
    if not callable(factory):
        raise DeclarationError(f"the factory of {name!r} is not callable",
                               fix="pass a function factory(seed=0) -> law")
    if name in _REGISTRY and not replace:
        raise DeclarationError(f"a learning law named {name!r} is already registered",
                               fix="choose another name or pass replace=True")
    _REGISTRY[name] = factory
    return factory


def unregister_law(name: str) -> None:
    """Remove a law registered with :func:`register_law` (built-ins come back)."""
    _REGISTRY.pop(name, None)
    _REGISTRY.update({k: v for k, v in _builtin_factories().items() if k not in _REGISTRY})


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_laws() -> tuple[str, ...]:
    """Names of the registered laws: built-ins, :func:`register_law` and entry points of
    the group ``cognitive_action.laws``.

    >>> [n for n in available_laws() if n in _builtin_factories()]
    ['derived', 'direct_feedback_alignment', 'feedback_alignment', 'predictive_coding', \
'predictive_coding_fixed_prediction', 'sign_flipped']
    """
    return tuple(sorted(set(_REGISTRY) | set(_entry_points())))


def make_law(name: str, *, seed: int = 0) -> LearningLaw:
    """The registered law ``name``, built with ``seed``, in the engine form the checks
    call (:func:`as_learning_law`).

    A name registered with :func:`register_law` wins over an entry point of the same
    name; an entry point is loaded (imported) only when its name is asked for.

    Raises
    ------
    UnknownLawError
        If no law has that name (the message lists the known ones).
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise UnknownLawError(name, available_laws())
        factory = ep.load()
    return as_learning_law(factory(seed=seed), name)  # a built-in keeps its own name


def backprop_rates(model: Network | Problem, weights: Mapping[Arc, float] | np.ndarray,
                   values: Mapping[str, float] | None = None, *, gamma: float = 1.0,
                   system: NetworkSystem | None = None,
                   law: Law | LearningLaw | None = None
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
        Another law to evaluate, a :data:`Law` or a :data:`LearningLaw` (default
        ``derived_limit()``).

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
    engine = derived_limit() if law is None else as_learning_law(law)
    out = engine(system or derive_network(problem), state, vals, gamma)
    w_dot = dict(zip(((k, j) for (j, k) in net.w), out.w_dot.tolist()))
    return BackpropRates(x=dict(zip(net.order, x.tolist())),
                         delta=dict(zip(net.order, np.asarray(out.delta).tolist())),
                         w_dot={a: w_dot[a] for a in order}, gamma=gamma)
