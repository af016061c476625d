"""Energy-based networks: an energy ``E(x, W)``, a cost ``C(x, y)`` and a nudging ``β``.

Equilibrium propagation (Scellier & Bengio 2017, "Equilibrium Propagation: Bridging
the Gap between Energy-Based Models and Backpropagation", *Front. Comput. Neurosci.*
11:24) is a learning law of a network whose state ``x`` relaxes to a minimum of an
energy. This module declares such a law; :mod:`cognitive_action.derive.energy`
derives its phase dynamics from the declaration, ``compile.energy`` relaxes them to
their fixed points and ``verify.equilibrium`` checks the EP update against recurrent
backprop. The conventions, stated once:

- **free phase**: ``ẋ = -∂E/∂x``, relaxing to a fixed point ``x⁰`` (S&B Section 2,
  with ``β = 0``);
- **nudged phase**: ``ẋ = -∂(E + βC)/∂x`` (S&B's total energy ``F = E + βC``, Section 3),
  fixed point ``x^β``; ``β > 0`` pulls the outputs toward the targets;
- **loss**: ``J(W) = C(x⁰(W), y)`` at the free fixed point;
- **EP update**: ``ΔW = -(1/β) (∂E/∂W(x^β) - ∂E/∂W(x⁰))``, which tends to ``-dJ/dW``
  as ``β → 0`` (S&B Section 3, Theorem 1). Our ``E`` is their ``E``, minimised by the phases;
  the discrete-time EP code of Laborieux et al. climbs a primitive ``Φ`` instead
  (``x ← ∂Φ/∂x``), which enters their update with the opposite sign;
- **symmetric nudging** (Laborieux et al. 2021): ``ΔW = -(1/2β) (∂E/∂W(x^β) -
  ∂E/∂W(x^{-β}))``, error ``O(β²)`` instead of ``O(β)``.

The Hopfield-like energy of S&B eq. (1), built by :func:`hopfield`, is

    E(x) = ½ Σ_i x_i² - Σ_{i<j} w_ij ρ(u_i) ρ(u_j) - Σ_i b_i ρ(x_i),

``u`` the free neurons and the clamped inputs ``e``; the sum runs over the undirected
edges, with **one weight symbol per edge**, so ``W`` is symmetric by construction (S&B
write ``½ Σ_{i≠j} W_ij`` with ``W_ij = W_ji``: the same sum). The cost is
``C = ½ Σ_o (x_o - y_o)²``.

Examples
--------
>>> model = hopfield([2, 3, 1], activation="logistic")
>>> [str(x) for x in model.neurons], [str(e) for e in model.inputs]
(['x3', 'x4', 'x5', 'x6'], ['e1', 'e2'])
>>> str(model.groups["W2"][0]), len(model.learnable)
('w3_6', 13)
>>> str(model.cost)
'(x6 - y6)**2/2'
>>> hopfield([(1, 2), (2, 3)], inputs=[1],
...          weight_matrix=[[0, "a", 0], ["a", 0, "c"], [0, "b", 0]])
Traceback (most recent call last):
...
cognitive_action.errors.DeclarationError: the weight matrix is declared symmetric but \
W[2, 3] = c and W[3, 2] = b differ. Fix: equilibrium propagation needs W = W^T: use one \
symbol per undirected pair (W[i, j] = W[j, i])
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import sympy as sp

from cognitive_action.declare.activations import Activation
from cognitive_action.declare.activations import activation as _activation
from cognitive_action.declare.roles import Role, RoleKind, RoleMap
from cognitive_action.declare.symbols import check_name, symbol
from cognitive_action.errors import DeclarationError, GraphError, ShapeError

__all__ = ["EnergyModel", "hopfield", "BETA", "check_cost_direction", "weights_from_matrix"]

#: The nudging strength ``β`` of the nudged phase ``E + βC``.
BETA = sp.Symbol("beta", real=True)


def _expr(value: object, what: str) -> sp.Expr:
    if isinstance(value, str):
        raise DeclarationError(f"{what} is the string {value!r}, not an expression",
                               fix="build it from the model's symbols; problem files parse "
                               "strings safely with cognitive_action.problem_files")
    try:
        e = sp.sympify(value, strict=True)  # safe: strict, strings refused above
    except (sp.SympifyError, TypeError) as exc:
        raise DeclarationError(f"{what} is not a SymPy expression: {value!r}",
                               fix="use SymPy expressions of the declared symbols") from exc
    if not isinstance(e, sp.Expr) or isinstance(e, sp.MatrixBase):
        raise ShapeError(f"{what} must be a scalar expression", fix="give one expression")
    return e


@dataclass(frozen=True)
class EnergyModel:
    """An energy-based learning law: ``E(x, W; e)``, ``C(x, y)`` and the nudging ``β``.

    Parameters
    ----------
    neurons
        The free state ``x`` (relaxes in both phases).
    energy
        ``E``: a scalar expression of the neurons, the inputs, the learnable weights and
        the parameters. It must not involve the targets or ``β``.
    cost
        ``C``: an expression of the (output) neurons, the targets and the parameters,
        smallest where the outputs meet the targets (:func:`check_cost_direction`).
        It may not involve the weights (S&B's estimator assumes ``∂C/∂W = 0``).
    learnable
        The weights and biases the EP update changes.
    inputs, targets
        Signal symbols: clamped inputs ``e`` (in ``E``) and targets ``y`` (in ``C``).
    outputs
        The neurons the cost reads (default: those that occur in ``cost``), in the
        order of ``targets`` when there is one target per output.
    parameters
        Other constant symbols of ``E`` or ``C``.
    groups
        ``{name: weights}``: the parameter tensors the per-parameter metrics are taken
        over (default: one group ``"W"`` of every learnable symbol).
    beta
        The nudging symbol (default :data:`BETA`).
    name
        For reports.
    activation
        The activation ``ρ`` the energy was built with (informative; None for an
        energy written by hand).
    units, couplings
        Set by :func:`hopfield`: the unit labels (inputs first) and, per weight symbol,
        the undirected pair of units it couples (used by :func:`weights_from_matrix`).

    Raises
    ------
    DeclarationError
        Undeclared symbols (with a suggestion), the targets or ``β`` inside ``E``,
        weights inside ``C``, a cost that reads no neuron, a symbol declared twice, a
        cost that is larger at the targets than away from them (a nudging of the wrong
        sign), learnable symbols that ``E`` does not contain.
    """

    neurons: tuple[sp.Symbol, ...]
    energy: sp.Expr
    cost: sp.Expr
    learnable: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...] = ()
    targets: tuple[sp.Symbol, ...] = ()
    outputs: tuple[sp.Symbol, ...] = ()
    parameters: tuple[sp.Symbol, ...] = ()
    groups: Mapping[str, tuple[sp.Symbol, ...]] = field(default_factory=dict)
    beta: sp.Symbol = BETA
    name: str = "energy_model"
    activation: Activation | None = None
    units: tuple[Hashable, ...] = ()
    couplings: Mapping[sp.Symbol, tuple[Hashable, Hashable]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = object.__setattr__
        for key in ("neurons", "learnable", "inputs", "targets", "parameters"):
            s(self, key, tuple(getattr(self, key)))
        s(self, "energy", _expr(self.energy, "the energy E"))
        s(self, "cost", _expr(self.cost, "the cost C"))
        seen: dict[sp.Symbol, str] = {}
        for what, group in (("neuron", self.neurons), ("input", self.inputs),
                            ("target", self.targets), ("learnable weight", self.learnable),
                            ("parameter", self.parameters), ("nudging", (self.beta,))):
            for x in group:
                if not isinstance(x, sp.Symbol):
                    raise DeclarationError(f"{what} {x!r} is not a symbol",
                                           fix="declare symbols with declare.symbols")
                if x in seen:
                    raise DeclarationError(f"{x} is declared both as {seen[x]} and as {what}"
                                           if seen[x] != what else f"{x} is declared twice",
                                           fix="give each symbol one role, once")
                seen[x] = what
        if not self.neurons:
            raise DeclarationError("an energy model needs at least one free neuron",
                                   fix="pass the relaxing state as neurons=")
        # a symbol spelt like a declared one but with other assumptions (Symbol("x") for
        # the real x) is the declared one: SymPy would treat them as different symbols
        by_name = {str(k): k for k in seen}
        for key in ("energy", "cost"):
            e = getattr(self, key)
            repl = {f: by_name[str(f)] for f in e.free_symbols
                    if str(f) in by_name and by_name[str(f)] is not f}
            if repl:
                s(self, key, e.xreplace(repl))
        self._check(self.energy, "the energy E", set(self.neurons) | set(self.inputs)
                    | set(self.learnable) | set(self.parameters), seen)
        self._check(self.cost, "the cost C", set(self.neurons) | set(self.targets)
                    | set(self.parameters), seen)
        missing = [str(w) for w in self.learnable if w not in self.energy.free_symbols]
        if missing:
            raise DeclarationError(f"the learnable symbol(s) {', '.join(missing)} do not "
                                   "occur in the energy", fix="learn only weights of E")
        read = tuple(x for x in self.neurons if x in self.cost.free_symbols)
        if not read:
            raise DeclarationError("the cost C reads no neuron",
                                   fix="write C in the output neurons, e.g. (x5 - y5)**2/2")
        if not self.outputs:
            s(self, "outputs", read)
        groups = dict(self.groups) or {"W": self.learnable}
        known = set(self.learnable)
        for g, members in groups.items():
            members = tuple(members)
            if not members or set(members) - known:
                raise DeclarationError(f"group {g!r} holds symbols that are not learnable",
                                       fix="group learnable weights only")
            groups[g] = members
        s(self, "groups", groups)
        check_cost_direction(self)

    @staticmethod
    def _check(expr: sp.Expr, what: str, allowed: set[sp.Symbol],
               seen: Mapping[sp.Symbol, str]) -> None:
        bad = sorted(expr.free_symbols - allowed, key=str)
        if not bad:
            return
        words = []
        for b in bad:
            if b in seen:
                words.append(f"the {seen[b]} {b} may not appear in {what}")
            else:
                close = difflib.get_close_matches(str(b), [str(k) for k in seen], n=1)
                words.append(f"undeclared symbol {b}" + (f" (did you mean {close[0]!r}?)"
                                                         if close else ""))
        raise DeclarationError(f"{what}: " + "; ".join(words),
                               fix="E takes neurons, inputs, learnable weights and "
                               "parameters; C takes neurons, targets and parameters; beta "
                               "enters only through the nudged phase E + beta*C")

    # -- views ---------------------------------------------------------------------------
    @property
    def total(self) -> sp.Expr:
        """``F = E + βC``, the energy of the nudged phase (S&B Section 3)."""
        return self.energy + self.beta * self.cost

    @property
    def signals(self) -> tuple[sp.Symbol, ...]:
        """Inputs then targets."""
        return self.inputs + self.targets

    @property
    def coordinates(self) -> tuple[sp.Symbol, ...]:
        """The neurons (the state that relaxes)."""
        return self.neurons

    @property
    def constraints(self) -> tuple:
        """An energy model has no constraints (its phases are gradient flows)."""
        return ()

    @property
    def roles(self) -> RoleMap:
        """Neurons are coordinates, inputs and targets signals, weights, ``β`` and the
        other constants parameters."""
        out = {x: Role(RoleKind.COORDINATE) for x in self.neurons}
        out |= {x: Role(RoleKind.SIGNAL) for x in self.signals}
        out |= {x: Role(RoleKind.PARAMETER) for x in (*self.learnable, *self.parameters,
                                                       self.beta)}
        return RoleMap(out)

    def __repr__(self) -> str:
        return (f"EnergyModel({self.name!r}: {len(self.neurons)} neurons, "
                f"{len(self.inputs)} inputs, {len(self.learnable)} learnable)")


def check_cost_direction(model: EnergyModel, samples: int = 8, seed: int = 0) -> None:
    """Refuse a cost that is smaller away from the targets than at them.

    With outputs set to the targets, ``C`` must not exceed its value at ``samples``
    random outputs (other symbols at random values): otherwise the nudged phase
    ``E + βC`` (``β > 0``) pushes the outputs *away* from the targets and the EP update
    estimates ``+dJ/dW`` (a nudging of the wrong sign). Skipped when the outputs cannot
    be set to the targets one for one.

    Raises
    ------
    DeclarationError
        The cost grows toward the targets.
    """
    outs, ys = model.outputs, model.targets
    if not ys or len(outs) != len(ys):
        return
    syms = sorted(model.cost.free_symbols, key=str)
    try:
        f = sp.lambdify(syms, model.cost, "numpy")
    except Exception:  # a cost NumPy cannot evaluate: nothing to check here
        return
    rng = np.random.default_rng(seed)
    pos = {s: i for i, s in enumerate(syms)}
    for _ in range(samples):
        v = rng.standard_normal(len(syms))
        at = v.copy()
        for o, y in zip(outs, ys):
            if o in pos and y in pos:
                at[pos[o]] = v[pos[y]]
        with np.errstate(all="ignore"):
            try:
                c_away, c_at = float(f(*v)), float(f(*at))
            except (TypeError, ValueError, ArithmeticError):
                return
        if not (np.isfinite(c_away) and np.isfinite(c_at)):
            continue
        if c_at > c_away + 1e-12 * (1 + abs(c_away)):
            raise DeclarationError(
                f"the cost C = {model.cost} is larger with the outputs at the targets "
                f"({c_at:.4g}) than away from them ({c_away:.4g}): the nudged phase "
                "E + beta*C (beta > 0) pushes the outputs away from the targets, a nudging "
                "of the wrong sign",
                fix="write C as a loss that is smallest at the targets, e.g. "
                "(x - y)**2/2, not its negative")


# -- the Hopfield-like energy of S&B eq. (1) -----------------------------------------------
def _label(node: Hashable) -> str:
    s = str(node)
    if not s.replace("_", "").isalnum():
        raise GraphError(f"unit label {node!r} cannot be used in a name",
                         fix="label units with integers or identifiers")
    return s


def _pair_name(i: Hashable, j: Hashable, order: Mapping[Hashable, int]) -> str:
    a, b = sorted((i, j), key=lambda n: order[n])
    return check_name(f"w{_label(a)}_{_label(b)}", "weight")


def hopfield(structure: Sequence[int] | nx.Graph | Iterable[tuple[Hashable, Hashable]],
             inputs: Iterable[Hashable] | None = None,
             outputs: Iterable[Hashable] | None = None, *,
             activation: str | Activation = "logistic", bias: bool = True,
             weight_matrix: Sequence[Sequence[object]] | sp.Matrix | None = None,
             name: str = "hopfield") -> EnergyModel:
    """The Hopfield-like energy of S&B eq. (1) with one weight symbol per undirected edge.

    Parameters
    ----------
    structure
        Layer sizes ``[n_in, n_1, …, n_out]`` (all-to-all between consecutive layers,
        units numbered 1, 2, … layer by layer, as ``declare.network.layered``), or an
        undirected graph / edge list of unit labels.
    inputs, outputs
        Clamped input units and output units (layers: the first and last layer).
    activation
        ``ρ`` (a registered name or an :class:`Activation`). A bounded ``ρ`` (logistic,
        tanh) makes ``E`` bounded below (``½‖x‖²`` dominates); with an unbounded one
        (identity, softplus) strong weights leave ``E`` unbounded below, which the
        relaxation reports (``compile.energy``).
    bias
        A bias ``b<i>`` for every free unit.
    weight_matrix
        Optional: the weights as a square matrix over the units in order (inputs
        first); it must be symmetric entry by entry (``W[i, j]`` and ``W[j, i]`` the same
        symbol), the diagonal zero. Default: a symbol ``w<i>_<j>`` per edge.
    name
        For reports.

    Raises
    ------
    GraphError
        An edge between two inputs (a constant of ``E``), a self-loop, unknown units.
    DeclarationError
        A ``weight_matrix`` that is not symmetric or has a diagonal.
    """
    act = activation if isinstance(activation, Activation) else _activation(activation)
    groups: dict[str, list[tuple[Hashable, Hashable]]] = {}
    if isinstance(structure, Sequence) and structure and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in structure):
        sizes = [int(n) for n in structure]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ShapeError(f"layer sizes {sizes} are not usable",
                             fix="give at least an input and an output layer of size >= 1")
        layers, k = [], 1
        for n in sizes:
            layers.append(list(range(k, k + n)))
            k += n
        g = nx.Graph()
        g.add_nodes_from(range(1, k))
        for li, (a, b) in enumerate(zip(layers, layers[1:]), start=1):
            edges = [(i, j) for i in a for j in b]
            g.add_edges_from(edges)
            groups[f"W{li}"] = edges
        inputs = layers[0] if inputs is None else inputs
        outputs = layers[-1] if outputs is None else outputs
    else:
        g = structure.copy() if isinstance(structure, nx.Graph) else nx.Graph(list(structure))
        if g.is_directed():
            g = nx.Graph(g)
        if g.number_of_nodes() == 0:
            raise GraphError("the graph has no units", fix="give layer sizes or edges")
        groups["W"] = list(g.edges)
    inputs = tuple(inputs or ())
    order = {n: i for i, n in enumerate(list(inputs) + [n for n in g.nodes
                                                        if n not in inputs])}
    for n in inputs:
        if n not in g:
            raise GraphError(f"input unit {n!r} is not in the graph",
                             fix=f"choose among {list(g.nodes)[:8]}")
    if nx.number_of_selfloops(g):
        raise GraphError("a self-loop w_ii has no place in the Hopfield energy (S&B eq. 1 "
                         "sums over i != j)", fix="remove the self-loops")
    for i, j in g.edges:
        if i in inputs and j in inputs:
            raise GraphError(f"the edge {i!r} - {j!r} joins two clamped inputs: it only adds "
                             "a constant to E", fix="remove it")
    free = [n for n in sorted(g.nodes, key=order.get) if n not in inputs]
    if not free:
        raise GraphError("every unit is an input: nothing relaxes", fix="add free units")
    outputs = tuple(outputs) if outputs is not None else (free[-1],)
    for o in outputs:
        if o not in free:
            raise GraphError(f"output unit {o!r} is not a free unit",
                             fix=f"choose among {free[:8]}")
    x = {n: symbol(check_name(f"x{_label(n)}", "neuron")) for n in free}
    e = {n: symbol(check_name(f"e{_label(n)}", "input")) for n in inputs}
    units = {**e, **x}
    if weight_matrix is None:
        w = {frozenset((i, j)): symbol(_pair_name(i, j, order)) for i, j in g.edges}
    else:
        w = _from_matrix(weight_matrix, list(order), g)
    rho = {n: act(u) for n, u in units.items()}
    E = sp.Add(*(xi**2 for xi in x.values())) / 2
    E -= sp.Add(*(wij * rho[i] * rho[j] for (i, j) in g.edges
                  for wij in [w[frozenset((i, j))]] if wij != 0))
    biases = {}
    if bias:
        biases = {n: symbol(check_name(f"b{_label(n)}", "bias")) for n in free}
        E -= sp.Add(*(biases[n] * rho[n] for n in free))
    y = {o: symbol(check_name(f"y{_label(o)}", "target")) for o in outputs}
    C = sp.Add(*((x[o] - y[o]) ** 2 for o in outputs)) / 2
    learn: list[sp.Symbol] = []
    named: dict[str, tuple[sp.Symbol, ...]] = {}
    for gname, edges in groups.items():
        syms = []
        for i, j in edges:
            s_ = w[frozenset((i, j))]
            if isinstance(s_, sp.Symbol) and s_ not in learn:
                syms.append(s_)
                learn.append(s_)
        if syms:
            named[gname] = tuple(syms)
    if bias:
        if len(groups) > 1:  # layers: one bias vector per non-input layer
            for li, layer in enumerate(_layers_of(structure)[1:], start=1):
                named[f"b{li}"] = tuple(biases[n] for n in layer)
        else:
            named["b"] = tuple(biases.values())
        learn += list(biases.values())
    return EnergyModel(neurons=tuple(x.values()), energy=E, cost=C, learnable=tuple(learn),
                       inputs=tuple(e.values()), targets=tuple(y.values()),
                       outputs=tuple(x[o] for o in outputs), groups=named, name=name,
                       activation=act, units=tuple(order),
                       couplings={s_: tuple(sorted(k, key=order.get)) for k, s_ in w.items()
                                  if isinstance(s_, sp.Symbol)})


def _layers_of(sizes: Sequence[int]) -> list[list[int]]:
    layers, k = [], 1
    for n in sizes:
        layers.append(list(range(k, k + int(n))))
        k += int(n)
    return layers


def _from_matrix(matrix: Sequence[Sequence[object]] | sp.Matrix, units: list[Hashable],
                 g: nx.Graph) -> dict[frozenset, sp.Expr]:
    """The edge weights of a declared-symmetric matrix (refused when it is not)."""
    rows = [list(r) for r in (matrix.tolist() if isinstance(matrix, sp.MatrixBase)
                              else matrix)]
    n = len(units)
    if len(rows) != n or any(len(r) != n for r in rows):
        raise ShapeError(f"the weight matrix must be {n}x{n} (one row per unit, inputs "
                         "first)", fix=f"give a {n}x{n} matrix")
    W = [[symbol(check_name(v, "weight")) if isinstance(v, str) and v.isidentifier() else
          _expr(v, f"W[{i + 1}, {j + 1}]") for j, v in enumerate(r)] for i, r in enumerate(rows)]
    for i in range(n):
        if W[i][i] != 0:
            raise DeclarationError(f"the weight matrix has W[{i + 1}, {i + 1}] = {W[i][i]} on "
                                   "its diagonal", fix="the Hopfield energy has no self-"
                                   "coupling: put 0 on the diagonal")
        for j in range(i + 1, n):
            if W[i][j] != W[j][i]:
                raise DeclarationError(
                    f"the weight matrix is declared symmetric but W[{i + 1}, {j + 1}] = "
                    f"{W[i][j]} and W[{j + 1}, {i + 1}] = {W[j][i]} differ",
                    fix="equilibrium propagation needs W = W^T: use one symbol per "
                    "undirected pair (W[i, j] = W[j, i])")
    out = {}
    for i in range(n):
        for j in range(i + 1, n):
            if W[i][j] != 0:
                g.add_edge(units[i], units[j])
                out[frozenset((units[i], units[j]))] = W[i][j]
    for a, b in list(g.edges):
        out.setdefault(frozenset((a, b)), sp.S.Zero)
    return out


def weights_from_matrix(model: EnergyModel, matrix: Sequence[Sequence[float]] | np.ndarray,
                        biases: Sequence[float] | None = None, *, rtol: float = 1e-12
                        ) -> dict[str, float]:
    """The learnable values of a :func:`hopfield` model from a numeric weight matrix.

    Parameters
    ----------
    model
        A model built by :func:`hopfield` (it knows which pair each weight couples).
    matrix
        ``W`` over ``model.units`` (inputs first), symmetric, zero on the diagonal and
        where the model has no edge.
    biases
        One bias per free unit (``model.neurons`` order), if the model has biases.
    rtol
        Asymmetry tolerated, relative to ``max |W|``.

    Returns
    -------
    dict
        ``{name: value}`` for every learnable symbol.

    Raises
    ------
    DeclarationError
        A matrix that is not symmetric (weights declared symmetric that are not, e.g.
        taken from a network trained with separate forward and backward weights), a
        diagonal entry, a weight where the model has no edge, a model not built by
        :func:`hopfield`.
    ShapeError
        A matrix or bias vector of the wrong size.

    Examples
    --------
    >>> model = hopfield([(1, 2)], inputs=[1], bias=False)
    >>> weights_from_matrix(model, [[0.0, 0.3], [0.3, 0.0]])
    {'w1_2': 0.3}
    >>> weights_from_matrix(model, [[0.0, 0.3], [0.5, 0.0]])
    Traceback (most recent call last):
    ...
    cognitive_action.errors.DeclarationError: W is not symmetric: W[1, 2] = 0.3 but \
W[2, 1] = 0.5 (units 1 and 2). Fix: equilibrium propagation needs W = W^T (one weight per \
undirected pair): symmetrise it, e.g. (W + W.T)/2, knowing that this changes the network
    """
    if not model.couplings:
        raise DeclarationError("the model does not say which units its weights couple",
                               fix="build it with hopfield(...), or give the weights by name")
    W = np.asarray(matrix, dtype=float)
    n = len(model.units)
    if W.shape != (n, n):
        raise ShapeError(f"W must be {n}x{n} over model.units {list(model.units)}, got "
                         f"{W.shape}", fix="one row and column per unit, inputs first")
    scale = max(float(np.max(np.abs(W))), 1e-300)
    i, j = np.unravel_index(np.argmax(np.abs(W - W.T)), W.shape)
    if abs(W[i, j] - W[j, i]) > rtol * scale:
        raise DeclarationError(
            f"W is not symmetric: W[{i + 1}, {j + 1}] = {W[i, j]:.6g} but W[{j + 1}, "
            f"{i + 1}] = {W[j, i]:.6g} (units {model.units[i]} and {model.units[j]})",
            fix="equilibrium propagation needs W = W^T (one weight per undirected pair): "
            "symmetrise it, e.g. (W + W.T)/2, knowing that this changes the network")
    if np.any(np.diag(W) != 0):
        k = int(np.flatnonzero(np.diag(W))[0])
        raise DeclarationError(f"W[{k + 1}, {k + 1}] = {W[k, k]:.6g} couples unit "
                               f"{model.units[k]} to itself", fix="put 0 on the diagonal")
    idx = {u: k for k, u in enumerate(model.units)}
    out = {str(s): float(W[idx[a], idx[b]]) for s, (a, b) in model.couplings.items()}
    covered = np.zeros_like(W, dtype=bool)
    for a, b in model.couplings.values():
        covered[idx[a], idx[b]] = covered[idx[b], idx[a]] = True
    stray = np.argwhere((W != 0) & ~covered)
    if stray.size:
        a, b = stray[0]
        raise DeclarationError(f"W[{a + 1}, {b + 1}] = {W[a, b]:.6g}, but the energy has no "
                               f"edge between units {model.units[a]} and {model.units[b]}",
                               fix="put 0 where the model has no edge, or add the edge")
    rest = [s for s in model.learnable if str(s) not in out]
    if rest:
        if biases is None or len(biases) != len(rest):
            raise ShapeError(f"{len(rest)} biases needed ({', '.join(map(str, rest[:6]))}), "
                             f"got {0 if biases is None else len(biases)}",
                             fix="give one bias per free unit, in model.neurons order")
        out |= {str(s): float(v) for s, v in zip(rest, biases)}
    return out
