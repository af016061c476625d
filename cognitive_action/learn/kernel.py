"""The backprop limit (eq. 15-17) of the derived system, compiled once per problem.

At a state consistent with the constraints and at rest, eq. (10) multiplied by ``m_x``
reads ``(J_x J_xᵀ + r J_W J_Wᵀ) δ = J_x f_x`` with ``r = m_x/m_W``
(:mod:`cognitive_action.verify.laws`). Its leading order ``r → 0`` is the triangular
system ``J_xᵀ δ = f_x = -V_x`` and the weight law ``γ Ẇ = -δ_j G^j_W``. With the neuron
templates ``G^j = g_j(ξ_j, a_j)`` of :mod:`cognitive_action.derive.network` (one per
activation), ``J_x = diag(g_ξ) + diag(g_a) W`` and ``G^j_{w_jk} = g_a x_k``, so per
sample:

1. forward: ``x_j = σ_j(a_j)`` with ``σ_j`` solved from neuron ``j``'s template
   (``g(σ(a), a) = 0`` for ``g = ξ - σ(a)``), level by level of the graph;
2. ``T δ = f`` with ``T = J_xᵀ`` upper triangular in network order, solved by back
   substitution level by level: ``g_ξ δ_k = f_k - Σ_j g_a(j) w_jk δ_j``;
3. ``Ẇ_jk = -(1/γ) δ_j g_a(j) x_k``.

``g_ξ``, ``g_a`` and ``f = F_x/ϖ = -V_x`` are the derived system's own templates and
loss gradient (:class:`~cognitive_action.derive.network.NetworkSystem`), lambdified once
with NumPy; nothing here is a hand-written gradient. ``g_a`` is evaluated on the
constraint manifold, with ``σ(a)`` replaced by ``ξ`` where it occurs
(``tanh(a)² - 1 → ξ² - 1``), which is exact when ``G = 0``.

Inputs are read from their constraints ``G^i = x_i - e_i``: an input clamped to its
signal ``e_i`` takes the sample's value; one clamped to a constant (the bias unit
``G^b = x_b - 1`` of ``Network(..., bias=True)``) is a *constant unit* whose arcs are
ordinary weights, kept as blocks of their own (a bias vector per level).

A loss whose gradient couples the outputs (softmax + cross-entropy:
``f_k = y_k - (Σ_i y_i) exp(x_k - LogSumExp(x))``) is evaluated as shared aggregates
(``LogSumExp(x)``, ``Σ y``; common subexpressions of the derived gradient, computed once
per sample) and one elementwise template over the outputs.

The graph is split into levels (longest path from the data inputs); the outputs of the
data inputs and of the levels are one flat vector, level after level. The weights into
a level are one dense block over the flat range of its source levels (with a mask of
the arcs where the range has no arc), plus one block from the constant units, so a
layered net costs two matrix products per layer, as plain backprop does, and a deep
DAG (skip arcs, a complete DAG) one per level; the back substitution accumulates
``Σ_j g_a(j) w_jk δ_j`` in one flat vector. Within a level, neurons are grouped by
template: a layered net with one activation per layer applies one vectorized ``σ``
and one ``g_a`` per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from cognitive_action.declare.network import Network
from cognitive_action.declare.problem import Problem
from cognitive_action.declare.symbols import substitute, t
from cognitive_action.derive.network import XI, A, NetworkSystem, NeuronTemplate, derive_network
from cognitive_action.errors import DerivationError, ShapeError

__all__ = ["LimitKernel", "NeuronLaw", "compile_limit_law"]

_Y = sp.Symbol("upsilon_target", real=True)
#: ``outer(u, v)[i, j] = u[i] v[j]`` for vectors, as the ufunc (cheaper per call than
#: ``np.outer``, the same numbers).
_outer = np.multiply.outer


@dataclass(frozen=True)
class _Block:
    """Arcs into level ``tgt``: rows are its neurons; columns the flat range
    ``[lo, hi)`` of the lower levels (or, for ``constant``, the constant units)."""

    tgt: int
    lo: int
    hi: int
    constant: bool
    mask: np.ndarray          # bool, shape (n_tgt, hi - lo)
    full: bool                # every entry is an arc (no masking needed)
    rows: np.ndarray          # per arc in net.weights order: row in the block
    cols: np.ndarray
    arcs: np.ndarray          # indices into net.weights


@dataclass(frozen=True)
class NeuronLaw:
    """One neuron template solved for the forward pass and its slope, lambdified.

    Attributes
    ----------
    template
        The derived :class:`~cognitive_action.derive.network.NeuronTemplate`.
    sigma_expr
        ``σ(a)``, the solution of ``g(ξ, a) = 0`` for ``ξ``.
    g_a_expr
        ``∂g/∂a`` on the manifold: a function of ``ξ`` when ``slope_in_x``, else of
        ``a``.
    slope_in_x
        Whether ``g_a_expr`` is evaluated at the outputs ``ξ`` (else at the net inputs).
    sigma, g_a
        Their NumPy forms (``lambdify``), elementwise.
    """

    template: NeuronTemplate
    sigma_expr: sp.Expr
    g_a_expr: sp.Expr
    slope_in_x: bool
    sigma: Callable[[np.ndarray], np.ndarray]
    g_a: Callable[[np.ndarray], np.ndarray]


def _neuron_law(tpl: NeuronTemplate) -> NeuronLaw:
    if sp.simplify(tpl.g_xi - 1) != 0:
        raise DerivationError(f"the neuron template has g_ξ = {tpl.g_xi}, not 1",
                              fix="the limit law needs instantaneous neurons x = σ(a)")
    sigma = sp.expand(-substitute(tpl.g, {XI: sp.S.Zero}))
    if sigma.has(XI) or sp.simplify(substitute(tpl.g, {XI: sigma})) != 0:
        raise DerivationError("cannot solve the neuron template g(ξ, a) = 0 for ξ",
                              fix="declare neurons as x - σ(a)")
    g_a = tpl.g_a
    on_manifold = g_a.subs(sigma, XI) if sigma.has(A) else g_a
    slope_in_x = not on_manifold.has(A)
    g_a_expr = on_manifold if slope_in_x else g_a
    return NeuronLaw(tpl, sigma, g_a_expr, slope_in_x,
                     sp.lambdify([A], sigma, "numpy"),
                     sp.lambdify([XI] if slope_in_x else [A], g_a_expr, "numpy"))


#: A level's neurons grouped by law: ``(law, None)`` for a whole level, else
#: ``(law, positions in the level)``.
_Groups = list[tuple[NeuronLaw, "np.ndarray | None"]]


class LimitKernel:
    """The per-sample backprop limit of one network problem, compiled once.

    Build it with :func:`compile_limit_law`.

    Attributes
    ----------
    system
        The derived :class:`~cognitive_action.derive.network.NetworkSystem`.
    network
        Its network.
    laws
        One :class:`NeuronLaw` per neuron template of the system (per activation).
    levels
        Neuron indices (network order) of each level; level 0 holds the data inputs.
    start
        Where each level begins in the flat vector of outputs (data inputs first).
    blocks
        Per level, a block over the flat range of its source levels and one from the
        constant units (:meth:`to_blocks` gives the weights in this layout).
    groups
        Per level, its neurons grouped by law: ``(law, None)`` for a whole level, else
        ``(law, positions in the level)``.
    constant_index, constant_values
        The constant units (inputs clamped to a number, such as the bias unit) and
        their values.
    output_index
        Indices of the output neurons (network order).
    loss_expr
        The loss ``V = -F/ϖ`` of the problem, with ``values`` substituted.
    """

    def __init__(self, system: NetworkSystem, values: Mapping[str, float] | None = None
                 ) -> None:
        net: Network = system.network
        if not net.is_feedforward:
            raise DerivationError("the compiled limit law needs a feedforward network",
                                  fix="use the full derived dynamics for nets with cycles")
        self.system, self.network = system, net
        self.laws = [_neuron_law(tpl) for tpl in system.templates]
        order = net.order
        idx = {n: i for i, n in enumerate(order)}
        self.output_index = np.array([idx[o] for o in net.outputs], dtype=np.int64)
        # numbers for the problem's parameters, matched by name (whatever assumptions
        # their symbols carry)
        given = {str(k): float(v) for k, v in (values or {}).items()}
        params = {p: given[p.name] for p in system.problem.parameters if p.name in given}
        constants = self._inputs(system, params)
        self._loss_gradient(system, params)
        self._loss_value(system, params)
        # levels: longest path from the data inputs; constant units stand apart
        depth: dict[Hashable, int] = {}
        for n in order:
            if n in net.inputs:
                if n not in constants:
                    depth[n] = 0
                continue
            preds = [p for p in net.graph.predecessors(n) if p not in constants]
            depth[n] = 1 + max((depth[p] for p in preds), default=0)
        n_levels = 1 + max(depth.values())
        self.levels = [np.array([idx[n] for n in order if depth.get(n, -1) == lv],
                                dtype=np.int64) for lv in range(n_levels)]
        self.constant_index = np.array([idx[n] for n in constants], dtype=np.int64)
        self.constant_values = np.array(list(constants.values()), dtype=float)
        # the data inputs and the computed neurons in one flat vector, level after level
        sizes = [len(lv) for lv in self.levels]
        self.start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flat: dict[Hashable, int] = {}
        for lv, members in enumerate(self.levels):
            for r, i in enumerate(members):
                flat[order[i]] = int(self.start[lv]) + r
        self.n_flat = int(self.start[-1])
        self.blocks = self._make_blocks(net, depth, flat, constants, n_levels)
        self.into: list[list[int]] = [[] for _ in range(n_levels)]
        for i, blk in enumerate(self.blocks):
            self.into[blk.tgt].append(i)
        self.n_weights = len(net.w)
        # per level, its neurons grouped by template
        tindex = system.template_index
        self.groups: list[_Groups] = [[]]
        for lv in range(1, n_levels):
            ids = tindex[self.levels[lv]]
            uniq = list(dict.fromkeys(ids.tolist()))
            if len(uniq) == 1:
                self.groups.append([(self.laws[uniq[0]], None)])
            else:
                self.groups.append([(self.laws[u], np.flatnonzero(ids == u)) for u in uniq])
        # per level, in Python ints: its flat range and its blocks' sources (hot loops)
        st = [int(v) for v in self.start]
        self._plan = [(st[lv], st[lv + 1],
                       [(i, self.blocks[i].constant, self.blocks[i].lo, self.blocks[i].hi)
                        for i in self.into[lv]], self.groups[lv])
                      for lv in range(n_levels)]
        self._updates = [(b.tgt, b.constant, b.lo, b.hi, None if b.full else b.mask)
                         for b in self.blocks]

    def _make_blocks(self, net: Network, depth: Mapping[Hashable, int],
                     flat: Mapping[Hashable, int], constants: Mapping[Hashable, float],
                     n_levels: int) -> list[_Block]:
        """Per level: one block over the flat range of its source levels, and one from
        the constant units if it has arcs from them."""
        const_pos = {n: r for r, n in enumerate(constants)}
        arcs: list[tuple[list, list]] = [([], []) for _ in range(n_levels)]
        for a_i, (j, k) in enumerate(net.w):
            arcs[depth[j]][k in const_pos].append((flat[j] - int(self.start[depth[j]]),
                                                   k, a_i))
        blocks = []
        for lv in range(1, n_levels):
            n_tgt = len(self.levels[lv])
            for is_const, items in ((False, arcs[lv][0]), (True, arcs[lv][1])):
                if not items:
                    continue
                cols_abs = [const_pos[k] if is_const else flat[k] for _, k, _ in items]
                lo, hi = (0, len(constants)) if is_const else (min(cols_abs),
                                                                int(self.start[lv]))
                rows = np.array([r for r, _, _ in items], dtype=np.int64)
                cols = np.array(cols_abs, dtype=np.int64) - lo
                mask = np.zeros((n_tgt, hi - lo), dtype=bool)
                mask[rows, cols] = True
                blocks.append(_Block(lv, lo, hi, is_const, mask, bool(mask.all()), rows,
                                     cols, np.array([a for _, _, a in items], dtype=np.int64)))
        return blocks

    # -- inputs: data signals and constant units ------------------------------------------
    def _inputs(self, system: NetworkSystem, params: Mapping[sp.Symbol, float]
                ) -> dict[Hashable, float]:
        """The constant units ``{neuron: value}``, read from the input constraints
        ``x_i - e_i``; every other input must be clamped to its data signal."""
        net = self.network
        signals = net.input_signals()
        constants: dict[Hashable, float] = {}
        pos = {n: i for i, n in enumerate(net.order)}
        for i in net.inputs:
            clamp = net.x[i] - system.problem.constraints[pos[i]].expr
            if i in signals and clamp == signals[i]:
                continue
            value = substitute(clamp, dict(params))
            if i in signals or not value.is_number:
                raise DerivationError(
                    f"input neuron {i!r} is clamped to {clamp}, neither its data signal "
                    f"{signals.get(i, '(none)')} nor a constant",
                    fix="train on data with the inputs left as signals (do not pass "
                    "inputs= to Network.problem)")
            constants[i] = float(value)
        return constants

    # -- the loss V and its gradient f = F_x/ϖ = -V_x -------------------------------------
    def _outputs_and_targets(self) -> tuple[list[sp.Symbol], list[sp.Symbol]]:
        net = self.network
        targets = net.target_signals()
        return [net.x[o] for o in net.outputs], [targets[o] for o in net.outputs]

    def _check_free(self, exprs: list[sp.Expr], what: str) -> None:
        outs, ys = self._outputs_and_targets()
        free = set().union(*(e.free_symbols for e in exprs)) - set(outs) - set(ys)
        if free:
            raise DerivationError(f"{what} needs values for {sorted(map(str, free))}",
                                  fix="pass them in values= (the limit law takes losses "
                                  "of the outputs and targets, without t)")

    def _loss_gradient(self, system: NetworkSystem, params: Mapping[sp.Symbol, float]
                       ) -> None:
        grad = system.loss_gradient
        outs, ys = self._outputs_and_targets()
        if set(grad) - set(outs):
            raise DerivationError("the loss depends on neurons that are not outputs",
                                  fix="the limit law takes losses of the output neurons")
        exprs = [substitute(grad.get(x, sp.S.Zero), dict(params)) for x in outs]
        self._check_free(exprs, "the loss gradient")
        self.loss_gradient_exprs = exprs
        self.loss_aggregates: list[tuple[sp.Symbol, sp.Expr]] = []
        template = _elementwise(exprs, outs, ys)
        if template is not None:
            f = sp.lambdify([XI, _Y], template, "numpy")
            self._f = f if template.has(XI) and template.has(_Y) else (
                lambda xo, yo: np.asarray(f(xo, yo), dtype=float) * np.ones_like(xo))
            self.loss_gradient_template = template
            return
        # coupled outputs: shared subexpressions once, then one elementwise template
        reps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_s", real=True))
        template = _elementwise(reduced, outs, ys, extra={s for s, _ in reps})
        if template is not None:
            names = [s for s, _ in reps]
            agg = sp.lambdify([outs, ys], [e for _, e in reps], "numpy", cse=True)
            tf = sp.lambdify([XI, _Y, *names], template, "numpy")
            self.loss_aggregates, self.loss_gradient_template = reps, template

            full = template.has(XI) and template.has(_Y)

            def f_coupled(xo: np.ndarray, yo: np.ndarray) -> np.ndarray:
                v = tf(xo, yo, *agg(xo.tolist(), yo.tolist()))
                return v if full else np.asarray(v, dtype=float) * np.ones_like(xo)

            self._f = f_coupled
            return
        fl = sp.lambdify([outs, ys], exprs, "numpy", cse=True)  # any other loss
        self.loss_gradient_template = None
        self._f = lambda xo, yo: np.asarray(fl(xo.tolist(), yo.tolist()), dtype=float)

    def _loss_value(self, system: NetworkSystem, params: Mapping[sp.Symbol, float]) -> None:
        action = system.problem.action
        V = substitute(-action.lagrangian / action.weight, dict(params))  # F = -ϖ V
        if V.has(t):  # a weight SymPy did not cancel by itself, e.g. -(-t - 2)*V/(t + 2)
            V = sp.cancel(V)
        self._check_free([V], "the loss")
        self.loss_expr = V
        outs, ys = self._outputs_and_targets()
        self._V = sp.lambdify([outs, ys], V, "numpy")

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
                ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The flat vector of outputs (data inputs, then level after level) and the net
        inputs per level, for the data input ``e`` (columns: samples)."""
        e = np.asarray(e, dtype=float)
        const = self.constant_values if e.ndim == 1 else self.constant_values[:, None]
        x = np.empty((self.n_flat, *e.shape[1:]))
        plan = self._plan
        x[:plan[0][1]] = e
        As: list[np.ndarray] = [e]
        for lo_l, hi_l, into, groups in plan[1:]:
            (i, is_const, lo, hi), *rest = into
            a = blocks[i] @ (const if is_const else x[lo:hi])
            for i, is_const, lo, hi in rest:
                a = a + blocks[i] @ (const if is_const else x[lo:hi])
            As.append(a)
            if len(groups) == 1:
                x[lo_l:hi_l] = groups[0][0].sigma(a)
            else:
                out = x[lo_l:hi_l]
                for law, sel in groups:
                    out[sel] = law.sigma(a[sel])
        return x, As

    def _slope(self, lv: int, x: np.ndarray, a: np.ndarray) -> np.ndarray:
        groups = self.groups[lv]
        if len(groups) == 1:
            law = groups[0][0]
            return law.g_a(x if law.slope_in_x else a)
        out = np.empty_like(a)
        for law, sel in groups:
            out[sel] = law.g_a(x[sel] if law.slope_in_x else a[sel])
        return out

    def rates(self, blocks: list[np.ndarray], e: np.ndarray, y: np.ndarray, gamma: float = 1.0
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``δ`` per level and ``Ẇ`` per block at the sample ``(e, y)``.

        ``e`` holds the data inputs (``net.input_signals()`` order, no constant units),
        ``y`` the targets of the output neurons (``net.outputs`` order); the output
        level must hold exactly the outputs.
        """
        x, As = self.forward(blocks, e)
        deltas, scaled = self._scaled(blocks, x, As, np.asarray(y, dtype=float))
        w_dot = []
        for b in self.blocks:
            r = _outer(scaled[b.tgt], self._source(b, x)) * (-1.0 / gamma)
            w_dot.append(r if b.full else r * b.mask)
        return deltas, w_dot

    def _source(self, b: _Block, x: np.ndarray) -> np.ndarray:
        return self.constant_values if b.constant else x[b.lo:b.hi]

    def _scaled(self, blocks: list[np.ndarray], x: np.ndarray, As: list[np.ndarray],
                y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Back substitution ``g_ξ δ_k = f_k - Σ_j g_a(j) w_jk δ_j``, level by level from
        the outputs, the sums accumulated in one flat vector: ``δ`` and ``g_a δ`` per
        level."""
        n = len(self.levels)
        deltas: list[np.ndarray] = [np.empty(0)] * n
        scaled: list[np.ndarray] = [np.empty(0)] * n
        acc = np.zeros(self.n_flat)  # Σ_j g_a(j) w_jk δ_j per neuron k
        for lv in range(n - 1, 0, -1):
            lo_l, hi_l, into, groups = self._plan[lv]
            # the outputs (last level) feed no neuron; the others only feed
            d = self._f(x[lo_l:hi_l], y) if lv == n - 1 else -acc[lo_l:hi_l]
            deltas[lv] = d
            if len(groups) == 1:
                law = groups[0][0]
                s = law.g_a(x[lo_l:hi_l] if law.slope_in_x else As[lv]) * d
            else:
                s = self._slope(lv, x[lo_l:hi_l], As[lv]) * d
            scaled[lv] = s
            if lv > 1:
                for i, is_const, lo, hi in into:
                    if not is_const:
                        acc[lo:hi] += blocks[i].T @ s
        return deltas, scaled

    def step(self, blocks: list[np.ndarray], e: np.ndarray, y: np.ndarray,
             learning_rate: float, gamma: float = 1.0) -> None:
        """One sample of the limit law, in place: ``W ← W + η γ Ẇ``.

        ``γ Ẇ = -∂V/∂W`` at the limit, and presenting a sample for a time ``τ``
        integrates ``Ẇ`` by one explicit Euler step, ``ΔW = τ Ẇ``: so ``η = τ/γ`` is
        the SGD learning rate of the law, whatever ``γ`` is. With
        ``Ẇ_jk = -(1/γ) g_a(j) δ_j x_k`` (:meth:`rates`) the update is computed as
        ``W_jk ← W_jk - η g_a(j) δ_j x_k``, one outer product per block.
        """
        x, As = self.forward(blocks, e)
        _, scaled = self._scaled(blocks, x, As, np.asarray(y, dtype=float))
        const = self.constant_values
        for m, (tgt, is_const, lo, hi, mask) in zip(blocks, self._updates):
            r = _outer(scaled[tgt] * -learning_rate, const if is_const else x[lo:hi])
            m += r if mask is None else r * mask

    def predict(self, blocks: list[np.ndarray], X: np.ndarray) -> np.ndarray:
        """Outputs for a batch of data inputs (rows of ``X``)."""
        x, _ = self.forward(blocks, np.asarray(X, dtype=float).T)
        return x[self.start[-2]:].T

    def loss_values(self, outputs: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """The problem's own loss ``V`` per sample, from the outputs (rows: samples)."""
        O, Y = np.asarray(outputs, dtype=float), np.asarray(Y, dtype=float)
        v = self._V(list(O.T), list(Y.T))
        return np.broadcast_to(np.asarray(v, dtype=float), (len(O),)).copy()

    def losses(self, blocks: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Per-sample ``V`` (the problem's loss: squared error, cross-entropy, ...)."""
        return self.loss_values(self.predict(blocks, X), Y)


def _elementwise(exprs: list[sp.Expr], outs: list[sp.Symbol], ys: list[sp.Symbol],
                 extra: set[sp.Symbol] = frozenset()) -> sp.Expr | None:
    """The template ``τ(ξ, υ, extra)`` with ``exprs[k] = τ(x_k, y_k, extra)`` for every
    output ``k``, or ``None`` if the expressions are not one elementwise template."""
    template = substitute(exprs[0], {outs[0]: XI, ys[0]: _Y})
    if not template.free_symbols <= {XI, _Y} | set(extra):
        return None
    for x, y, e in zip(outs, ys, exprs):
        if sp.expand(substitute(template, {XI: x, _Y: y}) - e) != 0:
            return None
    return template


def compile_limit_law(problem: Problem | NetworkSystem,
                      values: Mapping[str, float] | None = None) -> LimitKernel:
    """Build the per-sample backprop-limit update of a network problem, once.

    Parameters
    ----------
    problem
        A problem built by ``Network.problem`` (or its derived system): any
        feedforward graph, per-neuron activations, a bias unit, any loss of the outputs
        (squared error, softmax cross-entropy, ...).
    values
        Numbers for parameters of the loss, if any.

    Raises
    ------
    DerivationError
        For recurrent nets, neurons that are not ``x = σ(a)``, losses of hidden
        neurons, inputs clamped to expressions of ``t``.

    Examples
    --------
    >>> from cognitive_action.declare.network import layered
    >>> net = layered([2, 3, 2], output_activation="identity", bias=True)
    >>> k = compile_limit_law(net.problem(loss="softmax_cross_entropy"))
    >>> [law.sigma_expr for law in k.laws], k.constant_values.tolist()
    ([tanh(a), a], [1.0])
    >>> k.loss_aggregates  # computed once per sample, shared by the outputs
    [(_s0, -y6 - y7), (_s1, -LogSumExp(x6, x7))]
    >>> k.loss_gradient_template  # f_k = -∂V/∂x_k, elementwise in (x_k, y_k)
    _s0*exp(_s1 + xi) + upsilon_target
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
