"""Neural networks on digraphs as constraints: eq. (4), and the neuron of eq. (18).

A :class:`Network` takes a digraph ``D = (V, A)`` and a list of input neurons. Each
neuron ``j`` has an output coordinate ``x_j``; each arc ``k → j`` a weight
coordinate ``w_j_k`` (row ``j`` of ``W`` is the target, as in the paper's
``x^3 = σ(w_31 x^1 + w_32 x^2)``). The constraints are eq. (4):

    G^j = x_j - e_j(t)                     for input neurons,
    G^j = x_j - σ(Σ_k w_jk x_k)             otherwise,

or, with a finite diffusion speed ``c``, the non-holonomic neuron (18)-(19):

    G^j = c⁻¹ ẋ_j + x_j - σ(Σ_k w_jk x_k).

Examples
--------
>>> net = xor()
>>> [str(c.expr) for c in net.constraints()][2]
'x3 - tanh(w3_1*x1 + w3_2*x2)'
>>> net.is_feedforward, net.order
(True, (1, 2, 3, 4, 5))
>>> layered([2, 3, 1]).weight_matrix().shape
(6, 6)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import networkx as nx
import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.core.mul import _mulsort

from cognitive_action.declare.activations import Activation, activation
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.declare.roles import RoleKind
from cognitive_action.declare.symbols import (
    SUFFIXES,
    check_name,
    dot,
    gc_paused,
    substitute,
    symbol,
    symbols_bulk,
    t,
)
from cognitive_action.errors import DeclarationError, GraphError, ShapeError

__all__ = ["Network", "layered", "xor", "chain", "squared_error", "softmax_cross_entropy",
           "LogSumExp", "LOSSES", "BIAS", "MASS_X", "MASS_W"]

#: Default mass symbols of neuron outputs and weights (eq. 5).
MASS_X = sp.Symbol("m_x", positive=True)
MASS_W = sp.Symbol("m_W", positive=True)
_Z = sp.Symbol("_z", real=True)


def _label(node: Hashable) -> str:
    s = str(node)
    if not s.replace("_", "").isalnum():
        raise GraphError(f"neuron label {node!r} cannot be used in a name",
                         fix="label neurons with integers or identifiers")
    return s


def _check_unique_names(named: Mapping, what: str, prefix: str) -> None:
    seen: dict[sp.Symbol, Hashable] = {}
    for key, sym in named.items():
        if sym in seen:
            raise GraphError(
                f"{what} {seen[sym]!r} and {key!r} both get the name {sym}",
                fix=f"relabel neurons so that the names {prefix}<label> (and "
                "w<target>_<source>) are distinct, e.g. with integers only")
        seen[sym] = key


def _alike(a: sp.Basic, b: sp.Basic) -> bool:
    """Whether ``a`` and ``b`` are plain symbols of one class with the same assumptions:
    SymPy's canonical order (``Basic.compare``) then sorts them by name."""
    return type(a) is sp.Symbol and type(b) is sp.Symbol \
        and a._assumptions0 == b._assumptions0


def _product(w: sp.Symbol, x: sp.Symbol) -> sp.Expr:
    """``w*x`` for two symbols without ``Mul``'s general flattening (which dominates
    declaring a dense network; docs/performance.md); the same canonical object, since the
    arguments are sorted as ``Mul`` sorts them."""
    if w == x:
        return w**2
    if _alike(w, x):
        args = [w, x] if w.name < x.name else [x, w]
    else:
        args = [w, x]
        _mulsort(args)
    return sp.Mul._from_args(args, is_commutative=True)


def _sum_of_products(pairs: Sequence[tuple[sp.Symbol, sp.Symbol]]) -> sp.Expr:
    """``Σ w x`` over symbol pairs: the object ``sp.Add(*(w*x for w, x in pairs))``.

    When every factor is a plain symbol with the same assumptions and the products are
    distinct, SymPy's canonical order of the terms (``Basic.compare`` on products of
    two symbols) is the order of the factors' names, so the sum is assembled directly
    (``Add.flatten`` compares terms pairwise, the cost that dominated declaring a dense
    network); otherwise ``sp.Add`` builds it.

    >>> a, b, c = (symbol(n) for n in ("a", "b", "c"))
    >>> _sum_of_products([(c, a), (b, a)]) == sp.Add(c * a, b * a)
    True
    """
    if len(pairs) < 2:
        return sp.Add(*(_product(w, x) for w, x in pairs))
    first = pairs[0][0]
    a0 = first._assumptions0 if type(first) is sp.Symbol else None
    keyed = []
    for w, x in pairs:
        if type(w) is not sp.Symbol or type(x) is not sp.Symbol or w is x or \
                w._assumptions0 != a0 or x._assumptions0 != a0 or w.name == x.name:
            return sp.Add(*(_product(w_, x_) for w_, x_ in pairs))
        keyed.append((w.name, x.name, w, x) if w.name < x.name else (x.name, w.name, x, w))
    keyed.sort(key=itemgetter(0, 1))
    for r, s in zip(keyed, keyed[1:]):
        if r[0] == s[0] and r[1] == s[1]:  # a repeated product: let Add collect it
            return sp.Add(*(_product(w_, x_) for w_, x_ in pairs))
    mul = sp.Mul._from_args
    terms = [mul((r[2], r[3]), is_commutative=True) for r in keyed]
    return sp.Add._exec_constructor_postprocessors(sp.Add._from_args(terms,
                                                                     is_commutative=True))


_BASIC_FREE_SYMBOLS = sp.Basic.__dict__["free_symbols"]
_PLAIN_FREE_SYMBOLS: dict[type, bool] = {}


def _plain_free_symbols(cls: type) -> bool:
    """Whether instances of ``cls`` have ``Basic``'s ``free_symbols`` (the union of
    their arguments'), looked up in the class's own MRO (``type(e).free_symbols`` would
    find the metaclass property of function classes)."""
    hit = _PLAIN_FREE_SYMBOLS.get(cls)
    if hit is None:
        owner = next(k for k in cls.__mro__ if "free_symbols" in k.__dict__)
        hit = _PLAIN_FREE_SYMBOLS[cls] = owner.__dict__["free_symbols"] is _BASIC_FREE_SYMBOLS
    return hit


def _free_symbols(expr: sp.Basic, part: sp.Basic, part_symbols: frozenset[sp.Symbol]
                  ) -> frozenset[sp.Symbol] | None:
    """``expr.free_symbols``, taking those of the subexpression ``part`` (found by
    identity) as ``part_symbols`` instead of walking it: a neuron's constraint is a small
    template around its net input, whose symbols the network knows.

    Nodes whose class defines its own ``free_symbols`` (symbols, bound variables of
    integrals) answer for themselves; the others are the union of their arguments', as
    ``Basic.free_symbols`` is. None when ``expr`` is not in jet form (a function of time
    or a derivative in an activation of one's own): ``Problem`` then scans it.

    >>> x, y, z = sp.symbols("x y z")
    >>> a = y + z
    >>> sorted(_free_symbols(x - sp.tanh(a), a, frozenset({y, z})), key=str)
    [x, y, z]
    >>> _free_symbols(x - sp.Function("f")(t) * a, a, frozenset({y, z})) is None
    True
    """
    out: set[sp.Symbol] = set()
    stack, seen = [expr], set()
    while stack:
        e = stack.pop()
        if e is part:
            out |= part_symbols
        elif isinstance(e, (AppliedUndef, sp.Derivative)):
            return None
        elif not _plain_free_symbols(type(e)):
            out |= e.free_symbols
        elif id(e) not in seen:
            seen.add(id(e))
            stack.extend(e.args)
    return frozenset(out)


#: Label of the constant unit that :class:`Network` adds for biases (``bias=True``).
BIAS = "b"


def squared_error(outputs: Sequence[sp.Expr], targets: Sequence[sp.Expr]) -> sp.Expr:
    """The loss ``V = ½ Σ_i (x_i - y_i)²`` of Section 3."""
    return sp.Add(*((x - y) ** 2 for x, y in zip(outputs, targets))) / 2


def _lse(values: Sequence[float]) -> float:
    m = max(values)
    return m + math.log(math.fsum(math.exp(v - m) for v in values))


class LogSumExp(sp.Function):
    """``log Σ_k exp(z_k)``, kept unevaluated so that every numeric path computes it in
    the overflow-free form ``m + log Σ_k exp(z_k - m)``, ``m = max_k z_k``.

    Its derivatives are the softmax, ``∂/∂z_k = exp(z_k - LogSumExp(z))``, so the
    derived equations never contain ``exp(z_k)`` alone. CasADi
    (:mod:`cognitive_action.compile.translate`), NumPy (``lambdify``) and ``evalf`` use
    the stable form.

    Examples
    --------
    >>> z1, z2 = sp.symbols("z1 z2")
    >>> sp.diff(LogSumExp(z1, z2), z1)
    exp(z1 - LogSumExp(z1, z2))
    >>> float(LogSumExp(sp.Float(1000), sp.Float(1000)))  # exp(1000) would overflow
    1000.6931471805599
    >>> f = sp.lambdify([z1, z2], LogSumExp(z1, z2), "numpy")
    >>> float(f(1000.0, 1000.0))
    1000.6931471805599
    """

    nargs = None  # any number of arguments (at least one)

    @classmethod
    def eval(cls, *args: sp.Expr) -> sp.Expr | None:  # safe: SymPy's Function.eval hook
        if not args:
            raise DeclarationError("LogSumExp needs at least one argument",
                                   fix="pass the output neurons' symbols")
        if len(args) == 1:
            return args[0]
        if all(a.is_Float for a in args):
            return sp.Float(_lse([float(a) for a in args]))
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        vals = [a.evalf(prec) for a in self.args]
        if all(v.is_Float for v in vals):
            return sp.Float(_lse([float(v) for v in vals]), prec)
        return None

    def _eval_is_real(self) -> bool | None:
        return True if all(a.is_real for a in self.args) else None

    @staticmethod
    def _imp_(*args: Any) -> Any:
        """The stable form for ``lambdify``: NumPy on numbers and arrays; on expressions
        with ``fmax``/``exp``/``log`` methods (CasADi), those methods."""
        if any(hasattr(a, "fmax") for a in args):
            m = next(a for a in args if hasattr(a, "fmax"))
            for a in args:
                m = m.fmax(a)
            total = sum((a - m).exp() for a in args)
            return m + total.log()
        import numpy as np

        if all(isinstance(a, (float, int, np.floating, np.integer)) for a in args):
            return _lse([float(a) for a in args])  # scalars: no array round trip
        z = np.stack(np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args)))
        m = z.max(axis=0)
        return m + np.log(np.exp(z - m).sum(axis=0))


def softmax_cross_entropy(outputs: Sequence[sp.Expr], targets: Sequence[sp.Expr]) -> sp.Expr:
    """Cross-entropy of the softmax of the outputs against targets.

    ``V = -Σ_k y_k log softmax(x)_k = (Σ_k y_k) LogSumExp(x) - Σ_k y_k x_k``, with ``x``
    the output neurons read as logits (give the output layer the identity activation,
    e.g. ``layered(..., output_activation="identity")``). Softmax is not elementwise, so
    it enters as this loss, not as an activation. For targets that sum to one (one-hot
    labels, probabilities) ``∂V/∂x_k = softmax(x)_k - y_k``.

    Examples
    --------
    >>> x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2")
    >>> softmax_cross_entropy([x1, x2], [y1, y2])
    -x1*y1 - x2*y2 + (y1 + y2)*LogSumExp(x1, x2)
    """
    if len(outputs) != len(targets) or not outputs:
        raise ShapeError(f"{len(outputs)} outputs for {len(targets)} targets",
                         fix="give one target per output neuron (at least one)")
    total = sp.Add(*targets)
    return total * LogSumExp(*outputs) - sp.Add(*(y * x for x, y in zip(outputs, targets)))


#: Named output losses of :meth:`Network.problem` (``loss="..."``).
LOSSES = {"squared": squared_error, "softmax_cross_entropy": softmax_cross_entropy}


class Network:
    """A neural network on a digraph, as constraints on outputs and weights.

    Parameters
    ----------
    graph
        A ``networkx.DiGraph`` (or anything ``nx.DiGraph`` accepts, e.g. an edge list).
        Cycles and self-loops are allowed.
    inputs
        The input neurons (no incoming arcs allowed).
    activation
        ``"tanh"``, ``"logistic"``, ``"identity"``, ``"softplus"``, an
        :class:`~cognitive_action.declare.activations.Activation`, or a callable: the
        activation of every non-input neuron not named in ``activations``.
    activations
        Per-neuron overrides ``{neuron: activation}`` (e.g. an identity output layer).
    bias
        Add a constant unit :data:`BIAS` (``"b"``): an input neuron clamped to 1,
        ``G^b = x_b - 1`` (eq. 4 with ``e_b = 1``), with an arc to every other non-input
        neuron. Biases are then the ordinary weights ``w<j>_b``, learned by the same
        law.
    speed
        ``None`` for the instantaneous neuron of eq. (4); a number or symbol ``c`` for
        the non-holonomic neuron (18) (inputs stay holonomic).
    outputs
        Output neurons; default: neurons without outgoing arcs.

    Raises
    ------
    GraphError
        An arc into an input neuron, an unknown input, an empty graph, an activation
        override for an unknown or input neuron, a neuron already labelled ``"b"`` with
        ``bias=True``.

    Examples
    --------
    >>> net = Network([(1, 2), (2, 3)], [1], activations={3: "identity"}, bias=True)
    >>> net.inputs
    (1, 'b')
    >>> [str(c.expr) for c in net.constraints()]
    ['-e1 + x1', 'xb - 1', 'x2 - tanh(w2_1*x1 + w2_b*xb)', '-w3_2*x2 - w3_b*xb + x3']
    >>> net.activation_of(3).name, net.is_uniform
    ('identity', False)
    """

    def __init__(self, graph: nx.DiGraph | Iterable[tuple[Hashable, Hashable]],
                 inputs: Iterable[Hashable], activation: str | Activation = "tanh", *,
                 activations: Mapping[Hashable, str | Activation] | None = None,
                 bias: bool = False,
                 speed: sp.Expr | float | None = None,
                 outputs: Iterable[Hashable] | None = None) -> None:
        g = graph if isinstance(graph, nx.DiGraph) else nx.DiGraph(list(graph))
        if g.number_of_nodes() == 0:
            raise GraphError("the graph has no neurons", fix="add nodes and arcs")
        self.inputs = tuple(inputs)
        self.bias: Hashable | None = None
        if bias:
            if BIAS in g:
                raise GraphError(f"the graph already has a neuron {BIAS!r}, the label of the "
                                 "bias unit", fix="relabel that neuron, or add the constant "
                                 "unit yourself as an input clamped to 1")
            g = g.copy()
            g.add_node(BIAS)
            data_inputs = set(self.inputs)
            g.add_edges_from((BIAS, j) for j in list(g.nodes)
                             if j != BIAS and j not in data_inputs)
            self.bias = BIAS
            self.inputs = (*self.inputs, BIAS)
        self.graph = g
        for i in self.inputs:
            if i not in g:
                raise GraphError(f"input neuron {i!r} is not in the graph",
                                 fix=f"choose inputs among {list(g.nodes)[:8]}")
            preds = list(g.predecessors(i))
            if preds:
                raise GraphError(
                    f"arc {preds[0]!r} -> {i!r} enters the input neuron {i!r}",
                    fix="input neurons are clamped to e(t) (eq. 4) and take no arcs; remove "
                    "the arc or do not declare the neuron an input")
        self.default_activation = _resolve(activation)
        self._activations: dict[Hashable, Activation] = {}
        for j, spec in (activations or {}).items():
            if j not in g:
                raise GraphError(f"activation given for neuron {j!r}, which is not in the "
                                 "graph", fix=f"choose neurons among {list(g.nodes)[:8]}")
            if j in self.inputs:
                raise GraphError(f"activation given for the input neuron {j!r}",
                                 fix="input neurons are clamped (eq. 4) and have no "
                                 "activation; remove it from activations")
            act = _resolve(spec)
            if act != self.default_activation:
                self._activations[j] = act
        self._sigma_z: dict[Activation, sp.Expr] = {}
        if isinstance(speed, str) or not (speed is None or isinstance(speed, (int, float,
                                                                             sp.Expr))):
            raise DeclarationError(f"speed must be a number or a SymPy symbol, not the string "
                                   f"or object {speed!r}",
                                   fix="pass c as a number or a parameter symbol")
        self.speed = None if speed is None else sp.sympify(speed, strict=True)  # safe: checked
        if self.speed is not None and self.speed.is_number and not self.speed > 0:
            raise DeclarationError(f"the diffusion speed c = {self.speed} is not positive",
                                   fix="eq. (18) needs c > 0")
        self.is_feedforward = nx.is_directed_acyclic_graph(g)
        if self.is_feedforward:
            # Inputs first, then a topological order: W becomes strictly lower triangular.
            topo = list(nx.lexicographical_topological_sort(g, key=str))
            rest = [n for n in topo if n not in self.inputs]
            self.order = tuple(self.inputs) + tuple(rest)
        else:
            self.order = tuple(self.inputs) + tuple(n for n in g.nodes if n not in self.inputs)
        self.outputs = tuple(outputs) if outputs is not None else tuple(
            n for n in self.order if g.out_degree(n) == 0 and n not in self.inputs)
        for o in self.outputs:
            if o not in g:
                raise GraphError(f"output neuron {o!r} is not in the graph",
                                 fix="choose outputs among the graph's nodes")
        labels: dict[Hashable, str] = {}
        self.x = {}
        for n in self.order:
            labels[n] = lab = _label(n)
            self.x[n] = symbol(check_name(f"x{lab}", "neuron"))
        _check_unique_names(self.x, "neurons", "x")
        self.w = self._weight_symbols(labels)

    def _weight_symbols(self, labels: Mapping[Hashable, str]) -> dict[tuple, sp.Symbol]:
        """``{(j, k): w<j>_<k>}`` for every arc, names checked and made in bulk.

        The labels passed the neuron-name check (``x<label>`` is an identifier), so
        ``w<j>_<k>`` is an identifier too and ends in a reserved suffix exactly when
        ``_<k>`` does; only when a source label or a repeated name fails this does the
        per-arc check run, to report the first offending arc as it always has.
        """
        with gc_paused():  # ~10⁵ objects made here (see gc_paused)
            g = self.graph
            arcs = [(j, k) for j in self.order for k in g.predecessors(j)]
            names = [f"w{labels[j]}_{labels[k]}" for j, k in arcs]
            suffixes = tuple(SUFFIXES.values())
            # without "_" in labels, w<j>_<k> splits back into (j, k): distinct names (x
            # names, checked before, are distinct, so are the labels)
            underscores = any("_" in lab for lab in labels.values())
            clean = not any(f"_{lab}".endswith(suffixes) for lab in labels.values()) \
                and (not underscores or len(set(names)) == len(names))
            if not clean:  # the exact first error, as the per-arc declaration reports it
                w = {a: symbol(check_name(name, "weight")) for a, name in zip(arcs, names)}
                _check_unique_names(w, "arcs", "w")
                return w
            return dict(zip(arcs, symbols_bulk(names)))

    # -- structure -----------------------------------------------------------------------
    @property
    def neurons(self) -> tuple[sp.Symbol, ...]:
        """Output coordinates ``x`` in network order."""
        return tuple(self.x[n] for n in self.order)

    @property
    def weights(self) -> tuple[sp.Symbol, ...]:
        """Weight coordinates, grouped by target neuron in network order."""
        return tuple(self.w.values())

    def net_input(self, j: Hashable) -> sp.Expr:
        """``a_j = Σ_k w_jk x_k`` over the arcs into ``j`` (made once per neuron)."""
        cache = self.__dict__.setdefault("_net_inputs", {})
        hit = cache.get(j)
        if hit is None:
            hit = cache[j] = _sum_of_products(
                [(self.w[j, k], self.x[k]) for k in self.graph.predecessors(j)])
        return hit

    def net_input_symbols(self, j: Hashable) -> frozenset[sp.Symbol]:
        """The symbols of ``a_j``: the weights into ``j`` and their source outputs (what
        ``net_input(j).free_symbols`` is, known without walking the sum)."""
        preds = tuple(self.graph.predecessors(j))
        cache = self.__dict__.setdefault("_source_symbols", {})
        sources = cache.get(preds)  # dense layers share their sources: hash them once
        if sources is None:
            sources = cache[preds] = frozenset([self.x[k] for k in preds])
        return frozenset([self.w[j, k] for k in preds]) | sources

    def weight_matrix(self) -> sp.Matrix:
        """``W`` with ``W[j, k] = w_jk`` (zero where there is no arc), in network order.

        For a feedforward graph it is strictly lower triangular (the paper's
        ``M_ν^↓``).
        """
        idx = {n: i for i, n in enumerate(self.order)}
        W = sp.zeros(len(self.order))
        for (j, k), w in self.w.items():
            W[idx[j], idx[k]] = w
        return W

    # -- constraints ---------------------------------------------------------------------
    def input_signals(self) -> dict[Hashable, sp.Symbol]:
        """Signal symbols ``e<label>`` for the input neurons (not the bias unit, which is
        clamped to 1)."""
        return {i: symbol(f"e{_label(i)}") for i in self.inputs if i != self.bias}

    def target_signals(self) -> dict[Hashable, sp.Symbol]:
        """Signal symbols ``y<label>`` for the output neurons."""
        return {o: symbol(f"y{_label(o)}") for o in self.outputs}

    # -- activations ---------------------------------------------------------------------
    @property
    def computing(self) -> tuple[Hashable, ...]:
        """The non-input neurons, in network order."""
        return tuple(j for j in self.order if j not in self.inputs)

    def activation_of(self, j: Hashable) -> Activation:
        """The activation σ of the non-input neuron ``j``.

        Raises
        ------
        GraphError
            For an input neuron or a neuron not in the graph.
        """
        if j not in self.graph or j in self.inputs:
            raise GraphError(f"neuron {j!r} is not a non-input neuron of the network",
                             fix=f"ask for one of {list(self.computing)[:8]}")
        return self._activations.get(j, self.default_activation)

    @property
    def activations(self) -> dict[Hashable, Activation]:
        """``{neuron: σ}`` for every non-input neuron, in network order."""
        return {j: self.activation_of(j) for j in self.computing}

    def activation_groups(self) -> dict[Activation, tuple[Hashable, ...]]:
        """Non-input neurons grouped by activation (one template per group), in the order
        the activations first occur in network order."""
        out: dict[Activation, list[Hashable]] = {}
        for j in self.computing:
            out.setdefault(self.activation_of(j), []).append(j)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def is_uniform(self) -> bool:
        """Whether every non-input neuron has the same activation."""
        return not self._activations

    @property
    def activation(self) -> Activation:
        """The activation of a uniform network (every non-input neuron alike).

        Raises
        ------
        DeclarationError
            For a network with several activations: use :meth:`activation_of`.
        """
        if not self.is_uniform:
            names = sorted({a.name for a in self.activations.values()})
            raise DeclarationError(
                f"the network has several activations ({', '.join(names)}), not one",
                fix="ask for one neuron's activation with net.activation_of(j)")
        return self.default_activation

    def neuron_constraint(self, x: sp.Symbol, a: sp.Expr, j: Hashable | None = None,
                          *, activation: Activation | None = None) -> sp.Expr:
        """The constraint of a non-input neuron with output ``x`` and net input ``a``.

        ``x - σ(a)`` (eq. 4), or ``ẋ/c + x - σ(a)`` with a speed ``c`` (eq. 19); σ is
        ``activation``, else neuron ``j``'s, else the network's single activation.
        """
        z = _Z
        act = activation or (self.activation_of(j) if j is not None else self.activation)
        sigma_z = self._sigma_z.get(act)
        if sigma_z is None:
            sigma_z = self._sigma_z[act] = act(z)
        g = x - substitute(sigma_z, {z: a})
        return g if self.speed is None else dot(x) / self.speed + g

    def constraints(self, inputs: Mapping[Hashable, sp.Expr] | None = None
                    ) -> list[Constraint]:
        """The constraints of eq. (4), or of eq. (19) when the network has a speed.

        Parameters
        ----------
        inputs
            Input signals by input neuron: expressions of ``t`` or signal symbols
            (default: the signals ``e<label>``).
        """
        e: dict[Hashable, sp.Expr] = dict(self.input_signals())
        e.update(inputs or {})
        if self.bias is not None:
            e[self.bias] = sp.S.One
        out = []
        with gc_paused():  # the net inputs: ~10⁵ products in a dense network
            for j in self.order:
                xj = self.x[j]
                if j in self.inputs:
                    out.append(Constraint(xj - e[j], name=f"G{_label(j)}"))
                    continue
                if self.graph.in_degree(j) == 0:
                    raise GraphError(f"neuron {j!r} has no incoming arcs and is not an input",
                                     fix="connect it or declare it an input")
                a = self.net_input(j)
                g = self.neuron_constraint(xj, a, j)
                out.append(Constraint(g, name=f"G{_label(j)}",
                                      symbols=_free_symbols(g, a, self.net_input_symbols(j))))
        return out

    def problem(self, *, mass_x: sp.Expr | float = MASS_X, mass_W: sp.Expr | float = MASS_W,
                weight: sp.Expr = 1,
                loss: sp.Expr | str | None = None,
                inputs: Mapping[Hashable, sp.Expr] | None = None,
                targets: Mapping[Hashable, sp.Expr] | None = None,
                parameters: Iterable[sp.Symbol] = (), name: str = "network") -> Problem:
        """The learning problem of Section 3 on this network.

        The action is ``∫ ½(m_x|ẋ|² + m_W|Ẇ|²) ϖ(t) - ϖ(t) V(t, x) dt`` (eq. 7 with
        ``F = -ϖ V``, the choice made before eq. 15), ``V`` the squared error of the
        outputs against the targets unless ``loss`` is given.

        Parameters
        ----------
        mass_x, mass_W
            Masses of neuron outputs and weights (symbols by default).
        weight
            ``ϖ(t)``, e.g. ``exp(θ t)``.
        loss
            ``V(t, x)``, or a name of :data:`LOSSES`: ``"squared"`` (the default,
            ``½ Σ_o (x_o - y_o)²``) or ``"softmax_cross_entropy"``
            (:func:`softmax_cross_entropy` of the outputs against the targets).
        inputs, targets
            Expressions of ``t`` for inputs and targets; neurons not given get signals
            ``e<label>`` and ``y<label>``.
        parameters
            Extra parameter symbols used in ``weight``, ``loss``, inputs or targets.
        """
        with gc_paused():  # ~10⁵ objects made here (see gc_paused)
            e = dict(self.input_signals())
            e.update(inputs or {})
            y = dict(self.target_signals())
            y.update(targets or {})
            for label, mapping in (("inputs", inputs or {}), ("targets", targets or {})):
                allowed = self.inputs if label == "inputs" else self.outputs
                for k in mapping:
                    if k not in allowed:
                        fix = (f"use neurons {allowed}" if label == "inputs" else
                               f"use neurons {allowed}, or make {k!r} an output: "
                               f"Network(..., outputs=[{', '.join(map(repr, (*allowed, k)))}])")
                        raise ShapeError(f"{label} given for neuron {k!r}, which is not one of "
                                         f"the network's {label}", fix=fix)
            if self.bias is not None and self.bias in (inputs or {}):
                raise ShapeError(f"an input signal given for the bias unit {self.bias!r}",
                                 fix="the bias unit is clamped to 1; give signals for "
                                 f"{[i for i in self.inputs if i != self.bias]}")
            if isinstance(loss, str):
                if loss not in LOSSES:
                    raise DeclarationError(f"unknown loss {loss!r}",
                                           fix=f"use one of {', '.join(LOSSES)}, or pass an "
                                           "expression of the outputs")
                if not self.outputs:
                    raise DeclarationError(f"the loss {loss!r} needs output neurons",
                                           fix="name them with Network(..., outputs=[...])")
                loss = LOSSES[loss]([self.x[o] for o in self.outputs],
                                    [y[o] for o in self.outputs])
            if loss is None and not self.outputs:
                warnings.warn(
                    "the network has no output neurons (every neuron has outgoing arcs), so the "
                    "default loss is empty (F = 0): no supervision. Name the outputs with "
                    "Network(..., outputs=[...]) or pass a loss.", UserWarning, stacklevel=2)
            if loss is None:
                loss = squared_error([self.x[o] for o in self.outputs],
                                     [y[o] for o in self.outputs])
            coords = self.neurons + self.weights
            masses = dict.fromkeys(self.neurons, mass_x) | dict.fromkeys(self.weights, mass_W)
            action = Action(coords, masses=masses, weight=weight, lagrangian=-weight * loss)
            sigs = [s for s in list(e.values()) + list(y.values()) if isinstance(s, sp.Symbol)
                    and s not in masses]  # a dict of the coordinates, not a tuple scan
            params = {p for p in (mass_x, mass_W, self.speed) if isinstance(p, sp.Symbol)}
            params |= set(parameters)
            params |= (weight.free_symbols if isinstance(weight, sp.Basic) else set()) - {t}
            params -= set(sigs)
            roles = {self.speed: RoleKind.SPEED} if isinstance(self.speed, sp.Symbol) else {}
            return Problem(action, self.constraints(e), signals=sigs,
                           parameters=sorted(params, key=str), name=name, network=self,
                           roles=roles)


def _resolve(spec: str | Activation) -> Activation:
    return activation(spec)


def layered(sizes: Sequence[int], activation: str | Activation = "tanh", *,
            output_activation: str | Activation | None = None,
            activations: Sequence[str | Activation] | None = None,
            bias: bool = False,
            speed: sp.Expr | float | None = None) -> Network:
    """A fully connected layered network with ``sizes[0]`` inputs (Section 2).

    Neurons are numbered 1, 2, … layer by layer.

    Parameters
    ----------
    sizes
        Neurons per layer, inputs first, e.g. ``[64, 32, 10]``.
    activation
        Activation of every non-input layer not otherwise given.
    output_activation
        Activation of the last layer (default: ``activation``); ``"identity"`` for
        logits read by :func:`softmax_cross_entropy`.
    activations
        One activation per non-input layer (``len(sizes) - 1`` entries); excludes
        ``activation`` and ``output_activation``.
    bias
        Add the constant unit :data:`BIAS` with an arc to every non-input neuron.
    speed
        Diffusion speed ``c`` (eq. 18), as for :class:`Network`.

    Examples
    --------
    >>> net = layered([2, 2, 1])
    >>> net.inputs, net.outputs, len(net.weights)
    ((1, 2), (5,), 6)
    >>> net = layered([2, 2, 1], output_activation="identity", bias=True)
    >>> str(net.constraints()[-1].expr)
    '-w5_3*x3 - w5_4*x4 - w5_b*xb + x5'
    """
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ShapeError(f"layer sizes {list(sizes)} are not usable",
                         fix="give at least an input and an output layer, each of size >= 1")
    layers, k = [], 1
    for s in sizes:
        layers.append(list(range(k, k + s)))
        k += s
    if activations is not None:
        if output_activation is not None:
            raise DeclarationError("both activations (per layer) and output_activation given",
                                   fix="give the output layer's activation as the last "
                                   "entry of activations")
        if isinstance(activations, (str, Activation)) or \
                len(activations) != len(sizes) - 1:
            raise ShapeError(f"activations must list one activation per non-input layer "
                             f"({len(sizes) - 1}), got {activations!r}",
                             fix=f"e.g. activations={['tanh'] * (len(sizes) - 2) + ['identity']}")
        per_layer = list(activations)
    else:
        per_layer = [activation] * (len(sizes) - 2) + [
            activation if output_activation is None else output_activation]
    overrides = {j: spec for layer, spec in zip(layers[1:], per_layer) for j in layer}
    g = nx.DiGraph()
    g.add_nodes_from(range(1, k))
    for a, b in zip(layers, layers[1:]):
        g.add_edges_from((i, j) for i in a for j in b)
    return Network(g, layers[0], activation, activations=overrides, bias=bias, speed=speed)


def xor(activation: str | Activation = "tanh") -> Network:
    """The XOR network of Section 3: inputs 1, 2; hidden 3, 4; output 5."""
    g = nx.DiGraph([(1, 3), (2, 3), (1, 4), (2, 4), (3, 5), (4, 5)])
    return Network(g, [1, 2], activation)


def chain(n: int = 3, activation: str | Activation = "tanh", *,
          speed: sp.Expr | float | None = None) -> Network:
    """A chain ``1 → 2 → … → n`` (the paper's 3-neuron example for ``n = 3``)."""
    if n < 2:
        raise ShapeError(f"a chain needs at least 2 neurons, got {n}", fix="use n >= 2")
    return Network(nx.path_graph(range(1, n + 1), create_using=nx.DiGraph), [1], activation,
                   speed=speed)
