"""Recurrent backprop: the reference for networks whose graph has cycles.

A recurrent network of eq. (4) has no forward pass; its outputs are a fixed point

    x* = σ(W x* + inputs),      inputs clamped: x_i = e_i(t),

and the composed loss is ``V̄(W) = V(x*(W), W)``. Its gradient is recurrent backprop
(Almeida, Pineda), i.e. implicit differentiation at the fixed point: with
``T = I - (σ'W)ᵀ`` (``G_ξᵀ``, not triangular here),

    T δ = -V_x,        ∂V̄/∂w_jk = ∂V/∂w_jk - δ_j σ'(a_j) x_k,

the paper's eq. (16)-(17) with a general ``T``. The references here do not use the
derivation engine:

- :func:`fixed_point`: a damped Newton solve with NumPy, and whether the fixed point
  attracts the relaxation ``c⁻¹ẋ = σ(Wx + e) - x`` of the neurons (18)-(19): every
  eigenvalue of ``σ'W`` (non-input block) has real part below 1;
- :func:`recurrent_gradients`: CasADi AD through ``casadi.rootfinder`` (CasADi
  differentiates a root by the implicit function theorem), with an additive
  perturbation ``p_j`` on every neuron's constraint so that ``δ_j = -∂V̄/∂p_j``;
- :func:`recurrent_finite_differences`: central differences of re-solved fixed points
  with one Richardson step.

Examples
--------
>>> import networkx as nx
>>> import numpy as np
>>> from cognitive_action.declare.network import Network
>>> net = Network(nx.DiGraph([(1, 2), (2, 3), (3, 2)]), [1], outputs=[3])
>>> p = net.problem()
>>> w = np.array([0.8, 0.3, -0.5])                 # w2_1, w2_3, w3_2 (net.weights)
>>> fp = fixed_point(p, w, {"e1": 1.0, "y3": 0.2})
>>> fp.attracting, bool(abs(fp.x[1] - np.tanh(0.8 + 0.3 * fp.x[2])) < 1e-14)
(True, True)
>>> ref = recurrent_gradients(p, w, {"e1": 1.0, "y3": 0.2})
>>> gw, _ = recurrent_finite_differences(p, w, {"e1": 1.0, "y3": 0.2}, weights=[0, 1, 2])
>>> bool(np.allclose(ref.grad_w, gw, rtol=1e-9, atol=1e-12))
True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import casadi
import networkx as nx
import numpy as np
import scipy.linalg
import sympy as sp

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.reference import (
    CASADI_FUNCTIONS,
    CasadiReference,
    _numeric_values,
    casadi_activations,
    input_values,
    loss_of,
)

__all__ = ["FixedPoint", "fixed_point", "recurrent_gradients",
           "recurrent_finite_differences", "holonomic_network_of", "random_recurrent",
           "central_differences", "fixed_point_loss", "weights_by_name", "loss_function_of"]


def holonomic_network_of(problem: Problem) -> Network:
    """The :class:`Network` of a problem with instantaneous neurons (eq. 4), any graph.

    Raises
    ------
    DeclarationError
        If the problem was not built by ``Network.problem`` or its neurons have a
        speed ``c`` (eq. 18-19).
    """
    net = problem.network
    if not isinstance(net, Network):
        raise DeclarationError("the problem was not built from a Network",
                               fix="build it with Network(...).problem() or layered(...)")
    if net.speed is not None:
        raise DeclarationError("the neurons have a speed c (eq. 18-19): their outputs are "
                               "not a fixed point of eq. (4)",
                               fix="take the limit c -> oo, or drop speed=")
    return net


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``x* = σ(W x* + e)`` of a network, in network order.

    Attributes
    ----------
    x
        Neuron outputs at the fixed point (inputs clamped to ``e + p``).
    residual
        ``max |x - σ(W x) |`` over the non-input neurons.
    converged
        Whether Newton's method reached ``residual <= tol``.
    max_real_eigenvalue
        Largest real part of the eigenvalues of ``σ'(a) W`` on the non-input neurons.
    spectral_radius
        Largest modulus of those eigenvalues (below 1: the plain iteration
        ``x ← σ(Wx + e)`` converges too).
    attracting
        ``converged`` and ``max_real_eigenvalue < 1``: the fixed point attracts the
        relaxation ``c⁻¹ẋ = σ(Wx + e) - x`` of the neurons (18)-(19), and
        ``T = I - (σ'W)ᵀ`` is invertible.
    iterations
        Newton steps taken.
    """

    x: np.ndarray
    residual: float
    converged: bool
    max_real_eigenvalue: float
    spectral_radius: float
    attracting: bool
    iterations: int

    def describe(self) -> str:
        """One sentence on convergence and stability, for reports."""
        if not self.converged:
            return (f"no fixed point x = sigma(W x + e) found (Newton stopped after "
                    f"{self.iterations} steps at residual {self.residual:.2e})")
        if not self.attracting:
            return (f"the fixed point is not attracting: max Re eig(sigma'W) = "
                    f"{self.max_real_eigenvalue:.4g} >= 1, so the relaxation "
                    "c^-1 x_dot = sigma(W x + e) - x leaves it")
        return (f"attracting fixed point (max Re eig(sigma'W) = "
                f"{self.max_real_eigenvalue:.3g}, spectral radius "
                f"{self.spectral_radius:.3g}, residual {self.residual:.1e})")


class _Graph:
    """Index arrays of a network: targets and sources of the weights, inputs."""

    def __init__(self, net: Network) -> None:
        idx = {n: i for i, n in enumerate(net.order)}
        self.nu = len(net.order)
        self.tg = np.array([idx[j] for (j, _k) in net.w], dtype=np.int64)
        self.sc = np.array([idx[k] for (_j, k) in net.w], dtype=np.int64)
        self.inputs = np.array([idx[i] for i in net.inputs], dtype=np.int64)
        hidden = np.ones(self.nu, dtype=bool)
        hidden[self.inputs] = False
        self.hidden = np.flatnonzero(hidden)


@functools.lru_cache(maxsize=16)
def _graph(net: Network) -> _Graph:
    return _Graph(net)


class _NeuronActivations:
    """``σ_j`` and ``σ_j'`` of every neuron applied to a vector over ``net.order`` (each
    neuron its own activation; the entries of input neurons are 0)."""

    def __init__(self, net: Network) -> None:
        idx = {j: i for i, j in enumerate(net.order)}
        self.groups = [(np.array([idx[j] for j in members], dtype=int), act.numeric())
                       for act, members in net.activation_groups().items()]

    def f(self, a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        for rows, act in self.groups:
            out[rows] = act.f(a[rows])
        return out

    def df(self, a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        for rows, act in self.groups:
            out[rows] = act.df(a[rows])
        return out


def _input_vector(net: Network, problem: Problem, values: Mapping[str, float],
                  p: np.ndarray) -> np.ndarray:
    e = input_values(problem, values)
    out = np.zeros(len(net.order))
    for i, j in enumerate(net.order):
        if j in net.inputs:
            out[i] = e[j] + p[i]
    return out


def fixed_point(problem: Problem, w: np.ndarray, values: Mapping[str, float], *,
                perturbation: np.ndarray | None = None, x0: np.ndarray | None = None,
                tol: float = 1e-14, max_iter: int = 100, stability: bool = True
                ) -> FixedPoint:
    """Solve ``x = σ(W x + e) + p`` by damped Newton steps (NumPy).

    Parameters
    ----------
    problem
        A network problem with instantaneous neurons (any graph).
    w
        Weights in ``net.weights`` order.
    values
        Inputs ``e<i>``, ``t`` and whatever the input expressions need, by name.
    perturbation
        An additive ``p_j`` on every neuron's constraint (network order), default 0.
    x0
        Starting point (default: inputs clamped, zero elsewhere).
    tol
        Residual at which Newton stops.
    max_iter
        Most Newton steps.
    stability
        Compute the eigenvalues of ``σ'W`` (otherwise they are reported as ``nan``
        and ``attracting`` as ``converged``).

    Returns
    -------
    FixedPoint
        Never raises for a fixed point that is missing or unstable: its
        ``converged`` and ``attracting`` say so.
    """
    net = holonomic_network_of(problem)
    g = _graph(net)
    act = _NeuronActivations(net)
    w = np.asarray(w, dtype=float)
    p = np.zeros(g.nu) if perturbation is None else np.asarray(perturbation, dtype=float)
    clamp = _input_vector(net, problem, values, p)
    x = clamp.copy() if x0 is None else np.asarray(x0, dtype=float).copy()
    x[g.inputs] = clamp[g.inputs]
    h = g.hidden

    def residual(xv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.bincount(g.tg, w * xv[g.sc], minlength=g.nu)
        return (xv - act.f(a) - p)[h], a

    r, a = residual(x)
    it = 0
    while np.max(np.abs(r), initial=0.0) > tol and it < max_iter:
        it += 1
        dW = np.zeros((g.nu, g.nu))
        np.add.at(dW, (g.tg, g.sc), w * act.df(a)[g.tg])
        J = np.eye(len(h)) - dW[np.ix_(h, h)]
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError:
            break
        norm, lam = np.linalg.norm(r), 1.0
        for _ in range(30):  # backtracking: accept the first step that reduces |r|
            xt = x.copy()
            xt[h] += lam * step
            rt, at = residual(xt)
            if np.linalg.norm(rt) < norm or lam < 1e-8:
                break
            lam /= 2
        if np.linalg.norm(rt) >= norm and norm <= 1e3 * tol:
            break  # rounding level: no step reduces the residual further
        x, r, a = xt, rt, at
    res = float(np.max(np.abs(r), initial=0.0))
    converged = res <= max(tol, 1e-12)
    if stability:
        dW = np.zeros((g.nu, g.nu))
        np.add.at(dW, (g.tg, g.sc), w * act.df(a)[g.tg])
        eig = np.linalg.eigvals(dW[np.ix_(h, h)]) if len(h) else np.zeros(0)
        mre = float(np.max(eig.real, initial=-np.inf)) if len(eig) else 0.0
        rho = float(np.max(np.abs(eig), initial=0.0))
    else:
        mre = rho = float("nan")
    return FixedPoint(x=x, residual=res, converged=converged, max_real_eigenvalue=mre,
                      spectral_radius=rho,
                      attracting=converged and (mre < 1.0 or not stability),
                      iterations=it)


def _casadi_state(problem: Problem, values: Mapping[str, float], W: casadi.MX,
                  P: casadi.MX, x0: np.ndarray) -> list[casadi.MX]:
    """The fixed point as CasADi MX expressions of ``W`` and ``P`` (a rootfinder node
    started at ``x0``), one entry per neuron in network order."""
    net = holonomic_network_of(problem)
    g = _graph(net)
    sigma = casadi_activations(net)
    nh = len(g.hidden)
    e = input_values(problem, values)
    Xh = casadi.SX.sym("xh", nh)
    Ws = casadi.SX.sym("W", len(net.weights))
    Ps = casadi.SX.sym("p", g.nu)
    pos = {int(i): k for k, i in enumerate(g.hidden)}
    xs = casadi.vertcat(*(e[j] + Ps[i] if j in net.inputs else Xh[pos[i]]
                          for i, j in enumerate(net.order)))
    # W as a sparse SX matrix: nonzeros in column-major order (by source, then target)
    order = np.lexsort((g.tg, g.sc))
    sparsity = casadi.Sparsity.triplet(g.nu, g.nu, g.tg[order].tolist(), g.sc[order].tolist())
    Wmat = casadi.SX(sparsity, Ws[order.tolist()])
    a = casadi.mtimes(Wmat, xs)
    hid = g.hidden.tolist()
    res = Xh - casadi.vertcat(*(sigma[net.order[i]](a[i]) for i in hid)) - Ps[hid]
    fn = casadi.Function("fixed_point_residual", [Xh, casadi.vertcat(Ws, Ps)], [res])
    rf = casadi.rootfinder("fixed_point", "newton", fn,
                           {"abstol": 1e-14, "max_iter": 50, "error_on_fail": False})
    xh = rf(np.asarray(x0, dtype=float)[g.hidden], casadi.vertcat(W, P))
    out: list[casadi.MX] = []
    for i, j in enumerate(net.order):
        out.append(e[j] + P[i] if j in net.inputs else xh[pos[i]])
    return out


def recurrent_gradients(problem: Problem, w: np.ndarray, values: Mapping[str, float], *,
                        x0: np.ndarray | None = None) -> CasadiReference:
    """Recurrent backprop by CasADi AD of a fixed-point solve (``casadi.rootfinder``).

    Parameters
    ----------
    problem
        A network problem with instantaneous neurons; its graph may have cycles and its
        loss may depend on the weights.
    w
        Weights in ``net.weights`` order.
    values
        Inputs ``e<i>``, targets ``y<o>``, parameters of the loss, ``t``, by name.
    x0
        A point near the fixed point (default: :func:`fixed_point`'s solution).

    Returns
    -------
    CasadiReference
        ``x`` the fixed point, ``delta = -∂V̄/∂p`` (``T δ = -V_x``), ``grad_w = ∂V̄/∂W``
        (with the explicit ``∂V/∂W`` of a regulariser), ``loss``.

    Raises
    ------
    DeclarationError
        If no fixed point is found from ``x0``, or values are missing.

    Examples
    --------
    A self-loop ``x2 = tanh(w2_1 e1 + w2_2 x2)`` with ``V = (x2 - y2)²/2``: by the
    implicit function theorem ``dx2/dw2_2 = σ' x2 / (1 - σ' w2_2)``.

    >>> import numpy as np
    >>> from cognitive_action.declare.network import Network
    >>> p = Network([(1, 2), (2, 2)], [1], outputs=[2]).problem()
    >>> ref = recurrent_gradients(p, np.array([0.5, 0.4]), {"e1": 1.0, "y2": 0.0})
    >>> x2 = ref.x[1]; s = 1 - x2**2
    >>> bool(np.isclose(ref.grad_w[1], x2 * s * x2 / (1 - s * 0.4), rtol=1e-13))
    True
    >>> bool(np.isclose(ref.delta[1], -x2 / (1 - s * 0.4), rtol=1e-13))   # T δ = -V_x
    True
    """
    net = holonomic_network_of(problem)
    w = np.asarray(w, dtype=float)
    if x0 is None:
        fp = fixed_point(problem, w, values)
        if not fp.converged:
            raise DeclarationError(fp.describe(), fix="use smaller weights")
        x0 = fp.x
    W = casadi.MX.sym("W", len(net.weights))
    P = casadi.MX.sym("p", len(net.order))
    x = _casadi_state(problem, values, W, P, x0)
    fV, xi, wi = loss_function_of(problem, values, modules=[CASADI_FUNCTIONS])
    V = fV(*(x[i] for i in xi), *(W[i] for i in wi))
    f = casadi.Function("recurrent_backprop", [W, P],
                        [V, casadi.gradient(V, W), casadi.gradient(V, P), casadi.vertcat(*x)])
    v, gw, gp, xv = f(w, np.zeros(len(net.order)))
    return CasadiReference(x=np.asarray(xv).ravel(), delta=-np.asarray(gp).ravel(),
                           grad_w=np.asarray(gw).ravel(), loss=float(v))


def fixed_point_loss(problem: Problem, values: Mapping[str, float], x0: np.ndarray,
                     w0: np.ndarray | None = None):
    """``(w, p) -> V(x*(w, p), w)`` with NumPy, each fixed point re-solved from ``x0``.

    Near ``(w0, x0)`` (``w0`` defaults to the weights of the first call) the fixed point
    is found by Newton steps with the Jacobian frozen at ``(w0, x0)``, one LU
    factorization for all the calls of a finite-difference sweep; farther away, or
    when those steps stall, by :func:`fixed_point`.

    Raises
    ------
    DeclarationError
        When a perturbed fixed point is not found.
    """
    net = holonomic_network_of(problem)
    fV, xi, wi = loss_function_of(problem, values)
    g = _graph(net)
    act = _NeuronActivations(net)
    h = g.hidden
    x0 = np.asarray(x0, dtype=float)
    frozen: dict[str, object] = {}

    def chord(w: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        if "lu" not in frozen:
            wf = np.asarray(w if w0 is None else w0, dtype=float)
            a0 = np.bincount(g.tg, wf * x0[g.sc], minlength=g.nu)
            dW = np.zeros((g.nu, g.nu))
            np.add.at(dW, (g.tg, g.sc), wf * act.df(a0)[g.tg])
            frozen["lu"] = scipy.linalg.lu_factor(np.eye(len(h)) - dW[np.ix_(h, h)])
        x = _input_vector(net, problem, values, p)
        x[h] = x0[h]
        for _ in range(60):
            a = np.bincount(g.tg, w * x[g.sc], minlength=g.nu)
            r = (x - act.f(a) - p)[h]
            if np.max(np.abs(r), initial=0.0) <= 1e-15:
                return x
            x[h] -= scipy.linalg.lu_solve(frozen["lu"], r)
        return None

    def loss(w: np.ndarray, p: np.ndarray) -> float:
        w = np.asarray(w, dtype=float)
        x = chord(w, np.asarray(p, dtype=float))
        if x is None:
            fp = fixed_point(problem, w, values, perturbation=p, x0=x0, stability=False)
            if not fp.converged:
                raise DeclarationError(fp.describe(),
                                       fix="use a smaller step or smaller weights")
            x = fp.x
        return float(fV(*x[xi], *w[wi]))
    return loss


def loss_function_of(problem: Problem, values: Mapping[str, float], modules=("numpy",)):
    """``V`` with its constants substituted, as a function of the outputs and weights it
    mentions: ``(f, neuron indices, weight indices)`` with ``f(*x[xi], *w[wi])`` (only
    the symbols that occur, so a dense network's loss lambdifies quickly)."""
    net = holonomic_network_of(problem)
    V = loss_of(problem).xreplace(_numeric_values(problem, values))
    free = V.free_symbols
    xi = [i for i, s in enumerate(net.neurons) if s in free]
    wi = [i for i, s in enumerate(net.weights) if s in free]
    args = [net.neurons[i] for i in xi] + [net.weights[i] for i in wi]
    return sp.lambdify(args, V, modules=list(modules)), xi, wi


def central_differences(loss, w: np.ndarray, nu: int, *, weights: Sequence[int] = (),
                        neurons: Sequence[int] = (), directions: np.ndarray | None = None,
                        h: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Central differences with one Richardson step, ``(4 D(h/2) - D(h))/3``, of a loss
    ``loss(w, p)``.

    Returns ``(∂V̄/∂w_k for k in weights, -∂V̄/∂p_j for j in neurons)``; with
    ``directions`` (columns), the first entry holds the directional derivatives along
    them instead.
    """
    w = np.asarray(w, dtype=float)
    zero = np.zeros(nu)

    def rich(fun) -> float:
        def central(step: float) -> float:
            return (fun(step) - fun(-step)) / (2 * step)
        return (4 * central(h / 2) - central(h)) / 3

    if directions is None:
        gw = []
        for k in weights:
            unit = np.zeros(len(w))
            unit[k] = 1.0
            gw.append(rich(lambda s, d=unit: loss(w + s * d, zero)))
    else:
        gw = [rich(lambda s, d=d: loss(w + s * d, zero)) for d in np.asarray(directions).T]
    dp = []
    for j in neurons:
        unit = np.zeros(nu)
        unit[j] = 1.0
        dp.append(-rich(lambda s, u=unit: loss(w, s * u)))
    return np.array(gw), np.array(dp)


def recurrent_finite_differences(problem: Problem, w: np.ndarray,
                                 values: Mapping[str, float], *,
                                 weights: Sequence[int] = (), neurons: Sequence[int] = (),
                                 h: float = 1e-3, x0: np.ndarray | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of the fixed-point loss, one Richardson step (``O(h⁴)``).

    Returns ``(∂V̄/∂w_k for k in weights, -∂V̄/∂p_j for j in neurons)``.
    """
    net = holonomic_network_of(problem)
    w = np.asarray(w, dtype=float)
    if x0 is None:
        x0 = fixed_point(problem, w, values).x
    return central_differences(fixed_point_loss(problem, values, x0, w), w, len(net.order),
                               weights=weights, neurons=neurons, h=h)


def weights_by_name(net: Network, values: Mapping[str, float]) -> np.ndarray | None:
    """The weights given by name in ``values`` (``net.weights`` order), or None unless
    every weight is given."""
    names = [str(s) for s in net.weights]
    if names and all(n in values for n in names):
        return np.array([float(values[n]) for n in names])
    return None



def random_recurrent(n: int, n_inputs: int = 2, *, density: float = 0.3, seed: int = 0,
                     self_loops: bool = True, activation: str = "tanh",
                     n_outputs: int = 1) -> Network:
    """A random network with cycles on ``n`` neurons (inputs ``1 … n_inputs``).

    Every arc ``i → j`` into a non-input neuron ``j`` (from any neuron, ``i = j`` a
    self-loop when ``self_loops``) is present with probability ``density``; every
    non-input neuron gets an arc from an input, and a cycle ``n_inputs+1 → … → n →
    n_inputs+1`` among the other neurons is added if the draw has none. The last
    ``n_outputs`` neurons are the outputs (the default loss is their squared error).

    >>> net = random_recurrent(6, 2, seed=1)
    >>> net.is_feedforward, net.inputs, net.outputs
    (False, (1, 2), (6,))
    """
    if n <= n_inputs + 1 or n_inputs < 1:
        raise DeclarationError(f"{n} neurons with {n_inputs} inputs leave no cycle",
                               fix="use n > n_inputs + 1 >= 2")
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(1, n + 1))
    inputs = list(range(1, n_inputs + 1))
    for j in range(n_inputs + 1, n + 1):
        for i in range(1, n + 1):
            if (i != j or self_loops) and rng.random() < density:
                g.add_edge(i, j)
        if not any(i in inputs for i in g.predecessors(j)):
            g.add_edge(int(rng.integers(1, n_inputs + 1)), j)
    if nx.is_directed_acyclic_graph(g):
        ring = list(range(n_inputs + 1, n + 1))
        g.add_edges_from(zip(ring, ring[1:] + ring[:1]))
    return Network(g, inputs, activation, outputs=range(n - n_outputs + 1, n + 1))
