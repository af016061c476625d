"""Per-neuron templates: eq. (8)-(10) for large networks, derived once and assembled.

Every neural constraint of eq. (4) has the form ``G^j = g(t, x_j, a_j)`` with the net
input ``a_j = Σ_k w_jk x_k``. Differentiating the *template* ``g(t, ξ, a)`` once
symbolically gives everything eq. (8)-(10) need by the chain rule through the bilinear
``a_j``:

    G^j_{x_k} = g_ξ [k = j] + g_a w_jk,        G^j_{w_jk} = g_a x_k,
    G̈^j = g_ξ ẍ_j + g_a ä_j + h⁰(t, x_j, ẋ_j, a_j, ȧ_j),
    ȧ_j = Σ_k ẇ_jk x_k + w_jk ẋ_k,   ä_j = Σ_k ẅ_jk x_k + 2 ẇ_jk ẋ_k + w_jk ẍ_k,

so that ``h^j = h⁰ + 2 g_a Σ_k ẇ_jk ẋ_k``. The kinetic part of each coordinate's
Euler-Lagrange equation is likewise derived once per coordinate class (neurons,
weights) on a one-coordinate problem. Assembly is then linear in the number of arcs;
no ``ν × ν²`` matrix is expanded. The result is the same
:class:`~cognitive_action.derive.euler_lagrange.EulerLagrange` object as the generic
route produces (a test checks that the two agree symbolically).

:func:`derive_network` does only the symbolic work on templates (its cost does not grow
with the size of the network); :meth:`NetworkSystem.euler_lagrange` materializes every
entry as a SymPy expression (linear in the number of arcs, for inspection and small networks), and
:meth:`NetworkSystem.evaluate` evaluates eq. (10) numerically from the templates,
vectorized over arcs with NumPy and SciPy sparse matrices.

Examples
--------
>>> from cognitive_action.declare.network import chain
>>> system = derive_network(chain(3).problem())
>>> system.template.g_a
tanh(a)**2 - 1
>>> system.euler_lagrange().jacobian.to_matrix()[:, :3]
Matrix([
[                          1,                           0, 0],
[w2_1*(tanh(w2_1*x1)**2 - 1),                           1, 0],
[                          0, w3_2*(tanh(w3_2*x2)**2 - 1), 1]])
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import sparse

from cognitive_action.declare.activations import Activation
from cognitive_action.declare.network import Network, _product
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.declare.roles import RoleMap, multiplier_name
from cognitive_action.declare.symbols import MAX_ORDER, Jets, dot, gc_paused, substitute, symbol, t
from cognitive_action.derive.calculus import Differentiator, TimeDerivative
from cognitive_action.derive.contract import DerivedSystem, multiplier_roles
from cognitive_action.derive.euler_lagrange import EulerLagrange, euler_lagrange
from cognitive_action.derive.numeric import to_float
from cognitive_action.derive.sparse import SparseRows, Walker
from cognitive_action.errors import DerivationError, ShapeError

__all__ = ["NeuronTemplate", "NetworkSystem", "NetworkState", "neuron_template", "derive_network",
           "neuron_templates", "is_network_problem"]

XI = symbol("xi")
A = symbol("a")


@dataclass(frozen=True)
class NeuronTemplate:
    """Derivatives of one neuron's constraint ``g(t, ξ, a)`` (eq. 4).

    Attributes
    ----------
    g
        The template constraint.
    g_xi, g_a
        ``∂g/∂ξ`` and ``∂g/∂a``.
    h0
        ``d²g/dt²`` with ``ξ̈ = 0`` and ``ä = 0``: a function of ``t, ξ, ξ̇, a, ȧ``.
    """

    g: sp.Expr
    g_xi: sp.Expr
    g_a: sp.Expr
    h0: sp.Expr


def neuron_template(net: Network, activation: Activation | None = None) -> NeuronTemplate:
    """Differentiate a hidden-neuron template ``ξ - σ(a)`` once.

    ``σ`` is ``activation``, or the network's single activation (a network with several
    has one template per activation: :func:`neuron_templates`).
    """
    g = net.neuron_constraint(XI, A, activation=activation)
    grad = Differentiator([XI, A]).gradient(g)
    jets = {dot(s, k) for s in (XI, A) for k in range(MAX_ORDER + 1)}
    D = TimeDerivative(jets)
    h0 = Walker([dot(XI, 2), dot(A, 2)]).zero_out(D(D(g)))
    return NeuronTemplate(g=g, g_xi=grad.get(XI, sp.S.Zero), g_a=grad.get(A, sp.S.Zero),
                          h0=h0)


def neuron_templates(net: Network) -> tuple[tuple[NeuronTemplate, ...], np.ndarray]:
    """One template per distinct activation, and each neuron's template.

    Returns
    -------
    templates
        One :class:`NeuronTemplate` per activation, in the order the activations first
        occur in network order.
    index
        Per neuron in network order, the index of its template (``-1`` for inputs).

    Examples
    --------
    >>> from cognitive_action.declare.network import layered
    >>> tpls, index = neuron_templates(layered([1, 1, 1], output_activation="identity"))
    >>> [str(tp.g_a) for tp in tpls], index.tolist()
    (['tanh(a)**2 - 1', '-1'], [-1, 0, 1])
    """
    groups = net.activation_groups()
    tpls = tuple(neuron_template(net, act) for act in groups)
    pos = {j: i for i, j in enumerate(net.order)}
    index = np.full(len(net.order), -1, dtype=np.int64)
    for n, members in enumerate(groups.values()):
        index[[pos[j] for j in members]] = n
    return tpls, index


class _Weights:
    """The coordinates that are not neuron outputs (the weights, once the coordinates are
    known to be ``x`` and ``W``), as a container."""

    __slots__ = ("_coordinates", "_neurons")

    def __init__(self, coordinates: frozenset[sp.Symbol], neurons: set[sp.Symbol]) -> None:
        self._coordinates, self._neurons = coordinates, neurons

    def __contains__(self, s: object) -> bool:
        return s in self._coordinates and s not in self._neurons


def _differ(masses: list[sp.Expr], mass: sp.Expr) -> bool:
    """Whether one of ``masses`` is not ``mass`` (compared once per distinct object: a
    network's ~10⁵ weights share one)."""
    distinct = {id(m): m for m in masses}
    return any(m is not mass and m != mass for m in distinct.values())


def _class_masses(masses: Mapping[sp.Symbol, sp.Expr], xs: tuple[sp.Symbol, ...],
                  ws: tuple[sp.Symbol, ...]) -> tuple[list[sp.Expr], list[sp.Expr]]:
    """The masses of ``xs`` and of ``ws``: by position when ``masses`` lists exactly
    ``xs + ws`` in that order (as ``Network.problem`` makes it; no lookups), else by key."""
    if len(masses) == len(xs) + len(ws) and tuple(masses) == xs + ws:
        values = list(masses.values())
        return values[:len(xs)], values[len(xs):]
    return [masses[x] for x in xs], [masses[w] for w in ws]


def is_network_problem(problem: Problem) -> bool:
    """Whether ``problem`` was built by ``Network.problem`` with holonomic neurons."""
    net = problem.network
    return isinstance(net, Network) and net.speed is None


def class_residual(coordinate_mass: sp.Expr, weight: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Kinetic residual template of one coordinate: ``(E(ξ, ξ̇, ξ̈), ϖ̇/ϖ)``."""
    p = Problem(Action([XI], masses=coordinate_mass, weight=weight),
                parameters=sorted((coordinate_mass.free_symbols | weight.free_symbols) - {t},
                                  key=str))
    el = euler_lagrange(p)
    return el.residuals[0], el.rate


@dataclass(frozen=True)
class NetworkState:
    """A numeric state of a network problem, in network order.

    Attributes
    ----------
    x, x_dot
        Neuron outputs and their velocities, shape ``(ν,)``.
    w, w_dot
        Weights and their velocities in the order of ``Network.weights``,
        shape ``(|A|,)``.
    t
        Time.
    """

    x: np.ndarray
    x_dot: np.ndarray
    w: np.ndarray
    w_dot: np.ndarray
    t: float = 0.0


@dataclass
class NetworkEvaluation:
    """Eq. (10) evaluated at a state: ``A δ = b`` and its factors.

    Attributes
    ----------
    J_x, J_W
        Constraint Jacobians ``G_ξ`` (``ν × ν``) and ``G_M`` (``ν × |A|``), sparse.
    A, b
        ``J_x J_xᵀ / m_x + J_W J_Wᵀ / m_W`` (dense) and the right-hand side.
    multipliers
        The solution ``δ`` (``λ`` without time weight).
    accelerations_x, accelerations_w
        ``q̈ = M⁻¹ (f - Jᵀ δ)``.
    """

    J_x: sparse.csr_matrix
    J_W: sparse.csr_matrix
    A: np.ndarray
    b: np.ndarray
    multipliers: np.ndarray
    accelerations_x: np.ndarray
    accelerations_w: np.ndarray


class NetworkSystem(DerivedSystem):
    """The derived system of a network problem, kept as templates plus the graph (form
    ``"network"`` of the :class:`~cognitive_action.derive.contract.DerivedSystem`
    contract).

    Build it with :func:`derive_network`.

    Attributes
    ----------
    problem, network
        What was derived.
    templates, template_index
        One hidden-neuron :class:`NeuronTemplate` per activation, and per neuron (network
        order) the index of its template (``-1`` for inputs); ``template`` is the single
        template of a network with one activation.
    kinetic_x, kinetic_w
        Euler-Lagrange residual templates of one neuron output and one weight
        (functions of ``ξ, ξ̇, ξ̈``), divided by ``ϖ``.
    mass_x, mass_W, rate
        The masses and ``ϖ̇/ϖ`` (``mass_w`` is a deprecated alias of ``mass_W``).
    loss_gradient
        ``F_x/ϖ`` by neuron (the ``L_F`` of eq. 8; ``-V_x`` for ``F = -ϖV``).
    multipliers
        ``δ`` (or ``λ``) symbols, one per neuron, in network order.
    """

    def __init__(self, problem: Problem) -> None:
        with gc_paused():  # ~10⁵ objects made here (see gc_paused)
            if not is_network_problem(problem):
                raise DerivationError(
                    "not a holonomic network problem",
                    fix="build it with Network(...).problem(); otherwise use euler_lagrange")
            net: Network = problem.network
            action = problem.action
            xs, ws = net.neurons, net.weights
            if len(problem.constraints) != len(net.order) or (
                    problem.coordinates != xs + ws  # identical tuples: no hashing
                    and set(problem.coordinates) != set(xs + ws)):
                raise DerivationError("the problem's constraints or coordinates were changed "
                                      "after it was built from its network",
                                      fix="use the generic euler_lagrange for modified problems")
            F = action.lagrangian
            coords = xs + ws
            weights = _Weights(problem.coordinate_set, set(xs))  # neither 10⁵ jets nor hashes
            forbidden = (weights, Jets(coords, 1), Jets(coords, 2))
            if any(any(s in f for f in forbidden) for s in F.atoms(sp.Symbol)):
                raise DerivationError("F depends on weights or velocities",
                                      fix="use the generic euler_lagrange for such Lagrangians")
            self.mass_x = action.masses[xs[0]]
            self.mass_W = action.masses[ws[0]] if ws else sp.S.One
            mx, mw = _class_masses(action.masses, xs, ws)
            if _differ(mx, self.mass_x) or _differ(mw, self.mass_W):
                raise DerivationError("masses differ within neurons or weights",
                                      fix="use the generic euler_lagrange for per-coordinate "
                                      "masses")
            self.problem, self.network = problem, net
            weight = action.weight
            self.templates, self.template_index = neuron_templates(net)
            self.kinetic_x, self.rate = class_residual(self.mass_x, weight)
            self.kinetic_w, _ = class_residual(self.mass_W, weight)
            loss = Differentiator(xs).gradient(F)
            if weight != 1:
                loss = {q: sp.Add(*(a_ / weight for a_ in sp.Add.make_args(v)))
                        for q, v in loss.items()}
            self.loss_gradient = loss
            self.names = [c.name for c in problem.constraints]
            self.multipliers = tuple(symbol(multiplier_name(n, holonomic=True,
                                                            weighted=weight != 1))
                                     for n in self.names)
            idx = {n: i for i, n in enumerate(net.order)}
            edges = [(idx[j], idx[k]) for (j, k) in net.w]
            self.targets = np.array([e[0] for e in edges], dtype=np.int64)
            self.sources = np.array([e[1] for e in edges], dtype=np.int64)
            self.input_index = np.array([idx[i] for i in net.inputs], dtype=np.int64)
            self._numeric: dict[str, object] = {}

    form = "network"

    @property
    def template(self) -> NeuronTemplate:
        """The hidden-neuron template of a network with one activation.

        Raises
        ------
        DerivationError
            With several activations (use :attr:`templates`).
        """
        if len(self.templates) != 1:
            raise DerivationError(f"the network has {len(self.templates)} neuron templates",
                                  fix="use system.templates and system.template_index")
        return self.templates[0]

    @functools.cached_property
    def roles(self) -> RoleMap:
        """The problem's roles and those of the multipliers ``δ`` (one per neuron)."""
        return self.problem.roles.merged(multiplier_roles(self.multipliers,
                                                          tuple(self.names)))

    @property
    def states(self) -> tuple[sp.Symbol, ...]:
        """``x, W`` then their velocities."""
        coords = self.network.neurons + self.network.weights
        return coords + tuple(dot(q) for q in coords)

    @property
    def unknowns(self) -> tuple[sp.Symbol, ...]:
        """``ẍ, Ẅ`` then the multipliers (eq. 10)."""
        coords = self.network.neurons + self.network.weights
        return tuple(dot(q, 2) for q in coords) + self.multipliers

    def __repr__(self) -> str:
        return (f"NetworkSystem({len(self.network.order)} neurons, "
                f"{len(self.network.weights)} weights)")

    # -- symbolic materialization --------------------------------------------------------
    def _neuron_terms(self, j: object, *, with_h: bool = False
                      ) -> tuple[sp.Expr, sp.Expr, sp.Expr | None]:
        """``(∂G_j/∂a, ∂G_j/∂x_j, h_j)`` of a non-input neuron: its template with the
        net input ``a_j`` substituted (``h_j`` only with ``with_h``: it needs ``ȧ_j``)."""
        key = (j, with_h)
        cache = self.__dict__.setdefault("_terms", {})
        if key not in cache:
            net = self.network
            idx = self._index[j]
            tpl = self.templates[self.template_index[idx]]
            xj = net.x[j]
            sub = {XI: xj, dot(XI): dot(xj), A: net.net_input(j)}
            if with_h:
                preds = list(net.graph.predecessors(j))
                sub[dot(A)] = sp.Add(*(term for k in preds for term in (  # symbol pairs
                    _product(dot(net.w[j, k]), net.x[k]), _product(net.w[j, k], dot(net.x[k])))))
            if (j, False) in cache:  # the same substitution, already made for a column
                g_a, g_xi, _ = cache[j, False]
            else:
                g_a, g_xi = substitute(tpl.g_a, sub), substitute(tpl.g_xi, sub)
            h = None
            if with_h:
                h = substitute(tpl.h0, sub) + 2 * g_a * sp.Add(
                    *(_product(dot(net.w[j, k]), dot(net.x[k])) for k in preds))
            cache[key] = (g_a, g_xi, h)
        return cache[key]

    @functools.cached_property
    def _index(self) -> dict[object, int]:
        return {n: i for i, n in enumerate(self.network.order)}

    @functools.cached_property
    def _arc_of(self) -> dict[sp.Symbol, tuple[object, object]]:
        """The arc ``(j, k)`` of each weight symbol (a lookup, not a scan of 40,000
        weights with SymPy's ``==`` per column of a dense net)."""
        return {wjk: jk for jk, wjk in self.network.w.items()}

    @functools.cached_property
    def _label_of(self) -> dict[sp.Symbol, object]:
        """The neuron label of each output symbol ``x``."""
        return {x: n for n, x in self.network.x.items()}

    def jacobian_row(self, j: object) -> tuple[dict[sp.Symbol, sp.Expr], sp.Expr]:
        """Row ``j`` of the constraints' Jacobian ``J`` (by coordinate) and ``h_j`` of
        eq. (10): a template instance, linear in the arcs into ``j``."""
        net = self.network
        xj = net.x[j]
        if j in net.inputs:
            return {xj: sp.S.One}, -self.input_accelerations[self._index[j]]
        g_a, g_xi, h = self._neuron_terms(j, with_h=True)
        row: dict[sp.Symbol, sp.Expr] = {xj: g_xi} if g_xi != 0 else {}
        for k in net.graph.predecessors(j):
            xk, wjk = net.x[k], net.w[j, k]
            row[xk] = row[xk] + g_a * wjk if xk in row else g_a * wjk
            row[wjk] = g_a * xk
        return row, h

    @functools.cached_property
    def jacobian_rows(self) -> tuple[tuple[dict[sp.Symbol, sp.Expr], ...],
                                     tuple[sp.Expr, ...]]:
        """Every row of ``J`` and every ``h`` of eq. (10), one per neuron in network
        order (:meth:`jacobian_row`; a time linear in the number of arcs)."""
        rows = [self.jacobian_row(j) for j in self.network.order]
        return tuple(r for r, _ in rows), tuple(h for _, h in rows)

    def _column(self, q: sp.Symbol) -> list[tuple[int, sp.Expr]]:
        """The nonzero entries ``(row, ∂G_row/∂q)`` of column ``q`` of ``J``, from the
        rows that contain ``q`` only."""
        net = self.network
        arc = self._arc_of.get(q)
        if arc is not None:
            j, k = arc
            return [] if j in net.inputs else [(self._index[j],
                                               self._neuron_terms(j)[0] * net.x[k])]
        label = self._label_of[q]
        out: dict[int, sp.Expr] = {}
        if label in net.inputs:
            out[self._index[label]] = sp.S.One
        else:
            g_xi = self._neuron_terms(label)[1]
            if g_xi != 0:
                out[self._index[label]] = g_xi
        for j in net.graph.successors(label):
            if j in net.inputs:
                continue
            entry = self._neuron_terms(j)[0] * net.w[j, label]
            i = self._index[j]
            out[i] = out[i] + entry if i in out else entry
        return sorted(out.items())

    def _kinetic(self, q: sp.Symbol) -> sp.Expr:
        kin = self.kinetic_x if q in self._neuron_set else self.kinetic_w
        return substitute(kin, {XI: q, dot(XI): dot(q), dot(XI, 2): dot(q, 2)})

    @functools.cached_property
    def _neuron_set(self) -> frozenset[sp.Symbol]:
        return frozenset(self.network.neurons)

    def preview(self, rows: int) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
        """The first ``rows`` residuals of eq. (8)-(9) and entries of ``J M⁻¹ f + h``
        (eq. 10), without materializing the rest (what ``cognitive-action derive``
        prints: the template instances it needs, where :meth:`euler_lagrange` builds
        every equation of a dense 200-neuron net, 40,200 of them).

        Returns
        -------
        residuals, b
            ``[(coordinate, residual), ...]`` for the first ``rows`` coordinates
            (neurons, then weights) and the first ``rows`` entries of ``b``, equal to
            ``euler_lagrange()`` and ``multiplier_equation(...).b_entries()``.
        """
        residuals, b = self.iter_preview(rows)
        return list(residuals), list(b)

    def iter_preview(self, rows: int) -> tuple[Iterator[tuple[sp.Symbol, sp.Expr]],
                                               Iterator[sp.Expr]]:
        """:meth:`preview` as two generators that build each row when it is asked for
        (a row of eq. 10 of a dense 200-neuron net has 401 terms and takes about a
        second: a printer shows the first rows at once, and ``| head`` stops early)."""
        net, lam = self.network, self.multipliers

        def residuals() -> Iterator[tuple[sp.Symbol, sp.Expr]]:
            for q in (net.neurons + net.weights)[:rows]:
                yield q, sp.Add(self._kinetic(q), self.loss_gradient.get(q, sp.S.Zero),
                                *(-lam[i] * v for i, v in self._column(q)))

        def b() -> Iterator[sp.Expr]:
            for j in net.order[:rows]:
                row, hj = self.jacobian_row(j)
                yield sp.Add(*(g * self._scaled_forcing(q) for q, g in row.items())) + hj

        return residuals(), b()

    def _scaled_forcing(self, q: sp.Symbol) -> sp.Expr:
        """``f_q / m_q`` of eq. (10): the class's kinetic forcing template (``q̈ = 0``)
        instantiated at ``q``, plus the loss gradient, over the class's mass."""
        cache = self.__dict__.setdefault("_forcing", {})
        if q not in cache:
            neuron = q in self._neuron_set
            kin = self.kinetic_x if neuron else self.kinetic_w
            mass = -kin.coeff(dot(XI, 2))
            forcing = substitute(self.kinetic_forcing[0 if neuron else 1],
                                 {XI: q, dot(XI): dot(q)})
            cache[q] = (1 / mass) * (forcing + self.loss_gradient.get(q, sp.S.Zero))
        return cache[q]

    def euler_lagrange(self) -> EulerLagrange:
        """Every equation of eq. (8)-(9) as SymPy expressions (linear in the arcs).

        Equal to the generic :func:`~cognitive_action.derive.euler_lagrange.euler_lagrange`
        of the same problem; meant for inspection, LaTeX and small networks
        (:meth:`preview` gives the first rows of a large one).
        """
        net, problem = self.network, self.problem
        lam = self.multipliers
        xs = net.neurons
        coords = xs + net.weights
        x_set = set(xs)
        jac_rows, h = self.jacobian_rows
        cols: dict[sp.Symbol, list[tuple[int, sp.Expr]]] = {}
        for i, row in enumerate(jac_rows):
            for q, v in row.items():
                cols.setdefault(q, []).append((i, v))
        residuals, mm_rows, forcing = [], [], []
        for q in coords:
            kin = self.kinetic_x if q in x_set else self.kinetic_w
            r_kin = substitute(kin, {XI: q, dot(XI): dot(q), dot(XI, 2): dot(q, 2)})
            r_loss = self.loss_gradient.get(q, sp.S.Zero)
            residuals.append(sp.Add(r_kin, r_loss, *(-lam[i] * v for i, v in cols.get(q, []))))
            m = -r_kin.coeff(dot(q, 2))
            mm_rows.append({dot(q, 2): m} | {lam[i]: v for i, v in cols.get(q, [])})
            forcing.append(r_kin + m * dot(q, 2) + r_loss)
        acc_constraints = []
        for row, hj in zip(jac_rows, h):
            mm_rows.append({dot(q, 2): v for q, v in row.items()})
            forcing.append(-hj)
            acc_constraints.append(sp.Add(*(v * dot(q, 2) for q, v in row.items())) + hj)
        vel = tuple(dot(q) for q in coords)
        acc = tuple(dot(q, 2) for q in coords)
        time_dependent = {dot(s, k) for s in coords + problem.signals
                          for k in range(MAX_ORDER + 1)}
        return EulerLagrange(
            problem=problem, coordinates=coords, velocities=vel, accelerations=acc,
            multipliers=lam, nonholonomic_multipliers=(), residuals=residuals,
            rate=self.rate, jacobian=SparseRows(self.names, coords, jac_rows),
            velocity_jacobian=SparseRows([], vel, []),
            acceleration_constraints=acc_constraints, unknowns=acc + lam,
            mass_matrix=SparseRows(tuple(coords) + tuple(self.names), acc + lam, mm_rows),
            forcing=forcing, time_dependent=frozenset(time_dependent))

    @property
    def mass_w(self) -> sp.Expr:
        """Deprecated alias of :attr:`mass_W` (one name, as in ``Network.problem(mass_W=)``)."""
        warnings.warn("mass_w is now mass_W", DeprecationWarning, stacklevel=2)
        return self.mass_W

    # -- numeric evaluation --------------------------------------------------------------
    def _functions(self, parameters: tuple[sp.Symbol, ...]) -> dict[str, object]:
        key = tuple(map(str, parameters))
        hit = self._numeric.get(key)
        if hit is None:
            args = [XI, dot(XI), A, dot(A), t, *parameters]
            kx, kw = self.kinetic_forcing
            hit = {
                "neuron": [sp.lambdify(args, [tpl.g_xi, tpl.g_a, tpl.h0], "numpy")
                           for tpl in self.templates],
                "kin_x": sp.lambdify(args, kx, "numpy"),
                "kin_w": sp.lambdify(args, kw, "numpy"),
                "masses": sp.lambdify([t, *parameters], [self.mass_x, self.mass_W], "numpy"),
            }
            self._numeric[key] = hit
        return hit

    def evaluate(self, state: NetworkState, values: Mapping[str | sp.Symbol, float]
                 ) -> NetworkEvaluation:
        """Evaluate eq. (10) at a state and solve it for the multipliers.

        Parameters
        ----------
        state
            Outputs, weights and their velocities.
        values
            Numbers for the parameters (masses, ``θ``, ...) and for the signal jets that
            occur (``e1``, ``e1_ddot``, ``y5``, ...), by name or symbol.
        """
        vals = {str(k): float(v) for k, v in values.items()} | {"t": float(state.t)}
        params = tuple(sorted({s for s in self._needed if str(s) in vals}, key=str))
        missing = sorted(str(s) for s in self._needed if str(s) not in vals)
        if missing:
            raise DerivationError(f"no value given for {', '.join(missing)}",
                                  fix="pass numbers for every parameter and signal")
        pv = [vals[str(p)] for p in params]
        fn = self._functions(params)
        nu = len(self.network.order)
        x, xd, w, wd = (np.asarray(v, dtype=float) for v in
                        (state.x, state.x_dot, state.w, state.w_dot))
        if x.shape != (nu,) or xd.shape != (nu,) or w.shape != self.targets.shape \
                or wd.shape != self.targets.shape:
            raise ShapeError("state arrays have the wrong shapes",
                                  fix=f"x, x_dot of shape ({nu},), w, w_dot of shape "
                                  f"({len(self.targets)},)")
        tg, sc = self.targets, self.sources
        a = np.bincount(tg, w * x[sc], minlength=nu)
        adot = np.bincount(tg, wd * x[sc] + w * xd[sc], minlength=nu)
        g_xi, g_a, h0 = np.zeros(nu), np.zeros(nu), np.zeros(nu)
        for n, f in enumerate(fn["neuron"]):
            rows = self.template_index == n
            for out, v in zip((g_xi, g_a, h0), f(x, xd, a, adot, state.t, *pv)):
                out[rows] = np.broadcast_to(np.asarray(v, dtype=float), (nu,))[rows]
        h = h0 + 2 * g_a * np.bincount(tg, wd * xd[sc], minlength=nu)
        # Input neurons: G = x - e(t), so G_x = 1 and h = -ë.
        ii = self.input_index
        g_xi[ii], g_a[ii] = 1.0, 0.0
        for i in ii:
            h[i] = -to_float(self.input_accelerations[i], vals)
        J_x = sparse.csr_matrix((g_a[tg] * w, (tg, sc)), shape=(nu, nu)) + sparse.diags(g_xi)
        J_W = sparse.csr_matrix((g_a[tg] * x[sc], (tg, np.arange(len(tg)))),
                                shape=(nu, len(tg)))
        m_x, m_w = (float(v) for v in fn["masses"](state.t, *pv))
        f_x = np.broadcast_to(np.asarray(fn["kin_x"](x, xd, a, adot, state.t, *pv),
                                         dtype=float), (nu,)).copy()
        for q, expr in self.loss_gradient.items():
            f_x[self.network.neurons.index(q)] += to_float(expr, vals | _state_values(
                self.network, x, xd, state.t))
        f_w = np.broadcast_to(np.asarray(fn["kin_w"](w, wd, a[tg], adot[tg], state.t, *pv),
                                         dtype=float), w.shape).copy()
        A_mat = (J_x @ J_x.T).toarray() / m_x + (J_W @ J_W.T).toarray() / m_w
        b = J_x @ f_x / m_x + J_W @ f_w / m_w + h
        try:
            delta = np.linalg.solve(A_mat, b)
        except np.linalg.LinAlgError as exc:
            raise DerivationError("eq. (10) is singular at this state",
                                  fix="check the rank of the constraint Jacobian "
                                  "(Proposition 1)") from exc
        return NetworkEvaluation(J_x=J_x, J_W=J_W, A=A_mat, b=b, multipliers=delta,
                                 accelerations_x=(f_x - J_x.T @ delta) / m_x,
                                 accelerations_w=(f_w - J_W.T @ delta) / m_w)

    @functools.cached_property
    def input_accelerations(self) -> dict[int, sp.Expr]:
        """``ë_j`` of each input constraint ``x_j - e_j(t)``, by neuron index, derived
        once (``h = -ë`` in eq. 10)."""
        return {int(i): second_derivative_of_input(self.problem, int(i))
                for i in self.input_index}

    @functools.cached_property
    def kinetic_forcing(self) -> tuple[sp.Expr, sp.Expr]:
        """The kinetic residual templates at ``ξ̈ = 0`` (neurons, weights): the part of
        the forcing ``f`` of eq. (10) that comes from the kinetic term."""
        zero = Walker([dot(XI, 2)])
        return zero.zero_out(self.kinetic_x), zero.zero_out(self.kinetic_w)

    @functools.cached_property
    def _needed(self) -> set[sp.Symbol]:
        return self._symbols()

    def _symbols(self) -> set[sp.Symbol]:
        """Parameters and signal jets the numeric evaluation needs."""
        local = {XI, dot(XI), dot(XI, 2), A, dot(A), t}
        out: set[sp.Symbol] = set()
        tpl_exprs = [e for tp in self.templates for e in (tp.h0, tp.g_a, tp.g_xi)]
        for e in (*tpl_exprs, self.kinetic_x, self.kinetic_w, self.mass_x, self.mass_W):
            out |= e.free_symbols - local
        coords = set(self.problem.coordinates)
        for e in self.loss_gradient.values():
            out |= {s for s in e.free_symbols if s not in coords and s != t}
        for i in self.input_index:
            out |= {s for s in self.input_accelerations[i].free_symbols
                    if s not in coords and s != t}
        return out


def second_derivative_of_input(problem: Problem, i: int) -> sp.Expr:
    """``ë`` of the input constraint ``x - e(t)`` number ``i`` (a derivative operator
    over that constraint's own symbols only)."""
    expr = problem.constraints[i].expr
    free = expr.free_symbols  # once: not per coordinate (quadratic in the weights)
    coords = [s for s in free if s in problem.coordinate_set]  # a few symbols, not 10⁵
    D = TimeDerivative({dot(s, k) for s in coords + list(problem.signals)
                        for k in range(MAX_ORDER + 1)})
    return -Walker({dot(q, 2) for q in coords}).zero_out(D(D(expr)))


def _state_values(net: Network, x: np.ndarray, xd: np.ndarray, time: float
                  ) -> dict[str, float]:
    out = {str(s): float(v) for s, v in zip(net.neurons, x)}
    out |= {str(dot(s)): float(v) for s, v in zip(net.neurons, xd)}
    out["t"] = float(time)
    return out


def derive_network(problem: Problem) -> NetworkSystem:
    """Derive eq. (8)-(10) of a network problem by per-neuron templates.

    Parameters
    ----------
    problem
        Made by :meth:`cognitive_action.declare.network.Network.problem` with
        instantaneous neurons (eq. 4).

    Returns
    -------
    NetworkSystem
        Templates plus the graph; materialize with ``.euler_lagrange()`` or evaluate
        numerically with ``.evaluate(state, values)``.
    """
    return NetworkSystem(problem)
