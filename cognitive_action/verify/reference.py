"""Independent references for the backprop limit: composed loss, autodiff, differences.

Nothing here uses the derivation engine: the references are computed from the network's
graph, its activation ``σ`` and its loss ``V`` only, by composing the forward pass
``x = f_W(e)`` (eq. 4 solved for ``x``, as in the paragraph "Reduction to
Backpropagation") and differentiating the composed loss ``V̄(W) = V(f_W(e))``:

- :func:`composed_loss` / :func:`forward_pass`: SymPy expressions, for small networks;
- :func:`casadi_gradients`: CasADi's algorithmic differentiation of an SX forward pass
  with an additive perturbation ``p_j`` on every neuron output, so that
  ``-∂V̄/∂p_j`` is the backprop delta of neuron ``j`` (the paper's ``δ_j``, eq. 17) and
  ``-∂V̄/∂W / γ`` the gradient-flow velocity (eq. 14);
- :func:`finite_differences`: central differences of a NumPy forward pass with one
  Richardson step (error ``O(h⁴)``).

Also :func:`random_feedforward` (random DAGs, layered or with skip connections) and
:func:`depths` (the layer of a neuron in a DAG: its longest path from an input).

Examples
--------
>>> from cognitive_action.declare.network import chain
>>> net = chain(3)
>>> forward_pass(net)[net.x[3]]
tanh(w3_2*tanh(e1*w2_1))
>>> import numpy as np
>>> p = net.problem()
>>> ref = casadi_gradients(p, np.array([0.5, -1.0]), {"e1": 1.0, "y3": 0.0})
>>> x2 = np.tanh(0.5); x3 = np.tanh(-x2)
>>> bool(np.isclose(ref.delta[2], -x3))       # δ_3 = -V_x3
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import casadi
import networkx as nx
import numpy as np
import sympy as sp

from cognitive_action.compile.translate import SUPPORTED_FUNCTIONS
from cognitive_action.declare.initializers import initialize
from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import dot, t
from cognitive_action.derive.limits import learning_symbols
from cognitive_action.errors import DeclarationError

__all__ = ["network_of", "loss_of", "forward_pass", "composed_loss", "CasadiReference",
           "casadi_gradients", "numpy_forward", "finite_differences", "random_feedforward",
           "depths"]

#: ``lambdify`` namespace: the translator's whitelist of functions (one CasADi table),
#: by the names SymPy prints, plus ``sqrt`` (a power node for the translator).
CASADI_FUNCTIONS = {cls.__name__: fn for cls, fn in SUPPORTED_FUNCTIONS.items()}
CASADI_FUNCTIONS["sqrt"] = casadi.sqrt


def network_of(problem: Problem) -> Network:
    """The feedforward :class:`Network` a problem was built from.

    Raises
    ------
    DeclarationError
        If the problem was not built by ``Network.problem`` or the graph has cycles.
    """
    net = problem.network
    if not isinstance(net, Network):
        raise DeclarationError("the problem was not built from a Network",
                               fix="build it with Network(...).problem() or layered(...)")
    if not net.is_feedforward:
        raise DeclarationError("the network has cycles: there is no forward pass f_W(e)",
                               fix="for a graph with cycles use the fixed point: "
                               "verify.recurrent.fixed_point and recurrent_gradients "
                               "(check_backprop_numeric picks them by itself)")
    return net


def learning_parameters(problem: Problem) -> tuple[str, str, str]:
    """Names of the rate ``θ`` (``ϖ = exp(θt)``), the neuron mass ``m_x`` and the weight
    mass ``m_W`` of a network problem, found by their roles (never by their names).

    Raises
    ------
    DeclarationError
        Without a time weight whose rate is one parameter, or with a mass of the
        neurons or the weights that is not a parameter symbol.

    Examples
    --------
    >>> import sympy as sp
    >>> import cognitive_action as ca
    >>> from cognitive_action.declare import symbols as S
    >>> th, mx, mw = S.parameters("th mass_neuron mass_weight", positive=True)
    >>> p = ca.xor().problem(weight=sp.exp(th * S.t), mass_x=mx, mass_W=mw, parameters=[th])
    >>> learning_parameters(p)
    ('th', 'mass_neuron', 'mass_weight')
    """
    network_of(problem)
    rate, m_x, m_w = learning_symbols(problem)
    if rate is None:
        raise DeclarationError("the problem has no time weight exp(theta*t) with a symbolic "
                               "theta", fix="declare weight=sp.exp(theta*t), "
                               "parameters=[theta]")
    for what, m in (("neurons", m_x), ("weights", m_w)):
        if problem.roles.kind(m) != RoleKind.MASS:
            raise DeclarationError(f"the mass of the network's {what} is {m}, not a parameter",
                                   fix="leave Network.problem's mass_x and mass_W symbolic "
                                   "(the checks set them)")
    return str(rate), str(m_x), str(m_w)


def random_sample(problem: Problem, *, seed: int = 0, scale: float = 1.0,
                  values: Mapping[str, float] | None = None
                  ) -> tuple[np.ndarray, dict[str, float]]:
    """A random state of a network problem: weights ``N(0, scale²/fan_in)`` (in
    ``net.weights`` order), a generic time ``t ∈ [0.5, 1.5]`` (time-dependent inputs
    such as ``sin(t)`` vanish at ``t = 0``) and signals ``N(0, 1)`` at rest; ``values``
    override by name. One stream: the weights first, then ``t`` and the signals."""
    net = problem.network
    rng = np.random.default_rng(seed)
    w = initialize([net.graph.in_degree(j) for (j, _k) in net.w], scale=scale, rng=rng)
    vals: dict[str, float] = {"t": float(rng.uniform(0.5, 1.5))}
    for s in problem.signals:
        vals[str(s)] = float(rng.standard_normal())
        vals[str(dot(s))] = 0.0
        vals[str(dot(s, 2))] = 0.0
    vals.update({str(k): float(v) for k, v in (values or {}).items()})
    return w, vals


def loss_of(problem: Problem) -> sp.Expr:
    """``V = -F/ϖ`` (the problem's ``F = -ϖ V``)."""
    w = problem.action.weight
    return sp.expand(-problem.action.lagrangian / w) if w != 1 else -problem.action.lagrangian


def input_expressions(problem: Problem) -> dict[Hashable, sp.Expr]:
    """``{input neuron: e_j(t)}`` read off the input constraints ``G = x_j - e_j(t)``
    (a signal symbol ``e<j>`` or an expression of ``t`` given in a problem file); the
    graph may have cycles."""
    net = problem.network
    if not isinstance(net, Network):
        raise DeclarationError("the problem was not built from a Network",
                               fix="build it with Network(...).problem() or layered(...)")
    by_name = {c.name: c.expr for c in problem.constraints}
    out = {}
    for j in net.inputs:
        g = next((c.expr for c in problem.constraints
                  if net.x[j] in c.expr.free_symbols and c.kind == "holonomic"
                  and sp.diff(c.expr, net.x[j]) == 1 and
                  not (c.expr.free_symbols - {net.x[j], t} - set(problem.signals)
                       - set(problem.parameters))), by_name.get(f"G{j}"))
        out[j] = net.x[j] - g
    return out


def input_values(problem: Problem, values: Mapping[str, float]) -> dict[Hashable, float]:
    """Numeric inputs ``e_j(t)`` at ``t = values["t"]`` (default 0)."""
    vals = {str(k): float(v) for k, v in values.items()}
    vals.setdefault("t", 0.0)
    out = {}
    for j, e in input_expressions(problem).items():
        sub = {s: vals[str(s)] for s in e.free_symbols if str(s) in vals}
        try:
            out[j] = float(e.xreplace(sub))
        except TypeError:
            raise DeclarationError(
                f"no value given for {', '.join(sorted(map(str, e.free_symbols - set(sub))))}",
                fix="pass numbers for the input signals and parameters") from None
    return out


def forward_pass(net: Network, inputs: Mapping[Hashable, sp.Expr] | None = None
                 ) -> dict[sp.Symbol, sp.Expr]:
    """``{x_j: f_W(e)_j}``: the outputs composed through the graph (SymPy)."""
    e = dict(net.input_signals())
    e.update(inputs or {})
    out: dict[sp.Symbol, sp.Expr] = {}
    for j in net.order:
        if j in net.inputs:
            out[net.x[j]] = e[j]
        else:
            a = sp.Add(*(net.w[j, k] * out[net.x[k]] for k in net.graph.predecessors(j)))
            out[net.x[j]] = net.activation_of(j)(a)
    return out


def composed_loss(problem: Problem) -> sp.Expr:
    """``V̄(W) = V(f_W(e))`` as a SymPy expression (small networks)."""
    net = network_of(problem)
    return loss_of(problem).xreplace(forward_pass(net, input_expressions(problem)))


@dataclass(frozen=True)
class CasadiReference:
    """Backprop by CasADi's algorithmic differentiation at one point.

    Attributes
    ----------
    x
        Outputs of the forward pass, in ``net.order``.
    delta
        ``-∂V̄/∂p_j``: the backprop delta per neuron (eq. 17's ``δ``), network order.
    grad_w
        ``∂V̄/∂W`` in ``net.weights`` order.
    loss
        ``V̄`` at the point.
    """

    x: np.ndarray
    delta: np.ndarray
    grad_w: np.ndarray
    loss: float


def casadi_activation(net: Network, j: Hashable | None = None):
    """Neuron ``j``'s activation (default: the network's single one) as a function of
    CasADi expressions (its SymPy form lambdified over :data:`CASADI_FUNCTIONS`)."""
    z = sp.Symbol("z", real=True)
    act = net.activation if j is None else net.activation_of(j)
    return sp.lambdify([z], act(z), modules=[CASADI_FUNCTIONS])


def casadi_activations(net: Network) -> dict[Hashable, object]:
    """``{neuron: σ_j}`` as functions of CasADi expressions, one lambdify per distinct
    activation."""
    z = sp.Symbol("z", real=True)
    fns = {act: sp.lambdify([z], act(z), modules=[CASADI_FUNCTIONS])
           for act in net.activation_groups()}
    return {j: fns[net.activation_of(j)] for j in net.computing}


def _numeric_values(problem: Problem, values: Mapping[str, float]) -> dict[sp.Symbol, float]:
    syms = loss_of(problem).free_symbols - set(problem.coordinates)
    missing = sorted(str(s) for s in syms if str(s) not in values and s != t)
    if missing:
        raise DeclarationError(f"no value given for {', '.join(missing)}",
                               fix="pass numbers for the targets and parameters of the loss")
    return {s: float(values.get(str(s), 0.0)) for s in syms}


def casadi_forward(problem: Problem, values: Mapping[str, float], W, P) -> list:
    """The forward pass ``x = σ(W x + e) + p`` of a feedforward network as CasADi
    expressions of the weights ``W`` (``net.weights`` order) and additive perturbations
    ``P`` of the outputs (network order), the inputs valued from ``values``."""
    net = network_of(problem)
    sigma = casadi_activations(net)
    widx = {key: i for i, key in enumerate(net.w)}
    e = input_values(problem, values)
    x: dict[Hashable, object] = {}
    for i, j in enumerate(net.order):
        if j in net.inputs:
            x[j] = e[j] + P[i]
        else:
            a = 0
            for k in net.graph.predecessors(j):
                a = a + W[widx[j, k]] * x[k]
            x[j] = sigma[j](a) + P[i]
    return [x[j] for j in net.order]


def casadi_gradients(problem: Problem, w: np.ndarray, values: Mapping[str, float]
                     ) -> CasadiReference:
    """Backprop deltas and ``∂V̄/∂W`` by CasADi AD of an SX forward pass.

    The loss may depend on the weights too (a regulariser such as
    ``V + (λ/2)|W|²``): ``∂V̄/∂W`` then includes the explicit ``∂V/∂W``.

    Parameters
    ----------
    problem
        A feedforward network problem.
    w
        Weights in ``net.weights`` order.
    values
        Inputs ``e<i>``, targets ``y<o>``, parameters of the loss, ``t``, by name.
    """
    net = network_of(problem)
    W = casadi.SX.sym("W", len(net.weights))
    P = casadi.SX.sym("p", len(net.order))
    x = dict(zip(net.order, casadi_forward(problem, values, W, P)))
    V = loss_of(problem)
    consts = _numeric_values(problem, values)
    fV = sp.lambdify(list(net.neurons + net.weights), V.xreplace(consts),
                     modules=[CASADI_FUNCTIONS])
    Vx = fV(*(x[j] for j in net.order), *(W[i] for i in range(len(net.weights))))
    f = casadi.Function("backprop_reference", [W, P],
                        [Vx, casadi.gradient(Vx, W), casadi.gradient(Vx, P),
                         casadi.vertcat(*(x[j] for j in net.order))])
    v, gw, gp, xv = f(np.asarray(w, dtype=float), np.zeros(len(net.order)))
    return CasadiReference(x=np.asarray(xv).ravel(), delta=-np.asarray(gp).ravel(),
                           grad_w=np.asarray(gw).ravel(), loss=float(v))


def _numpy_functions(problem: Problem, values: Mapping[str, float]):
    net = network_of(problem)
    z = sp.Symbol("z", real=True)
    fns = {act: sp.lambdify([z], act(z), "numpy") for act in net.activation_groups()}
    sigma = {j: fns[net.activation_of(j)] for j in net.computing}
    fV = sp.lambdify(list(net.neurons + net.weights), loss_of(problem).xreplace(
        _numeric_values(problem, values)), "numpy")
    return net, sigma, fV


def numpy_forward(problem: Problem, w: np.ndarray, values: Mapping[str, float],
                  perturbation: np.ndarray | None = None, *, _fns=None
                  ) -> tuple[np.ndarray, float]:
    """Forward pass and loss with NumPy (outputs in ``net.order``)."""
    net, sigma, fV = _fns or _numpy_functions(problem, values)
    idx = {n: i for i, n in enumerate(net.order)}
    widx = {key: i for i, key in enumerate(net.w)}
    p = np.zeros(len(net.order)) if perturbation is None else perturbation
    e = input_values(problem, values)
    x = np.zeros(len(net.order))
    for i, j in enumerate(net.order):
        if j in net.inputs:
            x[i] = e[j] + p[i]
        else:
            preds = list(net.graph.predecessors(j))
            a = sum(w[widx[j, k]] * x[idx[k]] for k in preds)
            x[i] = sigma[j](a) + p[i]
    return x, float(fV(*x, *w))


def finite_differences(problem: Problem, w: np.ndarray, values: Mapping[str, float], *,
                       weights: Sequence[int] = (), neurons: Sequence[int] = (),
                       h: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Central differences with one Richardson step, ``(4 D(h/2) - D(h))/3``.

    Returns ``(∂V̄/∂w_k for k in weights, -∂V̄/∂p_j for j in neurons)``.
    """
    w = np.asarray(w, dtype=float)
    nu = len(network_of(problem).order)
    fns = _numpy_functions(problem, values)

    def loss(wv: np.ndarray, p: np.ndarray) -> float:
        return numpy_forward(problem, wv, values, p, _fns=fns)[1]

    def central(fun, step: float) -> float:
        return (fun(step) - fun(-step)) / (2 * step)

    def rich(fun) -> float:
        return (4 * central(fun, h / 2) - central(fun, h)) / 3

    zero = np.zeros(nu)
    gw = []
    for k in weights:
        def fk(s: float, k: int = k) -> float:
            wv = w.copy()
            wv[k] += s
            return loss(wv, zero)
        gw.append(rich(fk))
    dp = []
    for j in neurons:
        def fj(s: float, j: int = j) -> float:
            p = zero.copy()
            p[j] += s
            return loss(w, p)
        dp.append(-rich(fj))
    return np.array(gw), np.array(dp)


def random_feedforward(n: int, n_inputs: int = 2, *, density: float = 0.3, seed: int = 0,
                       skip: bool = True, activation: str = "tanh") -> Network:
    """A random feedforward network on ``n`` neurons.

    With ``skip=False`` the neurons are split into layers of random sizes and arcs join
    consecutive layers only; with ``skip=True`` every arc ``i → j`` with ``i < j``
    (neurons numbered in a topological order) is present with probability ``density``,
    so arcs skip layers. Every non-input neuron gets at least one incoming arc.

    >>> net = random_feedforward(12, 3, seed=1)
    >>> net.is_feedforward, len(net.inputs)
    (True, 3)
    """
    if n <= n_inputs or n_inputs < 1:
        raise DeclarationError(f"{n} neurons with {n_inputs} inputs leave no computing neuron",
                               fix="use n > n_inputs >= 1")
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(1, n + 1))
    inputs = list(range(1, n_inputs + 1))
    if skip:
        for j in range(n_inputs + 1, n + 1):
            src = [i for i in range(1, j) if rng.random() < density]
            if not src:
                src = [int(rng.integers(1, j))]
            g.add_edges_from((i, j) for i in src)
    else:
        layers, k = [inputs], n_inputs + 1
        while k <= n:
            size = int(rng.integers(1, max(2, (n - n_inputs) // 2) + 1))
            layers.append(list(range(k, min(n, k + size - 1) + 1)))
            k = layers[-1][-1] + 1
        for a, b in zip(layers, layers[1:]):
            g.add_edges_from((i, j) for i in a for j in b)
    return Network(g, inputs, activation)


def depths(net: Network) -> dict[Hashable, int]:
    """Layer of each neuron: the longest path from an input (inputs at depth 0).

    In a graph with cycles every neuron of a strongly connected component (a recurrent
    block) gets the layer of its component in the condensed, acyclic graph.

    >>> import networkx as nx
    >>> net = Network(nx.DiGraph([(1, 2), (2, 3), (3, 2), (3, 4)]), [1])
    >>> depths(net)
    {1: 0, 2: 1, 3: 1, 4: 2}
    """
    if not net.is_feedforward:
        cond = nx.condensation(net.graph)
        level: dict[int, int] = {}
        for c in nx.topological_sort(cond):
            preds = list(cond.predecessors(c))
            level[c] = 0 if not preds else 1 + max(level[k] for k in preds)
        member = cond.graph["mapping"]
        return {j: level[member[j]] for j in net.order}
    d: dict[Hashable, int] = {}
    for j in net.order:
        preds = list(net.graph.predecessors(j))
        d[j] = 0 if not preds else 1 + max(d[k] for k in preds)
    return d
