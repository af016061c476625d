"""The backprop limit (eq. 15-17) of the derived system, compiled once per problem.

At a state consistent with the constraints and at rest, eq. (10) multiplied by ``m_x``
reads ``(J_x J_xᵀ + r J_W J_Wᵀ) δ = J_x f_x`` with ``r = m_x/m_W``
(:mod:`cognitive_action.verify.laws`). Its leading order ``r → 0`` is the triangular
system ``J_xᵀ δ = f_x = -V_x`` and the weight law ``γ Ẇ = -δ_j G^j_W``. With the neuron
template ``G^j = g(ξ_j, a_j)`` of :mod:`cognitive_action.derive.network`,
``J_x = diag(g_ξ) + diag(g_a) W`` and ``G^j_{w_jk} = g_a x_k``, so per sample:

1. forward: ``x_j = σ(a_j)`` with ``σ`` solved from the template (``g(σ(a), a) = 0``
   for ``g = ξ - σ(a)``), level by level of the graph;
2. ``T δ = -V_x`` with ``T = J_xᵀ`` upper triangular in network order, solved by back
   substitution level by level: ``g_ξ δ_k = f_k - Σ_j g_a(j) w_jk δ_j``;
3. ``Ẇ_jk = -(1/γ) δ_j g_a(j) x_k``.

``g_ξ``, ``g_a`` and ``f = F_x/ϖ`` are the derived system's own templates
(:class:`~cognitive_action.derive.network.NetworkSystem`), lambdified once with NumPy;
nothing here is a hand-written gradient. ``g_a`` is evaluated on the constraint
manifold, with ``σ(a)`` replaced by ``ξ`` where it occurs (``tanh(a)² - 1 → ξ² - 1``),
which is exact when ``G = 0``.

The graph is split into levels (longest path from the inputs); weights are kept as one
dense block per pair of levels that has arcs, with a mask of the arcs, so a layered net
costs two matrix products per layer, as plain backprop does.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import substitute
from cognitive_action.derive.network import XI, A, NetworkSystem, derive_network
from cognitive_action.errors import DerivationError, ShapeError

__all__ = ["LimitKernel", "compile_limit_law"]

_Y = sp.Symbol("upsilon_target", real=True)


@dataclass(frozen=True)
class _Block:
    """Arcs from level ``src`` into level ``tgt``: dense rows ``tgt`` × cols ``src``."""

    tgt: int
    src: int
    mask: np.ndarray          # bool, shape (n_tgt, n_src)
    rows: np.ndarray          # per arc in net.weights order: row in the block
    cols: np.ndarray
    arcs: np.ndarray          # indices into net.weights


class LimitKernel:
    """The per-sample backprop limit of one network problem, compiled once.

    Build it with :func:`compile_limit_law`.

    Attributes
    ----------
    system
        The derived :class:`~cognitive_action.derive.network.NetworkSystem`.
    network
        Its network.
    levels
        Neuron indices (network order) of each level; level 0 holds the inputs.
    output_index
        Indices of the output neurons (network order).
    """

    def __init__(self, system: NetworkSystem, values: Mapping[str, float] | None = None
                 ) -> None:
        net: Network = system.network
        if not net.is_feedforward:
            raise DerivationError("the compiled limit law needs a feedforward network",
                                  fix="use the full derived dynamics for nets with cycles")
        self.system, self.network = system, net
        if len(system.templates) != 1:
            raise DerivationError(
                f"the compiled limit law takes one activation for the whole net; this one "
                f"has {len(system.templates)} (per-layer activations, biases' units)",
                fix="train a net with one activation (layered(sizes, activation=...)) for "
                "now; verify() and backprop_rates handle mixed nets")
        tpl = system.template
        if sp.simplify(tpl.g_xi - 1) != 0:
            raise DerivationError(f"the neuron template has g_ξ = {tpl.g_xi}, not 1",
                                  fix="the limit law needs instantaneous neurons x = σ(a)")
        sigma = sp.expand(-substitute(tpl.g, {XI: sp.S.Zero}))
        if sigma.has(XI) or sp.simplify(substitute(tpl.g, {XI: sigma})) != 0:
            raise DerivationError("cannot solve the neuron template g(ξ, a) = 0 for ξ",
                                  fix="declare neurons as x - σ(a)")
        g_a = tpl.g_a
        on_manifold = g_a.subs(sigma, XI) if sigma.has(A) else g_a
        self._slope_in_x = not on_manifold.has(A)
        g_a_expr = on_manifold if self._slope_in_x else g_a
        self._sigma = sp.lambdify([A], sigma, "numpy")
        self._g_a = sp.lambdify([XI] if self._slope_in_x else [A], g_a_expr, "numpy")
        self.sigma_expr, self.g_a_expr = sigma, g_a_expr
        order = net.order
        idx = {n: i for i, n in enumerate(order)}
        self.output_index = np.array([idx[o] for o in net.outputs], dtype=np.int64)
        self._loss_gradient(system, values or {})
        # levels: longest path from the inputs
        depth: dict[Hashable, int] = {}
        for n in order:
            preds = list(net.graph.predecessors(n))
            depth[n] = 0 if n in net.inputs else 1 + max(depth[p] for p in preds)
        n_levels = 1 + max(depth.values())
        self.levels = [np.array([idx[n] for n in order if depth[n] == lv], dtype=np.int64)
                       for lv in range(n_levels)]
        pos = {n: (depth[n], int(np.flatnonzero(self.levels[depth[n]] == idx[n])[0]))
               for n in order}
        grouped: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for a_i, (j, k) in enumerate(net.w):
            (lj, rj), (lk, rk) = pos[j], pos[k]
            grouped.setdefault((lj, lk), []).append((rj, rk, a_i))
        self.blocks: list[_Block] = []
        for (lj, lk), items in sorted(grouped.items()):
            arr = np.array(items, dtype=np.int64)
            mask = np.zeros((len(self.levels[lj]), len(self.levels[lk])), dtype=bool)
            mask[arr[:, 0], arr[:, 1]] = True
            self.blocks.append(_Block(lj, lk, mask, arr[:, 0], arr[:, 1], arr[:, 2]))
        self.into = [[(i, b.src) for i, b in enumerate(self.blocks) if b.tgt == lv]
                     for lv in range(n_levels)]
        self.out_of = [[(i, b.tgt) for i, b in enumerate(self.blocks) if b.src == lv]
                       for lv in range(n_levels)]
        self.dense = all(b.mask.all() for b in self.blocks)
        self.n_weights = len(net.w)

    # -- the loss gradient f = F_x/ϖ = -V_x --------------------------------------------
    def _loss_gradient(self, system: NetworkSystem, values: Mapping[str, float]) -> None:
        net = self.network
        targets = net.target_signals()
        grad = system.loss_gradient
        outs = [net.x[o] for o in net.outputs]
        if set(grad) - set(outs):
            raise DerivationError("the loss depends on neurons that are not outputs",
                                  fix="the limit law takes losses of the output neurons")
        params = {sp.Symbol(k, real=True): float(v) for k, v in values.items()}
        exprs = [substitute(grad.get(x, sp.S.Zero), params) for x in outs]
        o0 = net.outputs[0]
        template = substitute(exprs[0], {net.x[o0]: XI, targets[o0]: _Y})
        same = all(sp.expand(substitute(template, {XI: net.x[o], _Y: targets[o]}) - e) == 0
                   for o, e in zip(net.outputs, exprs))
        allowed = set(outs) | set(targets.values())
        free = set().union(*(e.free_symbols for e in exprs)) - allowed
        if free:
            raise DerivationError(f"the loss needs values for {sorted(map(str, free))}",
                                  fix="pass them in values=")
        if same:
            f = sp.lambdify([XI, _Y], template, "numpy")
            self._f = lambda xo, yo: np.asarray(f(xo, yo), dtype=float) * np.ones_like(xo)
        else:
            ys = [targets[o] for o in net.outputs]
            fl = sp.lambdify([outs, ys], exprs, "numpy")
            self._f = lambda xo, yo: np.asarray(fl(list(xo), list(yo)), dtype=float)

    # -- weights ----------------------------------------------------------------------
    def to_blocks(self, w: np.ndarray) -> list[np.ndarray]:
        """Weights in ``net.weights`` order → one dense array per block."""
        w = np.asarray(w, dtype=float)
        if w.shape != (self.n_weights,):
            raise ShapeError(f"{w.shape} weights for {self.n_weights} arcs",
                             fix="give one weight per arc, in net.weights order")
        out = []
        for b in self.blocks:
            m = np.zeros(b.mask.shape)
            m[b.rows, b.cols] = w[b.arcs]
            out.append(m)
        return out

    def from_blocks(self, blocks: list[np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`to_blocks`."""
        w = np.zeros(self.n_weights)
        for b, m in zip(self.blocks, blocks):
            w[b.arcs] = m[b.rows, b.cols]
        return w

    # -- one sample ---------------------------------------------------------------------
    def forward(self, blocks: list[np.ndarray], e: np.ndarray
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Outputs and net inputs per level for the input ``e`` (columns: samples)."""
        xs = [np.asarray(e, dtype=float)]
        As = [xs[0]]
        for lv in range(1, len(self.levels)):
            (i0, s0), *rest = self.into[lv]
            a = blocks[i0] @ xs[s0]
            for i, s in rest:
                a = a + blocks[i] @ xs[s]
            As.append(a)
            xs.append(self._sigma(a))
        return xs, As

    def rates(self, blocks: list[np.ndarray], e: np.ndarray, y: np.ndarray, gamma: float = 1.0
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``δ`` per level and ``Ẇ`` per block at the sample ``(e, y)``.

        ``y`` is the target of the output neurons (``net.outputs`` order); the output
        level must hold exactly the outputs.
        """
        xs, As = self.forward(blocks, e)
        return self._backward(blocks, xs, As, y, gamma)

    def _backward(self, blocks: list[np.ndarray], xs: list[np.ndarray],
                  As: list[np.ndarray], y: np.ndarray, gamma: float
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        n = len(self.levels)
        deltas: list[np.ndarray] = [np.empty(0)] * n
        scaled: list[np.ndarray] = [np.empty(0)] * n
        for lv in range(n - 1, 0, -1):
            f = self._f(xs[lv], y) if lv == n - 1 else 0.0
            d = np.zeros(len(self.levels[lv])) + f
            for i, tgt in self.out_of[lv]:
                d = d - blocks[i].T @ scaled[tgt]
            deltas[lv] = d
            scaled[lv] = self._g_a(xs[lv] if self._slope_in_x else As[lv]) * d
        w_dot = []
        for b in self.blocks:
            r = np.outer(scaled[b.tgt], xs[b.src]) * (-1.0 / gamma)
            w_dot.append(r if self.dense else r * b.mask)
        return deltas, w_dot

    def step(self, blocks: list[np.ndarray], e: np.ndarray, y: np.ndarray,
             learning_rate: float, gamma: float = 1.0) -> None:
        """One sample of the limit law, in place: ``W ← W + η γ Ẇ``.

        ``γ Ẇ = -∂V/∂W`` at the limit, and presenting a sample for a time ``τ``
        integrates ``Ẇ`` by one explicit Euler step, ``ΔW = τ Ẇ``: so ``η = τ/γ`` is
        the SGD learning rate of the law, whatever ``γ`` is.
        """
        _, w_dot = self.rates(blocks, e, y, gamma)
        k = learning_rate * gamma
        for m, r in zip(blocks, w_dot):
            m += k * r

    def predict(self, blocks: list[np.ndarray], X: np.ndarray) -> np.ndarray:
        """Outputs for a batch of inputs (rows of ``X``)."""
        xs, _ = self.forward(blocks, np.asarray(X, dtype=float).T)
        return xs[-1].T

    def losses(self, blocks: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Per-sample ``V`` for squared-error-like losses: ``½|x_out - y|²``."""
        out = self.predict(blocks, X)
        return 0.5 * np.sum((out - Y) ** 2, axis=1)


def compile_limit_law(problem: Problem | NetworkSystem,
                      values: Mapping[str, float] | None = None) -> LimitKernel:
    """Build the per-sample backprop-limit update of a network problem, once.

    Parameters
    ----------
    problem
        A problem built by ``Network.problem`` (or its derived system).
    values
        Numbers for parameters of the loss, if any.

    Raises
    ------
    DerivationError
        For recurrent nets, neurons that are not ``x = σ(a)``, or losses of hidden
        neurons.
    """
    system = problem if isinstance(problem, NetworkSystem) else derive_network(problem)
    kernel = LimitKernel(system, values)
    if len(kernel.levels[-1]) != len(kernel.output_index) or set(
            kernel.levels[-1].tolist()) != set(kernel.output_index.tolist()):
        raise DerivationError("the last level of the graph is not exactly the output layer",
                              fix="the compiled limit law needs outputs on the last level")
    # the output level's order must match net.outputs
    if not np.array_equal(kernel.levels[-1], kernel.output_index):
        raise DerivationError("outputs are not in network order",
                              fix="list the outputs in the order of the network")
    return kernel
