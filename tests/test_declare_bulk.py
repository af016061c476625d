"""Bulk declaration of networks (issue 16) against a slow, straightforward SymPy build.

The fast paths of ``declare`` (symbols made without ``sp.Symbol``'s constructor, net
inputs assembled in canonical order without ``Add.flatten``, constraint symbols carried
to ``Problem`` instead of scanned, lazy velocity sets) must produce the very objects the
plain construction produces. The reference here builds every symbol with
``sp.Symbol(name, real=True)``, every net input with ``sp.Add``/``sp.Mul`` and every
problem with ``Problem``'s scanning path, on random digraphs (self-loops, cycles, string
labels, biases) and several seeds.
"""

from __future__ import annotations

import gc
import pickle
import random

import networkx as nx
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare.network import _sum_of_products
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.declare.symbols import Jets, dot, gc_paused, symbol, symbols_bulk, t
from cognitive_action.derive.euler_lagrange import euler_lagrange
from cognitive_action.derive.network import derive_network
from cognitive_action.errors import DeclarationError, GraphError


def _real(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def random_net_graph(n: int, seed: int, p: float = 0.5, labels: str = "int"
                     ) -> tuple[nx.DiGraph, list]:
    """A random digraph with two inputs, cycles and self-loops among the others."""
    rng = random.Random(seed)
    names = list(range(n)) if labels == "int" else [f"n{i}" for i in range(n)]
    rng.shuffle(names)
    inputs = names[:2]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    for j in names[2:]:
        sources = [k for k in names if rng.random() < p] or [inputs[0]]
        g.add_edges_from((k, j) for k in sources)
    return g, inputs


def slow_constraints(net: ca.Network) -> list[sp.Expr]:
    """``x_j - e_j`` and ``x_j - tanh(Σ_k w_jk x_k)`` built term by term with SymPy."""
    def lab(v):
        return str(v)
    out = []
    for j in net.order:
        x = _real(f"x{lab(j)}")
        if j in net.inputs:
            out.append(x - (sp.S.One if j == net.bias else _real(f"e{lab(j)}")))
            continue
        a = sp.Add(*[sp.Mul(_real(f"w{lab(j)}_{lab(k)}"), _real(f"x{lab(k)}"))
                     for k in net.graph.predecessors(j)])
        out.append(x - sp.tanh(a))
    return out


# -- symbols -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["w3_1", "x12", "q_dot_not", "a"])
def test_bulk_symbols_are_sympy_real_symbols(name):
    fast = symbols_bulk([name])[0]
    ref = _real(name)
    assert fast == ref and hash(fast) == hash(ref)
    assert type(fast) is sp.Symbol and fast.name == name
    assert sp.srepr(fast) == sp.srepr(ref)
    assert fast._assumptions0 == ref._assumptions0
    assert fast.is_real is True and fast.is_commutative is True
    assert fast.is_positive is None and fast.is_integer is None  # nothing more assumed
    assert fast != sp.Symbol(name) and fast != sp.Symbol(name, positive=True)
    assert fast is symbol(name)  # one object per name
    assert pickle.loads(pickle.dumps(fast)) == ref
    assert fast + ref == 2 * ref and sp.diff(fast**2 * ref, ref) == 3 * ref**2


def test_symbols_bulk_matches_symbol_and_keeps_order():
    names = [f"bulk{i}_{j}" for i in range(30) for j in range(7)]
    made = symbols_bulk(names)
    assert [s.name for s in made] == names
    assert made == [symbol(n) for n in names] == [_real(n) for n in names]


def test_gc_paused_restores_a_disabled_collector():
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ZeroDivisionError), gc_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


@pytest.mark.parametrize("seed", range(4))
def test_jets_container_is_the_eager_set(seed):
    rng = random.Random(seed)
    bases = [symbol(f"c{seed}_{i}") for i in range(8)] + [sp.Symbol(f"u{seed}")]  # one not real
    probes = [b for b in bases] + [dot(b, k) for b in bases for k in (1, 2, 3)]
    probes += [sp.Symbol(f"c{seed}_0_dot"), _real(f"c{seed}_0_dot"),  # assumptions differ
               _real(f"other{seed}_dot"), sp.Integer(3), t]
    rng.shuffle(probes)
    for k in (1, 2):
        eager = {dot(b, k) for b in bases}
        lazy = Jets(bases, k)
        assert [p in lazy for p in probes] == [p in eager for p in probes]


# -- net inputs and constraints ------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("labels", ["int", "str"])
def test_net_inputs_and_constraints_equal_the_slow_build(seed, labels):
    g, inputs = random_net_graph(9, seed, labels=labels)
    net = ca.Network(g, inputs, "tanh")
    slow = slow_constraints(net)
    for c, ref, j in zip(net.constraints(), slow, net.order):
        assert c.expr == ref
        assert sp.srepr(c.expr) == sp.srepr(ref)  # the same tree, argument order included
        if j in net.inputs:
            assert c.symbols is None  # a user's input signal: scanned by Problem
        else:
            assert c.symbols == c.expr.free_symbols == ref.free_symbols
    for j in net.computing:
        a = net.net_input(j)
        assert a.args == sp.Add(*(net.w[j, k] * net.x[k]
                                  for k in net.graph.predecessors(j))).args
        assert net.net_input_symbols(j) == a.free_symbols


def test_bias_and_identity_outputs_equal_the_slow_build():
    net = ca.layered([3, 4, 2], output_activation="identity", bias=True)
    for c, j in zip(net.constraints(), net.order):
        if j in net.inputs:
            continue
        a = sp.Add(*(_real(f"w{j}_{k}") * _real(f"x{k}") for k in net.graph.predecessors(j)))
        x = _real(f"x{j}")
        ref = x - (a if net.activation_of(j).name == "identity" else sp.tanh(a))
        assert sp.srepr(c.expr) == sp.srepr(ref)
        assert c.symbols == c.expr.free_symbols


def test_sum_of_products_falls_back_where_sympy_collects_or_reorders():
    a, b, c = _real("a"), _real("b"), _real("c")
    p = sp.Symbol("p", positive=True)  # other assumptions: SymPy's order, not names
    cases = [[(a, b), (a, b)],  # a repeated product: 2ab
             [(c, a), (b, p), (p, a)],
             [(a, b)], [],
             [(c, b), (a, c), (b, a)]]
    for pairs in cases:
        ref = sp.Add(*(w * x for w, x in pairs))
        got = _sum_of_products(pairs)
        assert got == ref and sp.srepr(got) == sp.srepr(ref)


def test_speed_network_constraints_carry_their_velocity():
    c = sp.Symbol("c", positive=True)
    net = ca.chain(3, speed=c)
    problem = net.problem(parameters=[c])
    for con in problem.constraints[1:]:
        assert con.symbols == con.expr.free_symbols
        assert con.kind == "nonholonomic"
    assert problem.constraints[0].kind == "holonomic"


def test_weight_names_are_checked_as_before():
    with pytest.raises(DeclarationError, match="'w2_dot' ends in the reserved suffix '_dot'"):
        ca.Network([("dot", 2)], ["dot"])
    with pytest.raises(GraphError, match="both get the name w1_2_3"):
        ca.Network([("2_3", "1"), ("3", "1_2")], ["2_3", "3"])  # w1_2_3 twice


# -- problems: the carried symbols against the scan ------------------------------------------
def _scanned(problem: Problem) -> Problem:
    """The same problem, its constraints given as bare expressions (scanned)."""
    a = problem.action
    action = Action(a.coordinates, masses=dict(a.masses), weight=a.weight,
                    lagrangian=a.lagrangian)
    return Problem(action, [Constraint(c.expr, c.name) for c in problem.constraints],
                   signals=problem.signals, parameters=problem.parameters)


def test_carried_symbols_are_checked_like_scanned_ones():
    x, y = symbol("bx"), symbol("by")
    m = sp.Symbol("bm", positive=True)
    action = Action([x], masses=m)
    with pytest.raises(DeclarationError, match="undeclared symbol"):
        Problem(action, [Constraint(x - y, symbols=frozenset({x, y}))], parameters=[m])
    with pytest.raises(DeclarationError, match="involves no coordinate"):
        Problem(action, [Constraint(m - 1, symbols=frozenset({m}))], parameters=[m])
    # a symbol spelt like the coordinate with other assumptions is renamed, as when scanned
    plain = sp.Symbol("bx")
    p = Problem(action, [Constraint(plain**2 - m, symbols=frozenset({plain, m}))],
                parameters=[m])
    assert p.constraints[0].expr == x**2 - m
    assert p.constraints[0].symbols == frozenset({x, m})
    moving = Problem(action, [Constraint(dot(x) - x, symbols=frozenset({dot(x), x}))],
                     parameters=[m])
    assert moving.constraints[0].kind == "nonholonomic"


@pytest.mark.parametrize("seed", range(3))
def test_random_nets_declared_both_ways_derive_the_same_equations(seed):
    g, inputs = random_net_graph(6, seed, p=0.6)
    net = ca.Network(g, inputs, "tanh", outputs=[list(g)[-1]])  # not an input
    theta = _real("theta")
    bulk = net.problem(weight=sp.exp(theta * t), parameters=[theta])
    scanned = _scanned(bulk)
    assert [(c.name, c.kind, sp.srepr(c.expr)) for c in bulk.constraints] == \
        [(c.name, c.kind, sp.srepr(c.expr)) for c in scanned.constraints]
    # and against the slow SymPy build of the constraints
    slow = Problem(Action(bulk.coordinates, masses=dict(bulk.action.masses),
                          weight=bulk.action.weight, lagrangian=bulk.action.lagrangian),
                   [Constraint(e, c.name) for e, c in zip(slow_constraints(net),
                                                          bulk.constraints)],
                   signals=bulk.signals, parameters=bulk.parameters)
    el_bulk, el_slow = euler_lagrange(bulk), euler_lagrange(slow)
    assert el_bulk.residuals == el_slow.residuals
    assert el_bulk.jacobian.to_matrix() == el_slow.jacobian.to_matrix()
    templated = derive_network(bulk).euler_lagrange()  # another route: equal, not identical
    difference = (templated.jacobian.to_matrix() - el_slow.jacobian.to_matrix()).expand()
    assert difference == sp.zeros(*difference.shape)


def test_dense_net_declares_the_slow_build():
    n = 12
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((k, j) for j in range(2, n) for k in range(n))
    net = ca.Network(g, [0, 1], "tanh", outputs=[n - 1])
    problem = net.problem()
    for c, ref in zip(problem.constraints, slow_constraints(net)):
        assert sp.srepr(c.expr) == sp.srepr(ref)
    assert problem.coordinate_set == frozenset(
        [_real(f"x{i}") for i in range(n)]
        + [_real(f"w{j}_{k}") for j in range(2, n) for k in range(n)])
    roles = problem.roles
    assert str(roles[dot(net.w[5, 5])].describe()) == "velocity of w5_5"


def test_shared_masses_are_renamed_and_checked_once_for_all_coordinates():
    q, r = symbol("mq"), symbol("mr")
    with pytest.raises(DeclarationError, match="the mass of mr is negative"):
        Problem(Action([q, r], masses={q: 1, r: -2}))
    plain, declared = sp.Symbol("mm"), sp.Symbol("mm", real=True)
    p = Problem(Action([q, r], masses={q: plain, r: plain}), parameters=[declared])
    assert all(m is declared for m in p.action.masses.values())  # both renamed
