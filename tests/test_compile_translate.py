"""The SymPy → CasADi walker against SymPy's own numeric evaluation.

Every whitelisted node is evaluated at random points through CasADi (SX and MX) and
compared with ``sympy.N`` of the same expression at 30 digits; unsupported nodes and
symbols without values raise ``TranslationError`` naming them.
"""

from __future__ import annotations

import math

import casadi as ca
import numpy as np
import pytest
import sympy as sp

from cognitive_action.compile.translate import SUPPORTED_FUNCTIONS, Translator, to_casadi
from cognitive_action.declare import symbols as S
from cognitive_action.declare.network import LogSumExp
from cognitive_action.errors import CognitiveActionError, TranslationError

x, y, z = sp.symbols("x y z", real=True)

EXPRESSIONS = [
    x + 2 * y - z / 3,
    x * y * z,
    x**2 + y**3 - z**-2 + x**-1,
    sp.sqrt(x) + 1 / sp.sqrt(y) + x ** sp.Rational(3, 2) + y ** sp.Rational(-3, 2),
    x ** sp.Rational(1, 3) + y**2.5 + x**y,
    sp.exp(x) + sp.log(y) + sp.exp(x * y - z),
    sp.sin(x) + sp.cos(y) + sp.tan(z / 4),
    sp.asin(x / 4) + sp.acos(y / 4) + sp.atan(z),
    sp.sinh(x) + sp.cosh(y) + sp.tanh(z) + sp.asinh(x) + sp.acosh(1 + y) + sp.atanh(z / 4),
    sp.sec(x) + sp.csc(y) + sp.cot(z) + sp.sech(x) + sp.csch(y) + sp.coth(z),
    sp.Abs(x - y) + sp.sign(z - 1) + sp.floor(3 * x) + sp.ceiling(2 * y),
    sp.erf(x - y) + sp.atan2(y, x - 1),
    sp.Min(x, y, z) + sp.Max(x, y, z),
    sp.Heaviside(x - y) + 2 * sp.Heaviside(z - 1),
    sp.Piecewise((x, x < y), (y * z, sp.And(x >= y, z > 1)), (z, True)),
    sp.Piecewise((1, sp.Or(sp.Eq(x, y), sp.Not(z <= 2))), (-1, sp.Ne(x, 3))),
    sp.pi * x + sp.E * y + sp.Rational(7, 3) + sp.Float("0.125"),
    1 - sp.tanh(x * y + z) ** 2,
    sp.exp(sp.Symbol("theta", real=True) * S.t) * x,  # t and a parameter by name
    LogSumExp(x, 2 * y, z) + sp.diff(LogSumExp(x, y * z), x),
]


def _reference(e: sp.Expr, point: dict) -> float:
    return float(sp.N(e.xreplace({k: sp.Float(v, 30) for k, v in point.items()}), 30))


@pytest.mark.parametrize("kind", [ca.SX, ca.MX])
@pytest.mark.parametrize("expr", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_whitelist_matches_sympy(expr, kind):
    syms = sorted(expr.free_symbols, key=str)
    cas = [kind.sym(str(s)) for s in syms]
    f = ca.Function("f", cas, [to_casadi(expr, dict(zip(syms, cas)))])
    rng = np.random.default_rng(7)
    for _ in range(5):
        point = {s: float(rng.uniform(0.3, 1.7)) for s in syms}
        ours = float(f(*point.values()))
        ref = _reference(expr, point)
        assert ours == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_every_supported_function_is_exercised():
    used = {type(a) for e in EXPRESSIONS for a in sp.preorder_traversal(e)}
    # sympy rewrites some on construction (sqrt → Pow); the rest must all appear
    missing = {f for f in SUPPORTED_FUNCTIONS if not any(issubclass(u, f) for u in used)}
    assert not missing, missing


def test_logsumexp_is_overflow_free():
    X, Y = ca.SX.sym("x"), ca.SX.sym("y")
    e = [to_casadi(LogSumExp(x, y), {"x": X, "y": Y}),
         to_casadi(sp.diff(LogSumExp(x, y), x), {"x": X, "y": Y})]
    lse, soft = (float(v) for v in ca.Function("f", [X, Y], e)(1000.0, 1000.0 + math.log(3)))
    # independent: log(e^1000 + 3 e^1000) = 1000 + log 4; softmax_1 = 1/4
    assert lse == pytest.approx(1000.0 + math.log(4.0), rel=1e-15)
    assert soft == pytest.approx(0.25, rel=1e-14)


def test_piecewise_without_otherwise_is_nan_outside():
    X = ca.SX.sym("x")
    f = ca.Function("f", [X], [to_casadi(sp.Piecewise((x, x > 0)), {"x": X})])
    assert float(f(2.0)) == 2.0
    assert math.isnan(float(f(-1.0)))


def test_shared_subexpressions_translate_once():
    # e_{k+1} = tanh(e_k)/4 + e_k²/8: a tree of 2^40 nodes, a DAG of 40 levels (built
    # unevaluated: SymPy's own constructors query assumptions over the whole tree)
    q, h = sp.Rational(1, 4), sp.Rational(1, 8)
    e = x
    for _ in range(40):
        e = sp.Add(sp.Mul(q, sp.tanh(e, evaluate=False), evaluate=False),
                   sp.Mul(h, sp.Pow(e, 2, evaluate=False), evaluate=False), evaluate=False)
    X = ca.SX.sym("x")
    out = to_casadi(e, {"x": X})  # a walk without memo would visit 2^40 nodes
    f = ca.Function("f", [X], [out])
    assert f.n_instructions() < 40 * 10
    v = 1.5
    for _ in range(40):
        v = math.tanh(v) / 4 + v**2 / 8
    assert float(f(1.5)) == pytest.approx(v, rel=1e-13)


def test_vector_values_evaluate_a_template_elementwise():
    a, c = sp.symbols("a c", real=True)
    A, C = ca.MX.sym("a", 4), ca.MX.sym("c")
    f = ca.Function("f", [A, C], [to_casadi(c * (1 - sp.tanh(a) ** 2), {"a": A, "c": C})])
    vals = np.array([0.1, -0.5, 1.0, 2.0])
    np.testing.assert_allclose(np.asarray(f(vals, 3.0)).ravel(), 3 * (1 - np.tanh(vals) ** 2),
                               rtol=1e-14)


def test_function_form_is_converted_to_jet_symbols():
    q = sp.Function("q")(S.t)
    expr = sp.Derivative(q, S.t) ** 2 + sp.sin(q)
    Q, QD = ca.SX.sym("q"), ca.SX.sym("q_dot")
    f = ca.Function("f", [Q, QD], [to_casadi(expr, {"q": Q, "q_dot": QD})])
    assert float(f(0.5, 2.0)) == pytest.approx(4 + math.sin(0.5), rel=1e-14)


def test_unsupported_function_is_named():
    X = ca.SX.sym("x")
    with pytest.raises(TranslationError, match=r"gamma\(x\).*function gamma"):
        to_casadi(sp.gamma(x) + 1, {"x": X})
    with pytest.raises(TranslationError, match="Integral"):
        to_casadi(sp.Integral(x, (y, 0, 1)), {"x": X, "y": X})


def test_symbol_without_value_and_bad_numbers():
    X = ca.SX.sym("x")
    with pytest.raises(TranslationError, match="symbol y has no value"):
        to_casadi(x + y, {"x": X})
    with pytest.raises(TranslationError, match="number"):
        to_casadi(x + sp.zoo, {"x": X})
    with pytest.raises(TranslationError, match="number"):
        to_casadi(x + sp.I, {"x": X})
    with pytest.raises(TranslationError):
        Translator({"x": X})("x + 1")  # strings are not expressions
    # typed errors are the library's errors
    assert issubclass(TranslationError, CognitiveActionError)


def test_lists_share_one_memo():
    X = ca.SX.sym("x")
    outs = to_casadi([sp.tanh(x), 2 * sp.tanh(x)], {"x": X})
    f = ca.Function("f", [X], outs)
    assert np.allclose([float(v) for v in f(0.4)], [math.tanh(0.4), 2 * math.tanh(0.4)])
