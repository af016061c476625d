"""Bad input: each mistake is a typed exception whose message says what is wrong and how to
fix it, raised by cognitive_action itself, never a traceback from inside SymPy.

Every case asserts

- the exception type (a subclass of :class:`cognitive_action.errors.CognitiveActionError`,
  defined in ``cognitive_action.errors``),
- key words of the message (what was wrong, naming the offending symbol, constraint,
  neuron or arc),
- a fix: the message contains ``Fix:`` and the exception's ``fix`` attribute is set,
- that the innermost frame that raised it is in ``cognitive_action``, not in SymPy or
  NumPy.

Thirteen of these cases first found engine bugs (strings passed to ``sympify``, Max/Min
differentiated silently, a zero time weight giving NaN, symbols with the declared name but
other assumptions, colliding neuron labels, a raw KeyError in the initial conditions,
misleading messages); they were fixed and the tests stand as regression tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S  # noqa: N812 (the API's documented alias)
from cognitive_action.declare.activations import Activation
from cognitive_action.declare.problem import Action, Constraint, Problem
from cognitive_action.errors import (
    ActivationError,
    CognitiveActionError,
    DeclarationError,
    DerivationError,
    GraphError,
    InconsistentInitialConditionsError,
    ShapeError,
)

PACKAGE = str(Path(ca.__file__).parent)


def _check(excinfo: pytest.ExceptionInfo, cls: type, *keywords: str) -> str:
    """The common assertions; returns the message."""
    err = excinfo.value
    assert isinstance(err, cls), f"{type(err).__name__} is not a {cls.__name__}"
    assert isinstance(err, CognitiveActionError)
    assert type(err).__module__ == "cognitive_action.errors"
    msg = str(err)
    for k in keywords:
        assert k in msg, f"{k!r} not in {msg!r}"
    assert "Fix:" in msg and err.fix, f"no fix in {msg!r}"
    raiser = str(excinfo.traceback[-1].path)
    assert raiser.startswith(PACKAGE), f"raised from {raiser}, not from cognitive_action"
    return msg


@pytest.fixture
def syms():
    x, q1, q2, w = S.coordinates("x q1 q2 w")
    m, L, theta, k = S.parameters("m L theta k")
    (e,) = S.signals("e")
    return dict(x=x, q1=q1, q2=q2, w=w, m=m, L=L, theta=theta, k=k, e=e)


# -- undeclared and misspelt symbols ---------------------------------------------------------
def test_undeclared_symbol_in_constraint(syms):
    x, m, L = syms["x"], syms["m"], syms["L"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m), [Constraint(x - L, name="rod")], parameters=[m])
    _check(exc, DeclarationError, "constraint rod", "undeclared", "L", "declare")


def test_undeclared_symbol_in_lagrangian_and_mass(syms):
    x, m, k = syms["x"], syms["m"], syms["k"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, lagrangian=-k * x**2 / 2), parameters=[m])
    _check(exc, DeclarationError, "Lagrangian F", "undeclared", "k")
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m), [x - 1])
    _check(exc, DeclarationError, "mass of x", "undeclared", "m")


def test_undeclared_symbol_in_network_loss():
    net = ca.xor()
    target = sp.Symbol("target", real=True)
    with pytest.raises(DeclarationError) as exc:
        net.problem(loss=(net.x[5] - target) ** 2 / 2)
    _check(exc, DeclarationError, "undeclared", "target", "parameters")


def test_misspelt_symbol_gets_a_suggestion(syms):
    x, m, theta = syms["x"], syms["m"], syms["theta"]
    thetta = sp.Symbol("thetta", real=True)
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, weight=sp.exp(thetta * S.t)), [x - 1],
                parameters=[m, theta])
    _check(exc, DeclarationError, "thetta", "did you mean 'theta'")


def test_misspelt_network_target_gets_a_suggestion():
    net = ca.xor()
    with pytest.raises(DeclarationError) as exc:
        net.problem(loss=(net.x[5] - sp.Symbol("y_5", real=True)) ** 2 / 2)
    _check(exc, DeclarationError, "y_5", "did you mean 'y5'")


def test_same_name_other_assumptions_is_explained(syms):
    x, m, theta = syms["x"], syms["m"], syms["theta"]
    plain = sp.Symbol("theta")  # what sympy.symbols('theta') gives
    try:
        Problem(Action([x], masses=m, weight=sp.exp(plain * S.t)), [x - 1],
                parameters=[m, theta])
    except DeclarationError as err:
        msg = str(err)
        assert "did you mean 'theta' for theta" not in msg
        assert "assumption" in msg or "real" in msg


# -- constraints -----------------------------------------------------------------------------
def test_constraint_without_coordinate(syms):
    x, m, L, e = syms["x"], syms["m"], syms["L"], syms["e"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m), [x - 1, Constraint(L - e, name="bad")],
                signals=[e], parameters=[m, L])
    _check(exc, DeclarationError, "constraint bad", "involves no coordinate")


def test_constraint_with_second_derivatives(syms):
    x, m = syms["x"], syms["m"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m), [Constraint(S.dot(x, 2) + x, name="acc")],
                parameters=[m])
    _check(exc, DeclarationError, "constraint acc", "x_ddot", "order 2", "not allowed")


# -- shapes ----------------------------------------------------------------------------------
def test_masses_list_does_not_match_coordinates(syms):
    q1, q2, x, m = syms["q1"], syms["q2"], syms["x"], syms["m"]
    with pytest.raises(ShapeError) as exc:
        Action([q1, q2, x], masses=[m, m])
    _check(exc, ShapeError, "2 masses", "3 coordinates", "one mass per coordinate")


def test_mass_matrix_of_the_wrong_size(syms):
    q1, q2 = syms["q1"], syms["q2"]
    with pytest.raises(ShapeError) as exc:
        Action([q1, q2], mass_matrix=sp.eye(3))
    _check(exc, ShapeError, "mass_matrix is 3x3", "2 coordinates", "2x2")


def test_network_targets_and_layers_of_the_wrong_shape():
    with pytest.raises(ShapeError) as exc:
        ca.xor().problem(targets={3: 0.5})
    _check(exc, ShapeError, "neuron 3", "(5,)")
    with pytest.raises(ShapeError) as exc:
        ca.layered([2])
    _check(exc, ShapeError, "layer sizes [2]", "output layer")


# -- activations -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,fn", [("relu", lambda a: sp.Max(0, a)),
                                     ("abs", lambda a: sp.Abs(a)),
                                     ("step", lambda a: sp.Heaviside(a))])
def test_non_differentiable_activation(name, fn):
    with pytest.raises(ActivationError) as exc:
        Activation(name, fn)
    _check(exc, ActivationError, f"activation {name!r}", "not C²", "smooth")
    with pytest.raises(ActivationError) as exc:  # in a network, before any derivation
        ca.xor(fn)
    _check(exc, ActivationError, "not C²")


def test_unknown_activation_name():
    with pytest.raises(ActivationError) as exc:
        ca.layered([2, 2, 1], "relu")
    _check(exc, ActivationError, "unknown activation 'relu'", "tanh", "logistic")


def test_abs_in_a_generic_constraint_at_derivation(syms):
    x, w, m = syms["x"], syms["w"], syms["m"]
    p = Problem(Action([x, w], masses=m), [Constraint(x - sp.Abs(w), name="kink")],
                parameters=[m])
    with pytest.raises(DerivationError) as exc:
        ca.euler_lagrange(p)
    _check(exc, DerivationError, "Abs", "derivative", "C²")


@pytest.mark.parametrize("kink", ["Max", "Min"])
def test_max_min_in_a_generic_constraint_at_derivation(syms, kink):
    x1, x2, w, m = syms["q1"], syms["q2"], syms["w"], syms["m"]
    f = sp.Max(0, w * x1) if kink == "Max" else sp.Min(w, x1)
    p = Problem(Action([x1, x2, w], masses=m), [x1 - 1, Constraint(x2 - f, name="relu")],
                parameters=[m])
    with pytest.raises(DerivationError) as exc:
        ca.euler_lagrange(p)
    _check(exc, DerivationError, kink)


def test_max_in_the_lagrangian_at_derivation(syms):
    x, m = syms["x"], syms["m"]
    p = Problem(Action([x], masses=m, lagrangian=-sp.Max(0, x) ** 2), parameters=[m])
    with pytest.raises(DerivationError) as exc:
        ca.euler_lagrange(p)
    _check(exc, DerivationError, "Max")


# -- graphs ----------------------------------------------------------------------------------
def test_arc_into_an_input_neuron():
    with pytest.raises(GraphError) as exc:
        ca.Network(nx.DiGraph([(1, 3), (2, 3), (3, 1)]), [1, 2])
    _check(exc, GraphError, "arc 3 -> 1", "input neuron 1", "remove the arc")


def test_input_neuron_not_in_the_graph():
    with pytest.raises(GraphError) as exc:
        ca.Network(nx.DiGraph([(1, 2)]), [7])
    _check(exc, GraphError, "input neuron 7", "not in the graph", "[1, 2]")


def test_non_input_neuron_without_arcs():
    net = ca.Network(nx.DiGraph([(1, 2), (3, 2)]), [1])
    with pytest.raises(GraphError) as exc:
        net.problem()
    _check(exc, GraphError, "neuron 3", "no incoming arcs", "declare it an input")


def test_colliding_neuron_labels():
    with pytest.raises(GraphError) as exc:
        ca.Network(nx.DiGraph([(0, 1), (0, "1")]), [0]).problem()
    _check(exc, GraphError, "x1")


# -- initial conditions ----------------------------------------------------------------------
def test_inconsistent_initial_conditions():
    net = ca.xor()
    el = ca.euler_lagrange(net.problem())
    given = {str(w): 0.4 for w in net.weights} | {"e1": 0.3, "e2": -0.2, "e1_dot": 0.0,
                                                  "e2_dot": 0.0}
    ic = ca.complete_initial_conditions(el, given)
    with pytest.raises(InconsistentInitialConditionsError) as exc:
        ca.validate_initial_conditions(el, ic | {"x3": ic["x3"] + 0.5})
    _check(exc, InconsistentInitialConditionsError, "violate", "G3", "complete_initial_conditions")
    assert "G3" in exc.value.violated
    with pytest.raises(InconsistentInitialConditionsError) as exc:
        ca.complete_initial_conditions(el, given | {"x2": 5.0})  # x2 ≠ e2, not free
    _check(exc, InconsistentInitialConditionsError, "G2")
    assert set(exc.value.violated) == {"G2"}


def test_initial_conditions_missing_signal_velocity():
    net = ca.xor()
    el = ca.euler_lagrange(net.problem())
    given = {str(w): 0.4 for w in net.weights} | {"e1": 0.3, "e2": -0.2}
    try:
        ic = ca.complete_initial_conditions(el, given)
    except CognitiveActionError as err:
        assert "e1_dot" in str(err) and "Fix:" in str(err)
    else:  # defaulting the missing input velocities to 0 would be acceptable too
        assert ic["x1_dot"] == 0.0


# -- names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make,name,suffix", [(S.coordinates, "x_dot", "_dot"),
                                              (S.parameters, "m_ddot", "_ddot"),
                                              (S.signals, "e_d3", "_d3")])
def test_reserved_names(make, name, suffix):
    with pytest.raises(DeclarationError) as exc:
        make(name)
    _check(exc, DeclarationError, f"'{name}'", f"reserved suffix '{suffix}'", "dot(")


def test_time_is_reserved():
    with pytest.raises(DeclarationError) as exc:
        S.coordinates("t")
    _check(exc, DeclarationError, "'t' is reserved")


# -- the time weight -------------------------------------------------------------------------
def test_time_weight_depending_on_a_coordinate(syms):
    x, m = syms["x"], syms["m"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, weight=sp.exp(x)), [x - 1], parameters=[m])
    _check(exc, DeclarationError, "time weight", "x", "not allowed")
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, weight=1 + S.dot(x) ** 2), [x - 1], parameters=[m])
    _check(exc, DeclarationError, "time weight", "x_dot", "not allowed")


def test_time_weight_depending_on_a_coordinate_message(syms):
    x, m = syms["x"], syms["m"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, weight=sp.exp(x)), [x - 1], parameters=[m])
    msg = _check(exc, DeclarationError, "coordinate")
    assert "order 0" not in msg and "undeclared" not in msg


def test_zero_time_weight():
    with pytest.raises(DeclarationError) as exc:
        ca.euler_lagrange(ca.xor().problem(weight=0))
    _check(exc, DeclarationError, "weight")


# -- strings where expressions are expected --------------------------------------------------
def test_strings_for_expressions(syms):
    x, m = syms["x"], syms["m"]
    cases = [
        (lambda: Problem(Action([x], masses=m), ["x - 1"], parameters=[m]), "constraint G1"),
        (lambda: Action([x], masses=m, lagrangian="x**2"), "Lagrangian F"),
        (lambda: Action([x], masses="m"), "mass"),
        (lambda: Action([x], masses=m, weight="exp(t)"), "time weight"),
        (lambda: ca.xor().problem(mass_x="m"), "mass of x1"),
    ]
    for make, where in cases:
        with pytest.raises(DeclarationError) as exc:
            make()
        _check(exc, DeclarationError, where, "string", "not an expression")


_MARK = "CA_TEST_STRING_WAS_EVALUATED"


def _payload(value: str) -> str:
    """A string that, if evaluated by sympify, leaves a mark in os.environ."""
    return f"__import__('os').environ.setdefault('{_MARK}', '1') and {value}"


@pytest.mark.parametrize("where", ["coordinates", "signals", "masses-key", "speed",
                                   "activation"])
def test_strings_are_never_evaluated(where):
    (x,) = S.coordinates("x")
    makers = {
        "coordinates": lambda: Action([_payload("x")], masses=1),
        "signals": lambda: Problem(Action([x], masses=1), [x - 1], signals=[_payload("e")]),
        "masses-key": lambda: Action([x], masses={_payload("x"): 1}),
        "speed": lambda: ca.chain(3, speed=_payload("2")),
        "activation": lambda: Activation("s", lambda a: _payload("tanh(z)")),
    }
    os.environ.pop(_MARK, None)
    try:
        with pytest.raises(DeclarationError) as exc:
            makers[where]()
        _check(exc, DeclarationError, "string")
    finally:
        evaluated = os.environ.pop(_MARK, None) is not None
    assert not evaluated, "the string was executed"


# -- Lagrangians of order above two ----------------------------------------------------------
@pytest.mark.parametrize("F", ["xddot**2", "sin(xddot)", "x*xddot**3"])
def test_lagrangian_of_order_above_two(syms, F):
    x, m = syms["x"], syms["m"]
    xdd = S.dot(x, 2)
    lag = {"xddot**2": xdd**2, "sin(xddot)": sp.sin(xdd), "x*xddot**3": x * xdd**3}[F]
    p = Problem(Action([x], masses=m, lagrangian=lag), parameters=[m])  # declaring is fine
    with pytest.raises(DerivationError) as exc:
        ca.euler_lagrange(p)
    _check(exc, DerivationError, "equation of x", "order above two", "q̈")


def test_lagrangian_linear_in_acceleration_is_fine(syms):
    """Control for the case above: ``F = k x ẍ`` is equivalent to ``-k ẋ²`` and derives."""
    x, m, k = syms["x"], syms["m"], syms["k"]
    p = Problem(Action([x], masses=m, lagrangian=k * x * S.dot(x, 2)), parameters=[m, k])
    (r,) = ca.euler_lagrange(p).residuals
    assert sp.expand(r - (-m * S.dot(x, 2) + 2 * k * S.dot(x, 2))) == 0


def test_derivative_above_order_two_in_the_lagrangian(syms):
    x, m = syms["x"], syms["m"]
    with pytest.raises(DeclarationError) as exc:
        Problem(Action([x], masses=m, lagrangian=x * S.dot(x, 3)), parameters=[m])
    _check(exc, DeclarationError, "x_d3", "order 3", "not allowed")
