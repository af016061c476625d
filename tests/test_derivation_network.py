"""The derivation engine on neural networks, against references typed here from the paper.

Every reference in this file is written independently of the engine: the paper's printed
matrices and constraints typed by hand, hand-written backprop (the chain rule typed as
delta formulas, and ``sympy.diff`` of the composed loss ``V̄(W) = V(f_W(e))``), a NumPy
forward pass, finite differences, and the constraints of eq. (4) re-typed as NumPy/mpmath
functions of the graph. The engine's output is compared to them symbolically
(``simplify(ours - theirs) == 0``) or numerically at random points.

Conventions (see ``design.md`` and the paper, Section 3):

- Our constraint Jacobian ``J = G_q`` has one row per constraint and one column per
  coordinate; restricted to the outputs it is ``(G_ξ)_{ji} = G^j_{ξ^i}``. The paper's
  ``T_ij = G^j_{ξ^i}`` (eq. 17) is therefore ``J_ξᵀ``.
- With ``ϖ = exp(θt)`` our multipliers are ``δ = λ/ϖ`` and every Euler-Lagrange residual
  is divided by ``ϖ``; ``F = -ϖ V`` (``Network.problem``), so ``L_F/ϖ = -V_x``.
- "Sign of eq. (15)" (design.md): gradient descent is ``Ẇ = -(1/γ) δ_j G^j_M``; the
  printed eq. (15) has the opposite sign. The weight law is checked against the gradient
  of the composed loss, and a separate test shows the printed sign disagrees with it.
"""

from __future__ import annotations

import random

import mpmath
import networkx as nx
import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S  # noqa: N812 (the API's documented alias)
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.derive import NetworkState
from cognitive_action.errors import DerivationError, InconsistentInitialConditionsError

R = S.symbol  # real jet symbols, as the engine names them (x3, w3_1, e1_ddot, ...)
THETA = sp.Symbol("theta", positive=True)
GAMMA = sp.Symbol("gamma", positive=True)
EPS = sp.Symbol("epsilon", positive=True)
M_X = sp.Symbol("m_x", positive=True)  # Network.problem's default mass symbols
M_W = sp.Symbol("m_W", positive=True)


# -- helpers ---------------------------------------------------------------------------------
def _zero(expr: sp.Expr) -> bool:
    """``simplify(expr) == 0``, also trying the exponential form of hyperbolic functions."""
    e = sp.simplify(expr)
    if e == 0:
        return True
    return sp.simplify(sp.expand(e.rewrite(sp.exp))) == 0


def _matrix_zero(M: sp.Matrix) -> bool:
    return all(_zero(e) for e in M)


def _rest(el) -> dict[sp.Symbol, int]:
    """All velocities zero ("at rest")."""
    return {v: 0 for v in el.velocities}


def random_dag(n: int, seed: int, p: float = 0.3) -> tuple[nx.DiGraph, list[int]]:
    """A seeded random DAG with skip connections and randomly labelled neurons.

    ``networkx.gnp_random_graph`` (directed) keeps the arcs ``i → j`` with ``i < j``; the
    arcs ``0 → 1 → 2`` and the skip ``0 → 2`` are added so that a skip connection always
    exists. Neurons are then relabelled by a random permutation of ``1..n`` (so that the
    network order is not the labels' order). Inputs are the sources.
    """
    rng = random.Random(seed)
    g0 = nx.gnp_random_graph(n, p, seed=seed, directed=True)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((i, j) for i, j in g0.edges if i < j)
    g.add_edges_from([(0, 1), (1, 2), (0, 2)])
    perm = list(range(1, n + 1))
    rng.shuffle(perm)
    g = nx.relabel_nodes(g, dict(zip(range(n), perm)))
    inputs = sorted(v for v in g if g.in_degree(v) == 0)
    return g, inputs


def _has_skip(g: nx.DiGraph) -> bool:
    """Whether some arc ``u → v`` is bypassed by a longer path ``u → … → v``."""
    for u, v in g.edges:
        h = g.copy()
        h.remove_edge(u, v)
        if nx.has_path(h, u, v):
            return True
    return False


def _np_constraints(net: ca.Network, phases: dict | None = None):
    """Eq. (4) re-typed from the graph: ``G(t, x, w)`` with a math module ``mod``.

    Inputs: ``x_i - sin(t + φ_i)`` (or ``x_i - e_i`` with ``e`` given); others:
    ``x_j - tanh(Σ_k w_jk x_k)``. ``x`` is indexed in network order, ``w`` in the order
    of ``net.weights``.
    """
    idx = {n: i for i, n in enumerate(net.order)}
    widx = {jk: i for i, jk in enumerate(net.w)}

    def G(t, x, w, mod, e=None):
        out = []
        for j in net.order:
            if j in net.inputs:
                target = mod.sin(t + phases[j]) if e is None else e[j]
                out.append(x[idx[j]] - target)
            else:
                a = sum(w[widx[j, k]] * x[idx[k]] for k in net.graph.predecessors(j))
                out.append(x[idx[j]] - mod.tanh(a))
        return out

    return G


def _values_for(symbols, by_name: dict[str, float]) -> dict[sp.Symbol, float]:
    """Map numbers given by name onto the engine's symbols (any assumptions)."""
    return {s: by_name[str(s)] for s in symbols if str(s) in by_name}


def _symbols_of_multiplier_equation(me) -> set[sp.Symbol]:
    out: set[sp.Symbol] = set()
    for row in me.jacobian.rows:
        for v in row.values():
            out |= v.free_symbols
    for e in list(me.forcing.values()) + list(me.inverse_masses.values()) + list(me.h):
        out |= e.free_symbols
    return out


# == 1. the paper's 3-neuron chain (Section 3, "Reduction to Backpropagation") ================
def _chain_reference(sigma):
    """Hand-typed chain ``1 → 2 → 3``: symbols, σ, σ', outputs, loss."""
    x1, x2, x3, w21, w32, e1, y3 = (R(n) for n in ("x1", "x2", "x3", "w2_1", "w3_2",
                                                       "e1", "y3"))
    z = sp.Symbol("z", real=True)
    dsigma = sp.Lambda(z, sp.diff(sigma(z), z))
    V = (x3 - y3) ** 2 / 2
    return x1, x2, x3, w21, w32, e1, y3, dsigma, V


@pytest.mark.parametrize("name,sigma", [("tanh", sp.tanh),
                                        ("logistic", lambda a: 1 / (1 + sp.exp(-a)))])
def test_chain_T_is_the_printed_matrix(name, sigma):
    """``T_ij = G^j_{ξ^i}`` equals the matrix printed in Section 3, by both routes.

    Reference: the printed ``T`` with ``σ'`` computed by ``sympy.diff`` of σ typed here.
    """
    x1, x2, x3, w21, w32, *_, dsigma, _ = _chain_reference(sigma)
    printed = sp.Matrix([[1, -dsigma(w21 * x1) * w21, 0],
                         [0, 1, -dsigma(w32 * x2) * w32],
                         [0, 0, 1]])
    net = ca.chain(3, name)
    p = net.problem()
    assert net.neurons == (x1, x2, x3)
    for el in (ca.euler_lagrange(p), ca.derive_network(p).euler_lagrange()):
        T = el.jacobian.restrict(list(net.neurons)).to_matrix().T
        assert _matrix_zero(T - printed)


def _chain_limit_system(weighted: bool):
    """Our eq. (10) for the chain at rest, times ``m_x``, with ``m_x = ε m_W``, ``ε → 0``."""
    net = ca.chain(3)
    weight = sp.exp(THETA * S.t) if weighted else 1
    p = net.problem(weight=weight, parameters=[THETA] if weighted else [])
    el = ca.euler_lagrange(p)
    me = ca.multiplier_equation(el)
    rest = _rest(el)

    def limit(M: sp.Matrix) -> sp.Matrix:
        scaled = (M_X * M).xreplace(rest).subs(M_X, EPS * M_W)
        return scaled.applyfunc(lambda e: sp.limit(e, EPS, 0))

    return net, el, me, limit(me.A()), limit(me.b())


@pytest.mark.parametrize("weighted", [False, True], ids=["no-weight", "exp-theta-t"])
def test_chain_backprop_limit_gives_eq16_and_eq17(weighted):
    """``m_x·(A, b)`` at rest with ``m_x/m_W → 0`` is eq. (16); its solution is eq. (17).

    References: eq. (16) ``G_ξ G_ξᵀ δ = -G_ξ V_x`` built from ``sympy.diff`` of the
    hand-typed constraints and loss, and the delta formulas typed from the chain rule:
    ``δ3 = -V_x3``, ``δ2 = σ'(w32 x2) w32 δ3``, ``δ1 = σ'(w21 x1) w21 δ2``.
    """
    x1, x2, x3, w21, w32, e1, y3, dsigma, V = _chain_reference(sp.tanh)
    net, el, me, A0, b0 = _chain_limit_system(weighted)
    G = sp.Matrix([x1 - e1, x2 - sp.tanh(w21 * x1), x3 - sp.tanh(w32 * x2)])
    xi = sp.Matrix([x1, x2, x3])
    G_xi = G.jacobian(xi)  # rows: constraints, as (G_ξ)_{ji} = G^j_{ξ^i}
    V_x = sp.Matrix([sp.diff(V, v) for v in xi])
    assert _matrix_zero(A0 - G_xi * G_xi.T)  # eq. (16), left
    assert _matrix_zero(b0 + G_xi * V_x)  # eq. (16), right

    delta = A0.LUsolve(b0)
    T = G_xi.T
    assert _matrix_zero(T * delta + V_x)  # eq. (17)
    d3 = -sp.diff(V, x3)
    d2 = dsigma(w32 * x2) * w32 * d3
    d1 = dsigma(w21 * x1) * w21 * d2
    assert _matrix_zero(delta - sp.Matrix([d1, d2, d3]))
    assert el.multipliers == tuple(R(f"{'delta' if weighted else 'lambda'}_G{i}")
                                   for i in (1, 2, 3))


def _chain_weight_law():
    """Our weight equations with ``θ = γ/m_W``, ``m_W → 0``, solved for ``Ẇ``, with δ from
    the backprop limit, on the forward pass ``x = f_W(e)``."""
    x1, x2, x3, w21, w32, e1, y3, dsigma, V = _chain_reference(sp.tanh)
    net, el, me, A0, b0 = _chain_limit_system(weighted=True)
    delta = dict(zip(el.multipliers, A0.LUsolve(b0)))
    law = {}
    for w in (w21, w32):
        i = el.coordinates.index(w)
        r = el.residuals[i].subs(THETA, GAMMA / M_W)
        r = sp.limit(sp.expand(r), M_W, 0)
        (wdot,) = sp.solve(r, S.dot(w))
        law[w] = wdot.xreplace(delta)
    forward = {x1: e1, x2: sp.tanh(w21 * e1)}
    forward[x3] = sp.tanh(w32 * forward[x2])
    law = {w: v.xreplace(forward) for w, v in law.items()}
    Vbar = V.xreplace({x3: forward[x3]})  # the composed loss V̄(W) = V(f_W(e))
    return law, Vbar, forward, (x1, x2, x3, w21, w32, e1, y3, dsigma)


def test_chain_weight_law_is_gradient_descent_on_composed_loss():
    """Eq. (9) in the limit gives ``Ẇ = -(1/γ) δ_j G^j_M = -(1/γ) ∂V̄/∂W``.

    Reference: ``sympy.diff`` of the composed loss ``V̄(W) = ½(σ(w32 σ(w21 e1)) - y3)²``
    (no delta formulas involved).
    """
    law, Vbar, _, (_, _, _, w21, w32, *_) = _chain_weight_law()
    for w in (w21, w32):
        assert _zero(law[w] + sp.diff(Vbar, w) / GAMMA)


def test_printed_eq15_sign_disagrees_with_the_gradient():
    """design.md, "Sign of eq. (15)": the printed ``Ẇ_ij = -(1/γ) σ'(w_ik x^k) δ_i x^j``
    is the gradient *ascent* direction; our weight law is the descent one."""
    law, Vbar, forward, (x1, x2, x3, w21, w32, e1, y3, dsigma) = _chain_weight_law()
    x = forward
    d3 = -(x[x3] - y3)  # δ from eq. (17), typed from the chain rule
    d2 = dsigma(w32 * x[x2]) * w32 * d3
    printed = {w21: -dsigma(w21 * x[x1]) * d2 * x[x1] / GAMMA,
               w32: -dsigma(w32 * x[x2]) * d3 * x[x2] / GAMMA}
    descent = {w: -sp.diff(Vbar, w) / GAMMA for w in (w21, w32)}
    pt = {e1: 0.7, y3: -0.3, w21: 0.9, w32: -1.3, GAMMA: 2.0}
    for w in (w21, w32):
        assert _zero(printed[w] + descent[w])  # exactly the opposite sign
        assert abs(float(printed[w].xreplace(pt))) > 1e-3  # and not trivially zero
        assert abs(float((printed[w] - law[w]).xreplace(pt))) > 1e-3
        assert abs(float((descent[w] - law[w]).xreplace(pt))) < 1e-14


def test_chain_eq10_with_finite_masses_is_the_printed_formula():
    """Our ``A δ = b`` equals eq. (10) as printed, at finite masses and nonzero velocities.

    Reference: eq. (10) assembled in the test from ``sympy.diff`` gradients and Hessians
    of the hand-typed constraints ``G(τ, ξ, M)`` with ``e1(τ)`` an undefined function,
    ``ϖ = exp(θt)``, ``F = -ϖ V``; with ``λ = ϖ δ`` the printed equation divided by ``ϖ``
    must be ours.
    """
    tau = S.t
    x1, x2, x3, w21, w32, _, y3, _, V = _chain_reference(sp.tanh)
    e = sp.Function("e1")(tau)
    G = [x1 - e, x2 - sp.tanh(w21 * x1), x3 - sp.tanh(w32 * x2)]
    xi, M = [x1, x2, x3], [w21, w32]
    xd = [S.dot(v) for v in xi]
    wd = [S.dot(v) for v in M]
    varpi = sp.exp(THETA * tau)
    F = -varpi * V
    LFx = [sp.diff(F, v) for v in xi]
    LFw = [sp.diff(F, v) for v in M]
    jet = {sp.Derivative(e, (tau, 2)): R("e1_ddot"), sp.Derivative(e, tau): R("e1_dot"),
           e: R("e1")}

    def printed_A():
        A = sp.zeros(3, 3)
        for i in range(3):
            for j in range(3):
                A[i, j] = sum(sp.diff(G[i], a) * sp.diff(G[j], a) for a in xi) / M_X + \
                    sum(sp.diff(G[i], a) * sp.diff(G[j], a) for a in M) / M_W
        return A

    def printed_b():
        out = []
        for g in G:
            inner = sp.diff(g, tau, 2) + 2 * (
                sum(sp.diff(g, tau, a) * v for a, v in zip(xi, xd))
                + sum(sp.diff(g, tau, m) * v for m, v in zip(M, wd))
                + sum(sp.diff(g, a, m) * va * vm for a, va in zip(xi, xd)
                      for m, vm in zip(M, wd))) \
                + sum(sp.diff(g, a, b) * va * vb for a, va in zip(xi, xd)
                      for b, vb in zip(xi, xd)) \
                + sum(sp.diff(g, m, n) * vm * vn for m, vm in zip(M, wd)
                      for n, vn in zip(M, wd))
            rhs = varpi * inner - sp.diff(varpi, tau) * (
                sum(v * sp.diff(g, a) for a, v in zip(xi, xd))
                + sum(v * sp.diff(g, m) for m, v in zip(M, wd))) \
                + sum(L * sp.diff(g, a) for L, a in zip(LFx, xi)) / M_X \
                + sum(L * sp.diff(g, m) for L, m in zip(LFw, M)) / M_W
            out.append((rhs / varpi).xreplace(jet))
        return sp.Matrix(out)

    net = ca.chain(3)
    p = net.problem(weight=varpi, parameters=[THETA])
    me = ca.multiplier_equation(p)
    assert _matrix_zero(me.A() - printed_A().xreplace(jet))
    assert _matrix_zero(me.b() - printed_b())


# == 2. the XOR network's constraints ========================================================
@pytest.mark.parametrize("name,sigma", [("tanh", sp.tanh),
                                        ("logistic", lambda a: 1 / (1 + sp.exp(-a)))])
def test_xor_constraints_are_the_papers(name, sigma):
    """``G^1..G^5`` of the XOR net equal Section 3's (typed here), in this order."""
    x1, x2, x3, x4, x5 = (R(f"x{i}") for i in range(1, 6))
    w31, w32, w41, w42, w53, w54 = (R(n) for n in ("w3_1", "w3_2", "w4_1", "w4_2",
                                                       "w5_3", "w5_4"))
    e1, e2 = R("e1"), R("e2")
    paper = [x1 - e1, x2 - e2, x3 - sigma(w31 * x1 + w32 * x2),
             x4 - sigma(w41 * x1 + w42 * x2), x5 - sigma(w53 * x3 + w54 * x4)]
    net = ca.xor(name)
    for cons in (net.constraints(), net.problem().constraints):
        assert [c.name for c in cons] == ["G1", "G2", "G3", "G4", "G5"]
        assert all(c.kind in ("", "holonomic") for c in cons)
        for ours, theirs in zip(cons, paper):
            assert _zero(ours.expr - theirs)
    assert set(net.weights) == {w31, w32, w41, w42, w53, w54}
    assert net.inputs == (1, 2) and net.outputs == (5,)


# == 3. Proposition 1 on random DAGs ==========================================================
DAG_CASES = [(5, 11), (8, 12), (12, 13), (20, 14), (35, 15), (60, 16)]


def test_random_dags_have_skip_connections_and_shuffled_labels():
    for n, seed in DAG_CASES:
        g, inputs = random_dag(n, seed, p=min(0.3, 6 / n))
        assert nx.is_directed_acyclic_graph(g) and _has_skip(g)
        assert inputs and all(g.in_degree(i) == 0 for i in inputs)


def _fd_jacobian(G, x, w, wrt_x: bool, h=1e-6) -> np.ndarray:
    """Central finite differences of the re-typed constraints."""
    base = x if wrt_x else w
    cols = []
    for k in range(len(base)):
        up, dn = base.copy(), base.copy()
        up[k] += h
        dn[k] -= h
        gu = G(0.0, up, w, np) if wrt_x else G(0.0, x, up, np)
        gd = G(0.0, dn, w, np) if wrt_x else G(0.0, x, dn, np)
        cols.append((np.array(gu) - np.array(gd)) / (2 * h))
    return np.array(cols).T


@pytest.mark.parametrize("n,seed", DAG_CASES)
def test_proposition1_on_random_dag(n, seed):
    """``G_ξ`` has full rank and ``W`` is strictly lower triangular in ``net.order``.

    References: the graph (every arc goes forward in ``net.order``; inputs first); the
    Jacobian of eq. (4) re-typed in NumPy and differentiated by finite differences (unit
    lower triangular in ``net.order``, i.e. the paper's upper triangular ``G^j_{ξ^i}``);
    NumPy's ``matrix_rank`` of it.
    """
    g, inputs = random_dag(n, seed, p=min(0.3, 6 / n))
    net = ca.Network(g, inputs)
    assert net.is_feedforward
    pos = {v: i for i, v in enumerate(net.order)}
    assert set(net.order) == set(g) and net.order[:len(inputs)] == tuple(inputs)
    assert all(pos[u] < pos[v] for u, v in g.edges)

    W = net.weight_matrix()
    assert W.shape == (n, n)
    assert all(W[i, j] == 0 for i in range(n) for j in range(i, n))  # strictly lower
    assert {W[pos[j], pos[k]] for (j, k) in net.w} == set(net.weights)
    assert sum(1 for e in W if e != 0) == g.number_of_edges()

    p = net.problem()
    el = ca.euler_lagrange(p)
    report = ca.constraint_rank(el, wrt=net.neurons, method="numeric")
    assert report.full and report.rank == n and report.dependent == ()
    assert report.method == "numeric"
    whole = ca.constraint_rank(el, method="numeric")  # (G_ξ / G_M) of the proposition
    assert whole.full and whole.rank == n
    if n <= 12:
        sym = ca.constraint_rank(el, wrt=net.neurons, method="symbolic")
        assert sym.full and sym.rank == n and sym.method == "symbolic"

    # independent: finite differences of eq. (4) re-typed from the graph
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=n), rng.normal(size=len(net.weights))
    e = {i: x[pos[i]] for i in inputs}
    G = _np_constraints(net)
    Gf = lambda tt, xx, ww, mod: G(tt, xx, ww, mod, e=e)  # noqa: E731
    Jx = _fd_jacobian(Gf, x, w, wrt_x=True)
    assert np.allclose(np.diag(Jx), 1.0, atol=1e-8)
    assert np.allclose(np.triu(Jx, 1), 0.0, atol=1e-8)
    assert np.linalg.matrix_rank(Jx) == n
    # the engine's G_ξ at the same point is that matrix
    point = {str(s): v for s, v in zip(net.neurons, x)} | \
        {str(s): v for s, v in zip(net.weights, w)}
    ours = el.jacobian.restrict(list(net.neurons))
    J = np.zeros((n, n))
    for i, row in enumerate(ours.rows):
        for q, v in row.items():
            J[i, ours.column_index(q)] = float(v.xreplace(_values_for(v.free_symbols, point)))
    assert np.allclose(J, Jx, atol=1e-7)


def _two_cycle(fed: bool):
    """Neurons 1 ⇄ 2 with the identity activation, alone or fed by an input neuron 0."""
    if fed:
        net = ca.Network(nx.DiGraph([(0, 1), (1, 2), (2, 1)]), [0], "identity")
    else:
        net = ca.Network(nx.DiGraph([(1, 2), (2, 1)]), [], "identity")
    return net, net.problem()


@pytest.mark.parametrize("fed", [False, True], ids=["bare", "fed-by-input"])
@pytest.mark.parametrize("method", ["symbolic", "numeric"])
def test_rank_deficient_two_cycle_is_reported(method, fed):
    """``x1 = w1_2 x2 (+ w1_0 x0)``, ``x2 = w2_1 x1``: ``det G_ξ = 1 - w1_2 w2_1`` vanishes
    at ``w1_2 = w2_1 = 1``; the report gives rank ``ν - 1`` and names the dependent
    constraint; generically (no point fixed) the rank is full.

    Reference: the hand-computed dependence ``G2_ξ + G1_ξ (+ w1_0 G0_ξ) = 0`` at the point.
    """
    net, p = _two_cycle(fed)
    nu = len(net.order)
    assert not net.is_feedforward
    w12, w21 = net.w[1, 2], net.w[2, 1]
    at = {w12: 1.0, w21: 1.0}
    generic = ca.constraint_rank(p, wrt=net.neurons, method=method)
    assert generic.full and generic.rank == nu
    report = ca.constraint_rank(p, wrt=net.neurons, method=method, at=at)
    assert not report.full and report.rank == nu - 1 and report.size == nu
    names = {c.name for c in p.constraints}
    assert len(report.dependent) == 1 and report.dependent[0] in names
    if not fed:
        assert names == {"G1", "G2"}
    # the dependence is real: G1_ξ + G2_ξ (+ w1_0 G0_ξ) = 0 at the point (typed by hand)
    J = ca.euler_lagrange(p).jacobian.restrict(list(net.neurons)).to_matrix().xreplace(at)
    rows = {c.name: J[i, :] for i, c in enumerate(p.constraints)}
    combo = rows["G1"] + rows["G2"]
    if fed:
        combo += net.w[1, 0] * rows["G0"]
    assert combo.is_zero_matrix
    assert J.rank() == nu - 1


def test_rank_deficient_proportional_constraints_are_named():
    """``A: q1 + q2``, ``B: q2 - q3``, ``C: 2 q1 + 4 q2 - 2 q3`` (= 2A + 2B): rank 2, the
    dependent one named, by both methods; a proportional pair names its second member."""
    q1, q2, q3 = S.coordinates("q1 q2 q3")
    p = Problem(Action([q1, q2, q3], masses=1),
                [Constraint(q1 + q2, name="A"), Constraint(q2 - q3, name="B"),
                 Constraint(2 * q1 + 4 * q2 - 2 * q3, name="C")])
    for method in ("symbolic", "numeric"):
        r = ca.constraint_rank(p, method=method)
        assert (r.rank, r.size, r.full) == (2, 3, False)
        assert len(r.dependent) == 1 and r.dependent[0] in ("A", "B", "C")
    assert ca.constraint_rank(p, method="symbolic").dependent == ("C",)
    with pytest.raises(DerivationError, match="singular"):
        ca.multiplier_equation(p).solve({q: 0.0 for q in (q1, q2, q3)}
                                        | {S.dot(q): 0.0 for q in (q1, q2, q3)})


# == 4. the toy neural constraint with finite masses (design.md) ==============================
def _toy_closed_form(x1, x2, w, a, mx, mw):
    return mw * (a - x2) / (mw + mx * x1**2 * sp.sech(w * x1) ** 4)


def _lambda_at_rest(el, name: str) -> sp.Expr:
    me = ca.multiplier_equation(el)
    jets = {v: 0 for v in el.velocities} | {s: 0 for s in _symbols_of_multiplier_equation(me)
                                             if str(s).endswith("_ddot")}
    sol = me.A().xreplace(jets).LUsolve(me.b().xreplace(jets))
    return sol[[str(m) for m in el.multipliers].index(name)]


@pytest.mark.parametrize("variant", ["clamped-by-constraint", "constant-x1", "network"])
def test_toy_neural_constraint_finite_masses(variant):
    """``x2 - tanh(w x1) = 0``, loss ``(x2 - a)²/2``, at rest:
    ``λ = m_w (a - x2)/(m_w + m_x x1² sech⁴(w x1))`` → ``a - x2 = -V_x2`` as ``m_x/m_w → 0``.

    Reference: design.md's closed form; the limit against the output backprop delta.
    """
    a = sp.Symbol("a", real=True)
    mx, mw = sp.Symbol("m_x", positive=True), sp.Symbol("m_w", positive=True)
    if variant == "network":
        net = ca.chain(2)
        p = net.problem(mass_x=mx, mass_W=mw, targets={2: a}, parameters=[a])
        x1, x2, w = net.x[1], net.x[2], net.w[2, 1]
        name = "G2"
    elif variant == "clamped-by-constraint":
        x1, x2, w = S.coordinates("x1 x2 w")
        (e1,) = S.signals("e1")
        p = Problem(Action([x1, x2, w], masses={x1: mx, x2: mx, w: mw},
                           lagrangian=-(x2 - a) ** 2 / 2),
                    [Constraint(x1 - e1, name="input"),
                     Constraint(x2 - sp.tanh(w * x1), name="neuron")],
                    signals=[e1], parameters=[mx, mw, a])
        name = "neuron"
    else:
        x2, w = S.coordinates("x2 w")
        (x1,) = S.parameters("x1")
        p = Problem(Action([x2, w], masses={x2: mx, w: mw}, lagrangian=-(x2 - a) ** 2 / 2),
                    [Constraint(x2 - sp.tanh(w * x1), name="neuron")],
                    parameters=[mx, mw, a, x1])
        name = "neuron"
    el = ca.euler_lagrange(p)
    lam = _lambda_at_rest(el, f"lambda_{name}")
    assert _zero(lam - _toy_closed_form(x1, x2, w, a, mx, mw))
    limit = sp.limit(lam.subs(mx, EPS * mw), EPS, 0)
    V = (x2 - a) ** 2 / 2
    assert _zero(limit - (a - x2)) and _zero(limit + sp.diff(V, x2))


# == 5. template route against the generic route ============================================
def _compare_systems(generic, template) -> None:
    assert generic.coordinates == template.coordinates
    assert generic.multipliers == template.multipliers
    assert generic.unknowns == template.unknowns
    assert _zero(generic.rate - template.rate)
    assert generic.mass_matrix.row_labels == template.mass_matrix.row_labels
    for name in ("residuals", "forcing", "acceleration_constraints"):
        a, b = getattr(generic, name), getattr(template, name)
        assert len(a) == len(b)
        for i, (u, v) in enumerate(zip(a, b)):
            assert _zero(u - v), (name, i)
    assert _matrix_zero(generic.mass_matrix.to_matrix() - template.mass_matrix.to_matrix())
    assert _matrix_zero(generic.jacobian.to_matrix() - template.jacobian.to_matrix())


def _template_cases():
    yield "xor", ca.xor().problem()
    yield "layered-logistic-exp", ca.layered([2, 3, 2], "logistic").problem(
        weight=sp.exp(THETA * S.t), parameters=[THETA])
    g, inputs = random_dag(7, 21, p=0.4)
    assert _has_skip(g)
    yield "random-dag-skip", ca.Network(g, inputs).problem(
        weight=sp.exp(THETA * S.t), parameters=[THETA],
        inputs={i: sp.sin(S.t + k) for k, i in enumerate(inputs)})


@pytest.mark.parametrize("case", list(_template_cases()), ids=lambda c: c[0])
def test_template_route_equals_generic_route(case):
    """``derive_network(p).euler_lagrange()`` equals ``euler_lagrange(p)`` symbolically:
    residuals, mass matrix, forcing, Jacobian, acceleration-level constraints."""
    _, p = case
    _compare_systems(ca.euler_lagrange(p), ca.derive_network(p).euler_lagrange())


def _dag8():
    g, inputs = random_dag(8, 5, p=0.45)
    assert _has_skip(g)
    net = ca.Network(g, inputs)
    phases = {i: 0.3 + k for k, i in enumerate(net.inputs)}
    p = net.problem(weight=sp.exp(THETA * S.t), parameters=[THETA],
                    inputs={i: sp.sin(S.t + phases[i]) for i in net.inputs})
    return net, p, phases


def _random_state(net, rng, t0):
    nu, nw = len(net.neurons), len(net.weights)
    return NetworkState(x=rng.normal(size=nu), x_dot=rng.normal(size=nu),
                        w=rng.normal(size=nw), w_dot=rng.normal(size=nw), t=t0)


def _by_name(net, state, params) -> dict[str, float]:
    out = dict(params) | {"t": state.t}
    out |= {str(s): v for s, v in zip(net.neurons, state.x)}
    out |= {str(S.dot(s)): v for s, v in zip(net.neurons, state.x_dot)}
    out |= {str(s): v for s, v in zip(net.weights, state.w)}
    out |= {str(S.dot(s)): v for s, v in zip(net.weights, state.w_dot)}
    return out


def test_template_evaluate_equals_generic_multiplier_solve():
    """``derive_network(p).evaluate`` equals ``multiplier_equation(euler_lagrange(p)).solve``
    at random points to 1e-12 (random 8-neuron DAG, skip connections, ``sin`` inputs,
    ``exp(θt)`` weight); the accelerations also equal the generic mass-matrix solve."""
    net, p, _ = _dag8()
    el = ca.euler_lagrange(p)
    me = ca.multiplier_equation(el)
    system = ca.derive_network(p)
    syms = _symbols_of_multiplier_equation(me)
    M = el.mass_matrix.to_matrix()
    f = sp.Matrix(el.forcing)
    mm_syms = sorted(M.free_symbols | f.free_symbols, key=str)
    fM = sp.lambdify(mm_syms, M, "numpy")
    ff = sp.lambdify(mm_syms, f, "numpy")
    rng = np.random.default_rng(7)
    for _ in range(4):
        state = _random_state(net, rng, t0=float(rng.uniform(0, 3)))
        params = {"m_x": float(rng.uniform(0.2, 2)), "m_W": float(rng.uniform(0.2, 2)),
                  "theta": float(rng.uniform(0, 2))}
        params |= {str(s): float(rng.normal()) for s in p.signals}  # targets y
        ev = system.evaluate(state, params)
        vals = _by_name(net, state, params)
        ours = me.solve(_values_for(syms, vals))
        scale = max(1.0, float(np.max(np.abs(ours))))
        assert np.max(np.abs(ev.multipliers - ours)) <= 1e-12 * scale
        pt = [vals[str(s)] for s in mm_syms]
        u = np.linalg.solve(np.asarray(fM(*pt), float), np.asarray(ff(*pt), float).ravel())
        nq = len(el.coordinates)
        acc = np.concatenate([ev.accelerations_x, ev.accelerations_w])
        assert np.max(np.abs(u[:nq] - acc)) <= 1e-10 * max(1.0, np.max(np.abs(acc)))
        assert np.max(np.abs(u[nq:] - ours)) <= 1e-10 * scale


def test_accelerations_keep_the_constraints_to_second_order():
    """Independent check of eq. (10): along ``q(s) = q + s q̇ + s²/2 q̈`` with ``q̈`` from δ,
    ``d²/ds² G(t + s, q(s)) = J q̈ + h = 0``, by central differences of eq. (4) re-typed in
    mpmath (40 digits, ``h = 1e-12``). The check has teeth: the unconstrained
    accelerations ``q̈ = f/m`` (δ = 0) violate it by O(1)."""
    net, p, phases = _dag8()
    system = ca.derive_network(p)
    G = _np_constraints(net, phases)
    rng = np.random.default_rng(3)
    mpmath.mp.dps = 40
    h = mpmath.mpf("1e-12")

    def second_difference(state, qdd_x, qdd_w):
        def path(s):
            x = [mpmath.mpf(a) + s * b + s * s / 2 * c
                 for a, b, c in zip(state.x, state.x_dot, qdd_x)]
            w = [mpmath.mpf(a) + s * b + s * s / 2 * c
                 for a, b, c in zip(state.w, state.w_dot, qdd_w)]
            return G(mpmath.mpf(state.t) + s, x, w, mpmath)

        gp, g0, gm = path(h), path(0), path(-h)
        return np.array([float((a - 2 * b + c) / h**2) for a, b, c in zip(gp, g0, gm)])

    for _ in range(3):
        state = _random_state(net, rng, t0=float(rng.uniform(0, 3)))
        params = {"m_x": 0.5, "m_W": 1.5, "theta": 0.8}
        params |= {str(s): float(rng.normal()) for s in p.signals}
        ev = system.evaluate(state, params)
        d2 = second_difference(state, ev.accelerations_x, ev.accelerations_w)
        scale = 1.0 + np.max(np.abs(np.concatenate([ev.accelerations_x, ev.accelerations_w])))
        assert np.max(np.abs(d2)) <= 1e-12 * scale
        free_x = ev.accelerations_x + ev.J_x.T @ ev.multipliers / params["m_x"]
        free_w = ev.accelerations_w + ev.J_W.T @ ev.multipliers / params["m_W"]
        assert np.max(np.abs(second_difference(state, free_x, free_w))) > 1e-3


def test_multiplier_solve_accepts_names_like_evaluate():
    """``MultiplierEquation.solve`` with numbers given by name (as ``evaluate`` takes them)
    equals the solve by symbol (string keys never matched the engine's real/positive
    symbols before commit 452dfa9)."""
    p = ca.chain(2).problem()
    me = ca.multiplier_equation(p)
    vals = {"x1": 0.1, "x2": 0.2, "w2_1": 0.3, "x1_dot": 0.0, "x2_dot": 0.0, "w2_1_dot": 0.0,
            "m_x": 1.0, "m_W": 1.0, "e1_ddot": 0.0, "y2": 0.5, "t": 0.0}
    by_symbol = me.solve(_values_for(_symbols_of_multiplier_equation(me), vals))
    assert np.allclose(me.solve(vals), by_symbol, rtol=0, atol=1e-14)


# == 6. consistent initial conditions on the XOR net ========================================
def _xor_forward(W: dict[str, float], e: np.ndarray) -> np.ndarray:
    """NumPy forward pass of the XOR net (tanh)."""
    x1, x2 = e
    x3 = np.tanh(W["w3_1"] * x1 + W["w3_2"] * x2)
    x4 = np.tanh(W["w4_1"] * x1 + W["w4_2"] * x2)
    x5 = np.tanh(W["w5_3"] * x3 + W["w5_4"] * x4)
    return np.array([x1, x2, x3, x4, x5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_complete_initial_conditions(seed):
    """``x(0)`` is the forward pass and ``ẋ(0)`` its directional derivative along
    ``(Ẇ(0), ė(0))`` (central differences of the NumPy forward pass)."""
    net = ca.xor()
    el = ca.euler_lagrange(net.problem())
    rng = np.random.default_rng(seed)
    names = [str(w) for w in net.weights]
    W = dict(zip(names, rng.normal(size=6)))
    Wd = dict(zip(names, rng.normal(size=6)))
    e, ed = rng.normal(size=2), rng.normal(size=2)
    given = W | {f"{k}_dot": v for k, v in Wd.items()} | {"e1": e[0], "e2": e[1],
                                                            "e1_dot": ed[0], "e2_dot": ed[1]}
    ic = ca.complete_initial_conditions(el, given)
    x0 = np.array([ic[f"x{i}"] for i in range(1, 6)])
    xd0 = np.array([ic[f"x{i}_dot"] for i in range(1, 6)])
    assert np.allclose(x0, _xor_forward(W, e), rtol=0, atol=1e-12)
    s = 1e-6
    fwd = lambda s_: _xor_forward({k: W[k] + s_ * Wd[k] for k in W}, e + s_ * ed)  # noqa: E731
    assert np.allclose(xd0, (fwd(s) - fwd(-s)) / (2 * s), rtol=0, atol=1e-8)
    ca.validate_initial_conditions(el, ic)  # consistent: no error
    for k, v in given.items():
        assert ic[k] == pytest.approx(v, abs=0)


def _xor_consistent():
    net = ca.xor()
    el = ca.euler_lagrange(net.problem())
    given = {str(w): 0.5 - 0.2 * i for i, w in enumerate(net.weights)}
    given |= {"e1": 0.3, "e2": -0.6, "e1_dot": 0.2, "e2_dot": 0.1}
    return el, given, ca.complete_initial_conditions(el, given)


def test_xor_inconsistent_initial_conditions_name_the_violated_constraints():
    """Wrong ``x(0)``, wrong ``ẋ(0)``, or given values that cannot be completed: an
    :class:`InconsistentInitialConditionsError` that names the violated constraints."""
    el, given, ic = _xor_consistent()

    bad = dict(ic, x4=ic["x4"] + 0.1)  # violates G4 and, through x4, G5
    with pytest.raises(InconsistentInitialConditionsError, match="G4") as exc:
        ca.validate_initial_conditions(el, bad)
    assert {"G4", "G5"} <= set(exc.value.violated)
    assert "G1" not in exc.value.violated and "Fix:" in str(exc.value)

    bad = dict(ic, x3_dot=ic["x3_dot"] + 0.2)  # position fine, velocity level not
    with pytest.raises(InconsistentInitialConditionsError) as exc:
        ca.validate_initial_conditions(el, bad)
    assert "dG3/dt" in exc.value.violated and "dG3/dt" in str(exc.value)
    assert not any(k in exc.value.violated for k in ("G1", "G2", "G3", "G4", "G5"))

    with pytest.raises(InconsistentInitialConditionsError) as exc:  # x1(0) ≠ e1(0)
        ca.complete_initial_conditions(el, given | {"x1": given["e1"] + 1.0})
    assert set(exc.value.violated) == {"G1"} and "G1" in str(exc.value)

    with pytest.raises(InconsistentInitialConditionsError) as exc:  # ẋ2(0) ≠ ė2(0)
        ca.complete_initial_conditions(el, given | {"x2": given["e2"],
                                                    "x2_dot": given["e2_dot"] + 0.5})
    assert "dG2/dt" in exc.value.violated
