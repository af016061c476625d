"""Tests of the safe expression parser of problem files.

Two halves: correctness (parsed expressions equal SymPy built by hand) and a corpus of
malformed and hostile strings, each rejected with a message naming the location, the
reason and the fix, with proof that nothing was executed.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import sympy as sp

from cognitive_action.errors import ProblemFileError, UnsafeExpressionError
from cognitive_action.problem_files import (
    FUNCTION_NAMES,
    MAX_CALL_DEPTH,
    MAX_CONSTANT_DEPTH,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_LENGTH,
    RESERVED_NAMES,
    ExpressionParser,
    parse_expression,
    parse_matrix,
    parse_number,
    parse_vector,
    time_derivative_names,
    validate_name,
)
from cognitive_action.problem_files import expressions as expressions_module

PATH = "problems/hostile.toml"
FIELD = "constraints[2].expr"
WHERE = f"{PATH}: {FIELD}"

t, w, x1, x2, a, b = sp.symbols("t w x1 x2 a b")
e = sp.Function("e")
NAMES = {"t": t, "w": w, "x1": x1, "x2": x2, "a": a, "b": b, "e": e}


def parse(text: str | int | float, **kwargs) -> sp.Expr:
    return parse_expression(text, NAMES, where=WHERE, **kwargs)


def same(got: sp.Expr, expected: sp.Expr) -> bool:
    return sp.simplify(got - expected) == 0


# --------------------------------------------------------------------------- correctness

CORRECT = [
    ("neural-constraint", "tanh(w*x1) - x2", sp.tanh(w * x1) - x2),
    ("loss", "(x2 - a)**2/2", (x2 - a) ** 2 / 2),
    ("sum-chain", "x1 - x2 + a - b", x1 - x2 + a - b),
    ("product-chain", "a*b/x1/x2", a * b / (x1 * x2)),
    ("sub-parenthesized", "a - (b - x1)", a - b + x1),
    ("unary-plus", "+x1", x1),
    ("double-negation", "--x1", x1),
    ("neg-power", "-x1**2", -(x1**2)),
    ("power-of-neg", "(-x1)**2", x1**2),
    ("neg-int-power", "-2**2", sp.Integer(-4)),
    ("negative-exponent", "2**-1", sp.Rational(1, 2)),
    ("right-assoc-power", "2**3**2", sp.Integer(512)),
    ("left-power-parens", "(2**3)**2", sp.Integer(64)),
    ("symbolic-tower", "x1**a**b", x1 ** (a**b)),
    ("rational-exponent", "x1**(1/2)", sp.sqrt(x1)),
    ("float-exponent", "x1**0.5", x1 ** sp.Float(0.5)),
    ("precedence-mul-add", "a + b*x1", a + b * x1),
    ("precedence-div-pow", "a/b**2", a / b**2),
    ("exp", "exp(-t)", sp.exp(-t)),
    ("log", "log(1 + x1**2)", sp.log(1 + x1**2)),
    ("sqrt", "sqrt(x1**2 + x2**2)", sp.sqrt(x1**2 + x2**2)),
    ("trig", "sin(t) + cos(t) + tan(t)", sp.sin(t) + sp.cos(t) + sp.tan(t)),
    ("hyperbolic", "tanh(x1) + sinh(x1) + cosh(x1)", sp.tanh(x1) + sp.sinh(x1) + sp.cosh(x1)),
    ("sech", "sech(w*x1)**4", sp.sech(w * x1) ** 4),
    ("inverse-trig", "atan(x1) + asin(x2) + acos(a)", sp.atan(x1) + sp.asin(x2) + sp.acos(a)),
    ("atan2", "atan2(x2, x1)", sp.atan2(x2, x1)),
    ("abs-both-spellings", "abs(x1) + Abs(x2)", sp.Abs(x1) + sp.Abs(x2)),
    ("sign", "sign(x1)", sp.sign(x1)),
    ("logistic", "logistic(x1)", 1 / (1 + sp.exp(-x1))),
    ("sigmoid", "sigmoid(w*x1)", 1 / (1 + sp.exp(-w * x1))),
    ("softplus", "softplus(x1)", sp.log(1 + sp.exp(x1))),
    ("max-min", "Max(x1, x2, a) - Min(a, b)", sp.Max(x1, x2, a) - sp.Min(a, b)),
    ("constants", "pi*E", sp.pi * sp.E),
    ("E-power", "E**(-t)", sp.exp(-t)),
    ("input-function", "x1 - e(t)", x1 - e(t)),
    ("input-shifted", "e(2*t + 1)", e(2 * t + 1)),
    ("scientific-float", "1.5e-3*x1", sp.Float(0.0015) * x1),
    ("underscored-int", "1_000*x1", 1000 * x1),
    ("multiline-toml-string", "tanh(w*x1)\n    - x2\n", sp.tanh(w * x1) - x2),
    ("backslash-continuation", "x1 + \\\n x2", x1 + x2),
    ("tabs", "\tx1\t*\tx2", x1 * x2),
    ("long-sum", " + ".join(["x1"] * 500), 500 * x1),
    ("nesting-at-limit", "(" * MAX_DEPTH + "x1" + ")" * MAX_DEPTH, x1),
    ("max-exponent", f"x1**{MAX_EXPONENT}", x1**MAX_EXPONENT),
    ("max-neg-exponent", f"x1**-{MAX_EXPONENT}", x1**-MAX_EXPONENT),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CORRECT],
                         ids=[c[0] for c in CORRECT])
def test_parses_to_the_hand_built_expression(text: str, expected: sp.Expr) -> None:
    assert same(parse(text), expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("-x1**2", -(x1**2)),
    ("2**-1", sp.Rational(1, 2)),
    ("2**3**2", sp.Integer(2) ** 9),
    ("a - b - x1", a - b - x1),
    ("a / b / x1", a / b / x1),
    ("a * b ** 2", a * b**2),
], ids=["neg-binds-looser-than-pow", "pow-of-negative-literal", "pow-right-assoc",
        "sub-left-assoc", "div-left-assoc", "pow-before-mul"])
def test_precedence_is_structurally_exact(text: str, expected: sp.Expr) -> None:
    assert parse(text) == expected


def test_rationals_stay_exact() -> None:
    half = parse("1/2")
    assert isinstance(half, sp.Rational) and half == sp.Rational(1, 2)
    assert parse("1/3 + 2/3") == 1
    assert parse("2/4") == sp.Rational(1, 2)
    assert parse("x1/3") == sp.Rational(1, 3) * x1
    assert isinstance(parse("7"), sp.Integer)


def test_floats_are_floats() -> None:
    value = parse("0.25")
    assert isinstance(value, sp.Float) and value == sp.Float(0.25)
    assert isinstance(parse("1e-3"), sp.Float)
    assert isinstance(parse(0.5), sp.Float)
    assert parse(3) == 3 and isinstance(parse(3), sp.Integer)


def test_extra_functions_and_callable_names() -> None:
    parser = ExpressionParser({"x1": x1, "g": lambda u, v: u * v},
                              functions={"sigma": sp.tanh})
    assert parser.parse("sigma(2*x1)") == sp.tanh(2 * x1)
    assert parser.parse("g(x1, 3)") == 3 * x1
    with pytest.raises(UnsafeExpressionError, match="does not accept 1 argument"):
        parser.parse("g(x1)", where=WHERE)
    with pytest.raises(UnsafeExpressionError, match="does not accept 2 arguments"):
        ExpressionParser({"x1": x1}, functions={"sigma": sp.tanh}).parse("sigma(x1, x1)")


def test_numbers_in_names_are_sympy_numbers() -> None:
    assert parse_expression("m*x1", {"m": 2, "x1": x1}) == 2 * x1
    assert parse_expression("g/2", {"g": 9.81}) == sp.Float(9.81) / 2


def test_declared_names_are_validated() -> None:
    with pytest.raises(ProblemFileError, match="'exp' is a built-in"):
        ExpressionParser({"exp": x1})
    with pytest.raises(ProblemFileError, match="not a valid name"):
        ExpressionParser({"x-1": x1})
    with pytest.raises(UnsafeExpressionError, match="two underscores"):
        ExpressionParser({"__class__": x1})
    with pytest.raises(TypeError):
        ExpressionParser({"x": "x1"})
    assert validate_name("θ") == "θ"
    assert FUNCTION_NAMES | {"pi", "E"} <= RESERVED_NAMES


def test_time_derivative_names() -> None:
    q = sp.Function("q")(t)
    names = {"q": q, "t": t, **time_derivative_names({"q": q}, t)}
    assert parse_expression("q_ddot + q_dot**2 - q", names) == (
        sp.diff(q, t, 2) + sp.diff(q, t) ** 2 - q)
    with pytest.raises(ValueError, match="does not depend on t"):
        time_derivative_names({"x": x1}, t)
    with pytest.raises(ValueError, match="order"):
        time_derivative_names({"q": q}, t, order=3)


def test_parse_number() -> None:
    assert parse_number("pi/4") == sp.pi / 4
    assert parse_number("1/3") == sp.Rational(1, 3)
    assert parse_number(2) == 2
    assert float(parse_number("exp(-1)")) == pytest.approx(0.36787944117144233)
    assert parse_number("2*m", names={"m": 3}) == 6
    for bad in (True, None, [1], float("inf"), float("nan"), "x1", "2*m"):
        with pytest.raises(ProblemFileError, match="parameters.m"):
            parse_number(bad, "problems/p.toml: parameters.m", names={"m": x1})


def test_parse_vector_and_matrix() -> None:
    assert parse_vector(["sin(t)", 0, "1/2"], NAMES, length=3) == [
        sp.sin(t), 0, sp.Rational(1, 2)]
    assert parse_matrix([[1, "w"], ["x1", 0.5]], NAMES, shape=(2, 2)) == [
        [1, w], [x1, sp.Float(0.5)]]
    with pytest.raises(UnsafeExpressionError, match=r"targets\[1\]"):
        parse_vector(["x1", "x1.real"], NAMES, where="problems/p.toml: targets")
    with pytest.raises(ProblemFileError, match="expected 3 entries"):
        parse_vector(["x1"], NAMES, where="targets", length=3)
    with pytest.raises(ProblemFileError, match="expected an array"):
        parse_vector("x1", NAMES, where="targets")
    with pytest.raises(ProblemFileError, match=r"M\[1\]: expected 2 entries"):
        parse_matrix([[1, 2], [3]], NAMES, where="M")
    with pytest.raises(ProblemFileError, match=r"M\[0\]\[1\]"):
        parse_matrix([[1, "__import__('os')"]], NAMES, where="M")


def test_location_is_split_into_path_and_field() -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        parse("x3")
    assert info.value.path == PATH and info.value.field == FIELD
    with pytest.raises(UnsafeExpressionError) as info:
        parse_expression("x3", NAMES, where="loss")
    assert info.value.path is None and info.value.field == "loss"


# --------------------------------------------------------------------------- hostile corpus

U, P = UnsafeExpressionError, ProblemFileError

HOSTILE = [
    # syntax errors (ProblemFileError, not Unsafe)
    ("syntax-trailing-op", "x1 +", P, "syntax error at the end"),
    ("syntax-double-op", "x1 + * x2", P, "syntax error at column 6"),
    ("syntax-unclosed", "(x1 + 2", P, "was never closed"),
    ("syntax-statement", "import os", P, "syntax error"),
    ("syntax-assignment", "x1 = 2", P, "syntax error"),
    ("syntax-semicolon", "x1; x2", P, "syntax error"),
    ("syntax-null-byte", "x1\x00", P, "null bytes"),
    ("empty", "   ", P, "empty"),
    # unknown names and misspellings
    ("unknown-name", "x3 + 1", U, "unknown name 'x3'"),
    ("misspelled-function", "tahn(w*x1)", U, "did you mean 'tan' or 'tanh'"),
    ("misspelled-sigmoid", "sigmiod(x1)", U, "did you mean 'sigmoid'"),
    ("misspelled-name", "x_1 + x2", U, "did you mean 'x1'"),
    ("undeclared-velocity", "x1_dot", U, "time derivative of 'x1'"),
    ("derivative-syntax-diff", "diff(x1, t)", U, "no derivative syntax"),
    ("derivative-syntax-d", "d(x1)/dt", U, "no derivative syntax"),
    ("value-called", "x1(2)", U, "is a value, not a function"),
    ("function-as-value", "exp + 1", U, "is a function, not a value"),
    # code execution attempts
    ("import-system", "__import__('os').system('echo pwned')", U, "by bare name"),
    ("dunder-import-bare", "__import__('os')", U, "'__'"),
    ("subclasses-escape", "().__class__.__bases__[0].__subclasses__()", U, "by bare name"),
    ("dunder-name", "__builtins__", U, "'__'"),
    ("eval", 'eval("1")', U, "Python builtin"),
    ("exec", "exec('import os')", U, "Python builtin"),
    ("open", 'open("/etc/passwd")', U, "Python builtin"),
    ("globals", "globals()", U, "Python builtin"),
    ("getattr", "getattr(x1, 'real')", U, "Python builtin"),
    ("fullwidth-eval", "ｅｖａｌ('1')", U, "unknown function 'eval'"),
    ("attribute", "x1.real", U, "attribute access"),
    ("attribute-dunder", "x1.__class__", U, "attribute access"),
    ("method-call", "x1.subs(x1, 2)", U, "by bare name"),
    ("subscript", "x1[0]", U, "indexing"),
    ("lambda", "lambda: 1", U, "lambda"),
    ("lambda-called", "(lambda: 1)()", U, "by bare name"),
    ("list-comprehension", "[i for i in (1, 2)]", U, "comprehensions"),
    ("dict-comprehension", "{i: i for i in (1, 2)}", U, "comprehensions"),
    ("set-comprehension", "{i for i in (1, 2)}", U, "comprehensions"),
    ("generator", "sum(i for i in (1, 2))", U, "unknown function 'sum'"),
    ("generator-in-max", "Max(i for i in (1, 2))", U, "generator expressions"),
    ("f-string", "f'{x1}'", U, "f-strings"),
    ("string", "'x1'", U, "strings are not allowed"),
    ("bytes", "b'x1'", U, "bytes"),
    ("keyword-arg", "exp(x=1)", U, "keyword arguments"),
    ("double-star-kwargs", "exp(**{'x': 1})", U, "keyword arguments"),
    ("starred-arg", "Max(*x1)", U, "starred"),
    ("comparison", "x1 < 2", U, "comparisons"),
    ("equality", "x1 == x2", U, "comparisons"),
    ("if-expression", "x1 if x2 else 0", U, "conditional"),
    ("walrus", "(y := 2)", U, "':='"),
    ("bool-op", "x1 and x2", U, "boolean operators"),
    ("not", "not x1", U, "'not'"),
    ("await", "await x1", U, "'await'"),
    ("yield", "(yield x1)", U, "'yield'"),
    ("tuple", "x1, x2", U, "tuples"),
    ("list", "[x1, x2]", U, "lists"),
    # operators
    ("caret-power", "x1^2", U, "write powers with '**'"),
    ("bit-and", "x1 & x2", U, "bitwise"),
    ("bit-or", "x1 | x2", U, "bitwise"),
    ("bit-invert", "~x1", U, "bitwise inversion"),
    ("shift", "1 << 100000", U, "shift"),
    ("matmul", "x1 @ x2", U, "'@'"),
    ("modulo", "x1 % 2", U, "modulo"),
    ("floor-div", "x1 // 2", U, "floor division"),
    # literals
    ("complex", "1j*x1", U, "complex numbers"),
    ("true", "True", U, "booleans"),
    ("false-in-sum", "x1 + False", U, "booleans"),
    ("none", "None", U, "None"),
    ("ellipsis", "...", U, "Ellipsis"),
    ("huge-int-literal", "1" * 200, U, "more than 100 digits"),
    ("inf-float-literal", "1e999", P, "not finite"),
    ("comment", "x1 # + __import__('os')", U, "comments"),
    # arity
    ("arity-too-many", "sin(x1, x2)", U, "takes exactly 1 argument, got 2"),
    ("arity-none", "exp()", U, "takes exactly 1 argument, got 0"),
    ("arity-max-one", "Max(x1)", U, "takes 2 to 16 arguments"),
    ("arity-max-many", "Max(" + ", ".join(["x1"] * 20) + ")", U, "got 20"),
    # sizes, powers, nesting
    ("power-tower", "9**9**9", U, "exceeds the limit of 64"),
    ("huge-power", "10**100000", U, "exceeds the limit of 64"),
    ("huge-float-power", "2**1e10", U, "exceeds the limit of 64"),
    ("symbolic-huge-power", "x1**65", U, "exceeds the limit of 64"),
    ("power-digits", "(10**64)**2", U, "more than 100 digits"),
    ("product-digits", "*".join(["10**60"] * 5), U, "more than 100 digits"),
    ("parens-10000", "(" * 10_000 + "x1" + ")" * 10_000, U, "characters long"),
    ("parens-4000", "(" * 4_000 + "x1" + ")" * 4_000, U, "nested more than 64"),
    ("neg-parens-3000", "-(" * 3_000 + "x1" + ")" * 3_000, U, "nested more than 64"),
    ("calls-100", "sin(" * 100 + "x1" + ")" * 100, U, "nested more than 64"),
    ("unary-100", "-" * 100 + "x1", U, "nested more than 64"),
    ("unary-9000", "-" * 9_000 + "x1", U, "too complex to parse"),
    ("power-chain-2000", "2**" * 2_000 + "2", U, "nest"),
    ("product-3000", "x1*" * 3_000 + "x1", U, "too complex to parse"),
    ("overlong", "x1 + " * 2_500 + "x1", U, "characters long"),
    ("calls-17", "exp(" * 17 + "x1" + ")" * 17, U, "function calls are nested more than 16"),
    ("constant-sigmoid-tower", "sigmoid(pi*" * 12 + "1" + "+E)" * 12, U,
     "powers of constants are nested more than 4"),
    ("constant-exp-tower", "1/(1+E**(-" * 12 + "1" + "))" * 12, U,
     "powers of constants are nested more than 4"),
    ("constant-sech-tower", "sech(E-" * 12 + "1" + ")" * 12, U,
     "powers of constants are nested more than 4"),
    # undefined or complex values
    ("division-by-zero", "x1/0", P, "division by zero"),
    ("zero-negative-power", "0**-1", P, "division by zero"),
    ("log-zero", "log(0)", P, "undefined"),
    ("sqrt-negative", "sqrt(-1)", P, "complex"),
    ("negative-root", "(-8)**(1/3)", P, "complex"),
]


@pytest.mark.parametrize(("text", "error", "reason"), [c[1:] for c in HOSTILE],
                         ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_rejected(text: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(ProblemFileError) as info:
        parse(text)
    assert type(info.value) is error
    message = str(info.value)
    assert message.startswith(f"{PATH}:{FIELD}: ")
    assert reason in message
    assert "Fix: " in message
    assert len(message) < 1_000


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 40


def test_message_names_the_offending_text_and_column() -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        parse("x2 - sigm(w*x1)", functions={"sigma": sp.tanh})
    message = str(info.value)
    assert "'sigm' at column 6 of 'x2 - sigm(w*x1)'" in message
    assert "did you mean 'sigma'" in message


def test_non_string_values_are_rejected() -> None:
    for value in (True, None, b"x1", ["x1"], {"x": 1}):
        with pytest.raises(ProblemFileError, match="expected an expression string"):
            parse(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- nothing executed


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple]]:
    """Record (and block) every way a string could be executed during a test."""
    calls: list[tuple[str, tuple]] = []
    real_compile, real_import = builtins.compile, builtins.__import__

    def blocked(name: str):
        def spy(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"{name} was called")
        return spy

    def compile_spy(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            calls.append(("compile", (source, mode)))
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def import_spy(name, *args, **kwargs):
        if name.split(".")[0] in {"os", "subprocess", "shutil", "socket", "pty", "ctypes"}:
            calls.append(("__import__", (name,)))
        return real_import(name, *args, **kwargs)

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, blocked(name))
    monkeypatch.setattr(builtins, "compile", compile_spy)
    monkeypatch.setattr(builtins, "__import__", import_spy)
    monkeypatch.setattr(os, "system", blocked("os.system"))
    monkeypatch.setattr(os, "popen", blocked("os.popen"))
    monkeypatch.setattr(subprocess, "Popen", blocked("subprocess.Popen"))
    monkeypatch.setattr(sp, "sympify", blocked("sympify"))
    monkeypatch.setattr(sp, "parse_expr", blocked("parse_expr"), raising=False)
    return calls


def test_nothing_is_executed_for_the_corpus(spies: list) -> None:
    for _, text, _, _ in HOSTILE:
        with pytest.raises(ProblemFileError):
            parse(text)
    for _, text, _ in CORRECT:
        parse(text)
    assert spies == []


def test_payloads_do_not_touch_the_file_system(tmp_path: Path, spies: list) -> None:
    sentinel = tmp_path / "pwned"
    payloads = [
        f"open({str(sentinel)!r}, 'w')",
        f"__import__('os').system('touch {sentinel}')",
        f"__import__('pathlib').Path({str(sentinel)!r}).touch()",
        f"exec(\"open({str(sentinel)!r}, 'w')\")",
        f"eval(\"__import__('os').system('touch {sentinel}')\")",
        f"[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']"
        f"[0](['touch', {str(sentinel)!r}])",
        f"x1 + (lambda: __import__('os').system('touch {sentinel}'))()",
        f"f'{{__import__(\"os\").system(\"touch {sentinel}\")}}'",
    ]
    for payload in payloads:
        with pytest.raises(UnsafeExpressionError):
            parse(payload)
    assert not sentinel.exists()
    assert spies == []


def test_source_never_evaluates_strings() -> None:
    """Static proof: the module calls no evaluator (eval, exec, sympify, parse_expr, S)."""
    tree = ast.parse(inspect.getsource(expressions_module))
    forbidden = {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__",
                 "getattr", "globals", "locals", "vars"}
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called.add(func.id if isinstance(func, ast.Name)
                       else func.attr if isinstance(func, ast.Attribute) else "")
    assert called & forbidden == set()


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_LENGTH, MAX_DEPTH, MAX_EXPONENT, MAX_DIGITS) == (10_000, 64, 64, 100)
    assert (MAX_CALL_DEPTH, MAX_CONSTANT_DEPTH) == (16, 4)


def test_time_budget_is_enforced() -> None:
    parser = ExpressionParser(NAMES, time_limit=0.0)
    expected = re.escape(f"{PATH}:{FIELD}: building the expression took")
    with pytest.raises(UnsafeExpressionError, match=expected):
        parser.parse("x1 + x2", where=WHERE)


def test_constants_may_nest_a_little() -> None:
    assert parse("exp(-pi**2/4)") == sp.exp(-sp.pi**2 / 4)
    assert parse("log(2)/log(10)") == sp.log(2) / sp.log(10)
    assert parse("sqrt(1 + sqrt(2))") == sp.sqrt(1 + sp.sqrt(2))
    deep_symbolic = "sigmoid(" * MAX_CALL_DEPTH + "x1" + ")" * MAX_CALL_DEPTH
    assert parse(deep_symbolic).has(x1)


def test_rejections_are_fast() -> None:
    start = time.perf_counter()
    for text in ("9**9**9", "10**100000", "(10**64)**64", "((9**64)**64)**64",
                 "-" * 9_000 + "x1", "(" * 4_999 + ")" * 4_999):
        with pytest.raises(ProblemFileError):
            parse(text)
    # a guard against exponential work, not a timing: these are rejected before any
    # power is built (evaluating 9**9**9 would not finish at all)
    assert time.perf_counter() - start < 10.0
