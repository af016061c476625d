"""Safe parsing of the expression strings found in problem files.

A problem file is untrusted input: whoever wrote it may be careless or hostile. This
module turns a string such as ``"tanh(w*x1) - x2"`` into a SymPy expression **without
ever executing it**. The string is parsed with Python's :mod:`ast` module (which only
builds a syntax tree) and the tree is walked against a whitelist; the SymPy objects are
built node by node (``Integer``, ``Rational``, ``Float``, ``Add``, ``Mul``, ``Pow`` and the
whitelisted functions). ``eval``, ``exec``, ``sympify`` and ``parse_expr`` are never
applied to the string.

What an expression may contain
------------------------------
* numbers: integers (at most :data:`MAX_DIGITS` digits) and finite floats. ``1/2`` stays
  the exact ``Rational(1, 2)``; ``0.5`` is a ``Float``;
* declared names (the ``names`` mapping given by the caller) and the constants ``pi``
  and ``E``;
* unary ``+``/``-``, binary ``+ - * / **`` and parentheses;
* calls, by bare name and with positional arguments only, of the functions in
  :data:`FUNCTION_NAMES` (``exp``, ``log``, ``sqrt``, ``sin``, ``cos``, ``tan``, ``tanh``,
  ``sinh``, ``cosh``, ``sech``, ``asin``, ``acos``, ``atan``, ``atan2``, ``abs``/``Abs``,
  ``sign``, ``logistic``/``sigmoid`` = 1/(1+exp(-x)), ``softplus`` = log(1+exp(x)),
  ``Max``, ``Min``), of functions passed by the caller in ``functions``, and of callables
  in ``names`` (for instance an input ``e`` declared as ``sympy.Function("e")``).

Everything else is rejected with :class:`~cognitive_action.errors.UnsafeExpressionError`
(or :class:`~cognitive_action.errors.ProblemFileError` for syntax errors and values such
as a division by zero): the message names the location, the offending piece of text with
its column, the reason and the fix.

Time derivatives
----------------
There is no derivative syntax (no ``diff(x, t)``, no ``d(x)/dt``). A time derivative is
an ordinary *name* with the suffix ``_dot`` (first derivative) or ``_ddot`` (second),
which the caller declares where velocities are allowed, for instance with
:func:`time_derivative_names`. A field that does not declare ``x_dot`` (a holonomic
constraint, say) therefore rejects it with a message saying so.

Limits
------
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of nesting, integer literals of
at most :data:`MAX_DIGITS` digits, numeric exponents of magnitude at most
:data:`MAX_EXPONENT` (checked before any power is built, so ``9**9**9`` is never
evaluated), computed numbers of at most :data:`MAX_DIGITS` digits, function calls nested
at most :data:`MAX_CALL_DEPTH` deep, functions and powers of pure constants nested at
most :data:`MAX_CONSTANT_DEPTH` deep (SymPy evaluates those numerically at a cost
exponential in their nesting), and, as a safety net, :data:`MAX_SECONDS` of building.

Constants are bounded structurally, not by a clock: every constant part of an
expression (no symbols) is evaluated numerically with :mod:`mpmath` at a fixed working
precision as soon as it is built, and refused if it is complex (``asin(10)``,
``(-64)**sigmoid(1)``), undefined, infinite or larger than :data:`MAX_MAGNITUDE` (the
range of a double: ``exp(10**10)``) — so no function is ever applied to a constant whose
evaluation would need unbounded precision (``sin(exp(10**10))``). Where SymPy would
decide the sign of a constant (``sign``, ``Abs``, ``Max``, ``Min`` are folded here; the
base of a power and the arguments of the other functions must have a decidable sign),
the sign is decided numerically at the precisions :data:`CONSTANT_DIGITS`, never by
SymPy's unbounded symbolic search.

Examples
--------
>>> import sympy as sp
>>> x1, x2, w = sp.symbols("x1 x2 w")
>>> parse_expression("tanh(w*x1) - x2", {"x1": x1, "x2": x2, "w": w})
-x2 + tanh(w*x1)
>>> from cognitive_action.errors import UnsafeExpressionError
>>> try:
...     parse_expression("__import__('os').system('echo pwned')", {},
...                      where="problems/bad.toml: loss")
... except UnsafeExpressionError as err:
...     print(err)  # doctest: +NORMALIZE_WHITESPACE
problems/bad.toml:loss: calls are allowed only of whitelisted functions by bare name:
"__import__('os').system('echo pwned')" at column 1. Fix: call a known function such
as exp(x) or tanh(x); methods, attributes and computed callees are not allowed
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import keyword
import math
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeAlias

import sympy as sp
from mpmath.ctx_mp import MPContext

from cognitive_action.declare.activations import BUILTIN_ACTIVATIONS
from cognitive_action.declare.symbols import SUFFIXES
from cognitive_action.errors import ProblemFileError, UnsafeExpressionError

__all__ = [
    "MAX_LENGTH",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_ARGS",
    "MAX_CALL_DEPTH",
    "MAX_CONSTANT_DEPTH",
    "MAX_SECONDS",
    "MAX_MAGNITUDE",
    "CONSTANT_DIGITS",
    "FUNCTION_NAMES",
    "CONSTANT_NAMES",
    "RESERVED_NAMES",
    "DERIVATIVE_SUFFIXES",
    "NameValue",
    "ExpressionParser",
    "parse_expression",
    "parse_number",
    "parse_vector",
    "parse_matrix",
    "validate_name",
    "time_derivative_names",
]

#: Longest expression string accepted, in characters.
MAX_LENGTH = 10_000
#: Deepest nesting accepted: brackets, unary signs, powers and calls inside each other.
#: Chains of ``+``/``-`` or ``*``/``/`` count as one level however long they are.
MAX_DEPTH = 64
#: Most digits of an integer literal or of any number computed while parsing.
MAX_DIGITS = 100
#: Largest magnitude of a numeric exponent.
MAX_EXPONENT = 64
#: Most arguments of a variadic function such as ``Max``.
MAX_ARGS = 16
#: Deepest nesting of function calls inside function calls (SymPy's automatic
#: simplification grows steeply with it).
MAX_CALL_DEPTH = 16
#: Deepest nesting of functions and powers inside a subexpression without symbols, such
#: as ``sigmoid(pi*sigmoid(pi*...))``: SymPy evaluates those numerically to decide signs,
#: at a cost exponential in the nesting.
MAX_CONSTANT_DEPTH = 4
#: Default wall-clock budget for building one expression, in seconds: a safety net
#: against inputs that stay within every other limit yet make SymPy's automatic
#: evaluation slow (generous: well above what SymPy itself takes for a term like
#: ``(x - tanh(w*y + v*sigmoid(x)))**2/5``; docs/performance.md).
MAX_SECONDS = 10.0
#: Largest magnitude of a constant or of any constant part of an expression: the range
#: of a double (``exp(10**10)`` is refused before a function of it is built, so SymPy
#: never needs billions of digits to reduce ``sin(exp(10**10))``).
MAX_MAGNITUDE = sys.float_info.max
#: Working precisions (decimal digits) of the numeric evaluation of constants: the first
#: for the range checks, all of them in turn to decide a sign (two successive
#: precisions must agree); a constant whose sign they cannot decide (a zero in disguise,
#: such as ``sin(1)**2 + cos(1)**2 - 1``) is refused where a sign is needed.
CONSTANT_DIGITS = (30, 60, 120, 240)

#: Suffixes of the names that denote first and second time derivatives (the jet
#: symbols' own suffixes, :data:`cognitive_action.declare.symbols.SUFFIXES`).
DERIVATIVE_SUFFIXES = (SUFFIXES[1], SUFFIXES[2])

#: A value in the ``names`` mapping: a SymPy expression, a Python number, or a callable
#: (a SymPy function class or a Python function returning a SymPy expression).
NameValue: TypeAlias = "sp.Basic | int | float | Callable[..., Any]"

_Number: TypeAlias = "int | float"


# --------------------------------------------------------------------------- whitelist


@dataclass(frozen=True)
class _Function:
    """A whitelisted function: how to build it and how many arguments it takes."""

    build: Callable[..., sp.Expr]
    min_args: int
    max_args: int
    usage: str


def _unary(build: Callable[..., sp.Expr], name: str) -> _Function:
    return _Function(build, 1, 1, f"{name}(x)")


_BUILTIN_FUNCTIONS: dict[str, _Function] = {
    **{name: _unary(build, name) for name, build in (
        ("exp", sp.exp), ("log", sp.log), ("sqrt", sp.sqrt), ("sin", sp.sin),
        ("cos", sp.cos), ("tan", sp.tan), ("tanh", sp.tanh), ("sinh", sp.sinh),
        ("cosh", sp.cosh), ("sech", sp.sech), ("asin", sp.asin), ("acos", sp.acos),
        ("atan", sp.atan), ("sign", sp.sign), ("Abs", sp.Abs), ("abs", sp.Abs))},
    # the activations' symbolic forms, from the one registry (built-in entries only: the
    # whitelist of problem files does not grow with user registrations)
    "logistic": _unary(BUILTIN_ACTIVATIONS["logistic"].function, "logistic"),
    "sigmoid": _unary(BUILTIN_ACTIVATIONS["logistic"].function, "sigmoid"),
    "softplus": _unary(BUILTIN_ACTIVATIONS["softplus"].function, "softplus"),
    "atan2": _Function(sp.atan2, 2, 2, "atan2(y, x)"),
    "Max": _Function(sp.Max, 2, MAX_ARGS, "Max(a, b, ...)"),
    "Min": _Function(sp.Min, 2, MAX_ARGS, "Min(a, b, ...)"),
}
_CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

#: Names of the built-in whitelisted functions.
FUNCTION_NAMES = frozenset(_BUILTIN_FUNCTIONS)
#: Names of the built-in constants.
CONSTANT_NAMES = frozenset(_CONSTANTS)
#: Names a problem file may not declare for its own symbols.
RESERVED_NAMES = FUNCTION_NAMES | CONSTANT_NAMES

_DERIVATIVE_CALLS = frozenset({"diff", "d", "D", "Derivative", "derivative", "dot", "ddot"})

_ONLY_SIMPLE = "declared names, numbers, + - * / ** and whitelisted functions"

_FORBIDDEN_NODES: dict[type, tuple[str, str]] = {
    ast.Attribute: ("attribute access ('.') is not allowed",
                    "use declared names and whitelisted functions only"),
    ast.Subscript: ("indexing with '[...]' is not allowed",
                    "declare each component as its own name, e.g. 'x1' instead of 'x[1]'"),
    ast.Slice: ("slices are not allowed", f"use only {_ONLY_SIMPLE}"),
    ast.Lambda: ("lambda functions are not allowed", "write the expression itself"),
    ast.ListComp: ("comprehensions are not allowed",
                   "write sums out explicitly, e.g. 'x1**2 + x2**2'"),
    ast.SetComp: ("comprehensions are not allowed",
                  "write sums out explicitly, e.g. 'x1**2 + x2**2'"),
    ast.DictComp: ("comprehensions are not allowed",
                   "write sums out explicitly, e.g. 'x1**2 + x2**2'"),
    ast.GeneratorExp: ("generator expressions are not allowed",
                       "write sums out explicitly, e.g. 'x1**2 + x2**2'"),
    ast.JoinedStr: ("f-strings are not allowed", "write the expression without quotes"),
    ast.FormattedValue: ("f-strings are not allowed", "write the expression without quotes"),
    ast.Compare: ("comparisons are not allowed",
                  "write an expression, not a condition; a constraint 'a == b' is "
                  "written 'a - b' (it is required to equal zero)"),
    ast.BoolOp: ("boolean operators ('and', 'or') are not allowed",
                 "use Max, Min, abs or a smooth switch such as sigmoid"),
    ast.IfExp: ("conditional expressions ('a if c else b') are not allowed",
                "use Max, Min, abs or a smooth switch such as sigmoid"),
    ast.NamedExpr: ("assignment expressions (':=') are not allowed",
                    "declare the value as a parameter of the problem file"),
    ast.List: ("lists are not allowed inside an expression",
               "give one expression per field; a vector is a TOML array of expressions"),
    ast.Tuple: ("tuples are not allowed inside an expression",
                "give one expression per field; a vector is a TOML array of expressions"),
    ast.Set: ("sets are not allowed inside an expression",
              "give one expression per field; a vector is a TOML array of expressions"),
    ast.Dict: ("dicts are not allowed inside an expression",
               "give one expression per field; a vector is a TOML array of expressions"),
    ast.Starred: ("starred expressions ('*args') are not allowed",
                  "pass each argument explicitly, e.g. Max(a, b)"),
    ast.Await: ("'await' is not allowed", f"use only {_ONLY_SIMPLE}"),
    ast.Yield: ("'yield' is not allowed", f"use only {_ONLY_SIMPLE}"),
    ast.YieldFrom: ("'yield from' is not allowed", f"use only {_ONLY_SIMPLE}"),
}

_FORBIDDEN_OPERATORS: dict[type, tuple[str, str]] = {
    ast.BitXor: ("'^' is bitwise XOR in Python, not a power", "write powers with '**', e.g. x**2"),
    ast.BitAnd: ("bitwise '&' is not allowed", "use only + - * / **"),
    ast.BitOr: ("bitwise '|' is not allowed", "use only + - * / **"),
    ast.LShift: ("bit shift '<<' is not allowed", "write 2**k*x for a power of two"),
    ast.RShift: ("bit shift '>>' is not allowed", "write x/2**k for a power of two"),
    ast.MatMult: ("matrix multiplication '@' is not allowed",
                  "write scalar products out with '*' and '+'"),
    ast.Mod: ("modulo '%' is not allowed", "use only + - * / **"),
    ast.FloorDiv: ("floor division '//' is not allowed", "use '/' (exact division)"),
    ast.Not: ("boolean 'not' is not allowed", "write an arithmetic expression"),
    ast.Invert: ("bitwise inversion '~' is not allowed", "use '-' for negation"),
}

_CONSTANT_TYPES: dict[type, tuple[str, str]] = {
    bool: ("booleans (True/False) are not allowed", "use the numbers 1 and 0"),
    type(None): ("None is not allowed", "write a number or an expression"),
    type(Ellipsis): ("'...' (Ellipsis) is not allowed", "write a number or an expression"),
    str: ("strings are not allowed inside an expression", "write the expression without quotes"),
    bytes: ("bytes literals are not allowed", "write the expression without quotes"),
    complex: ("complex numbers are not allowed (problems are real-valued)",
              "remove the 'j' suffix"),
}


# --------------------------------------------------------------------------- locations


def _location(where: str | None) -> dict[str, str | None]:
    """Split ``"file: field"`` into the ``path``/``field`` keywords of ProblemFileError."""
    if not where:
        return {"path": None, "field": None}
    path, sep, field = where.partition(": ")
    if sep and path and field:
        return {"path": path, "field": field}
    return {"path": None, "field": where}


def _extend(where: str | None, suffix: str) -> str:
    return f"{where}{suffix}" if where else suffix.lstrip(".")


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str) -> str:
    return repr(_shorten(text))


def _excerpt(text: str, column: int, width: int = 80) -> str:
    """``text`` cut to ``width`` characters around the 1-based ``column``."""
    if len(text) <= width:
        return text
    start = max(0, min(column - width // 2, len(text) - width))
    body = text[start:start + width]
    return ("..." if start else "") + body + ("..." if start + width < len(text) else "")


def _normalize(text: str) -> str:
    """Join lines and collapse whitespace: ``"a +\\n  b"`` becomes ``"a + b"``.

    Problem files may spread a long expression over a TOML multi-line string; the
    expression is parsed as one line and columns count in that line.
    """
    return " ".join(text.replace("\\\r\n", " ").replace("\\\n", " ").split())


def _raise(error: type[ProblemFileError], where: str | None, message: str,
           fix: str) -> NoReturn:
    raise error(message, fix, **_location(where))


# --------------------------------------------------------------------------- names


def validate_name(name: object, where: str | None = None) -> str:
    """Check that ``name`` can be declared as a symbol of a problem file.

    A declarable name is a Python identifier that is not a keyword, does not start with
    two underscores and is not a built-in function or constant (:data:`RESERVED_NAMES`).

    Parameters
    ----------
    name
        The candidate name.
    where
        Location for error messages, e.g. ``"problems/xor.toml: parameters"``.

    Returns
    -------
    str
        The name in the normal form (NFKC) Python's parser uses for identifiers.

    Raises
    ------
    ProblemFileError
        If the name cannot be declared.

    Examples
    --------
    >>> validate_name("x1")
    'x1'
    >>> from cognitive_action.errors import ProblemFileError
    >>> try:
    ...     validate_name("exp", "problems/p.toml: parameters")
    ... except ProblemFileError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    problems/p.toml:parameters: 'exp' is a built-in function or constant and cannot be
    declared. Fix: choose another name, e.g. 'exp_'
    """
    if not isinstance(name, str):
        _raise(ProblemFileError, where, f"a name must be a string, not {type(name).__name__}",
               "write the name as a TOML string")
    normal = unicodedata.normalize("NFKC", name)
    if not normal.isidentifier() or keyword.iskeyword(normal):
        _raise(ProblemFileError, where, f"{name!r} is not a valid name",
               "use letters, digits and underscores, starting with a letter, e.g. 'x1'")
    if normal.startswith("__"):
        _raise(UnsafeExpressionError, where, f"{name!r} starts with '__'",
               "names may not start with two underscores")
    if normal in RESERVED_NAMES:
        _raise(ProblemFileError, where,
               f"{name!r} is a built-in function or constant and cannot be declared",
               f"choose another name, e.g. '{normal}_'")
    return normal


def time_derivative_names(coordinates: Mapping[str, sp.Expr], time: sp.Symbol, *,
                          order: int = 2) -> dict[str, sp.Expr]:
    """Names for the time derivatives of coordinates: ``x_dot`` and ``x_ddot``.

    This is the notation for time derivatives in problem files: the parser has no
    derivative syntax; a field where velocities are allowed declares these names.

    Parameters
    ----------
    coordinates
        Coordinate names and their expressions, which must depend on ``time``
        (typically ``sympy.Function("x")(t)``).
    time
        The time symbol.
    order
        Highest derivative order, 1 (``_dot``) or 2 (``_dot`` and ``_ddot``).

    Returns
    -------
    dict
        ``{"x_dot": Derivative(x(t), t), "x_ddot": Derivative(x(t), (t, 2)), ...}``.

    Raises
    ------
    ValueError
        If ``order`` is not 1 or 2 or a coordinate does not depend on ``time``.

    Examples
    --------
    >>> import sympy as sp
    >>> t = sp.Symbol("t")
    >>> q = sp.Function("q")(t)
    >>> names = {"q": q, **time_derivative_names({"q": q}, t)}
    >>> parse_expression("q_ddot + q_dot**2", names)
    Derivative(q(t), t)**2 + Derivative(q(t), (t, 2))
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, not {order!r}")
    result: dict[str, sp.Expr] = {}
    for name, expr in coordinates.items():
        if time not in expr.free_symbols:
            raise ValueError(
                f"coordinate {name!r} = {expr} does not depend on {time}; declare it as a "
                f"function of time, e.g. sympy.Function({name!r})({time})")
        for k in range(1, order + 1):
            result[name + DERIVATIVE_SUFFIXES[k - 1]] = sp.diff(expr, time, k)
    return result


# --------------------------------------------------------------------------- the parser


def _number(value: _Number) -> sp.Expr:
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


class ExpressionParser:
    """A reusable parser bound to a set of declared names and extra functions.

    Build one per field context (the names a constraint may use, say) and call
    :meth:`parse` for each string; :func:`parse_expression` is the one-shot form.

    Parameters
    ----------
    names
        Declared names: SymPy expressions (symbols, ``x(t)``, ...), Python numbers, or
        callables (e.g. ``sympy.Function("e")`` for an input ``e(t)``). They may not
        shadow a built-in name (see :func:`validate_name`).
    functions
        Extra whitelisted functions (trusted code from the caller, e.g. an activation
        ``{"sigma": sympy.tanh}``); they take precedence over the built-in ones.
        Arity is checked from ``nargs`` (SymPy) or the Python signature.
    time_limit
        Wall-clock budget for building one expression, in seconds.

    Raises
    ------
    ProblemFileError
        If a declared name is invalid or reserved.
    TypeError
        If a value in ``names`` is of an unsupported type.

    Examples
    --------
    >>> import sympy as sp
    >>> t = sp.Symbol("t")
    >>> parser = ExpressionParser({"t": t, "e": sp.Function("e")},
    ...                           functions={"sigma": sp.tanh})
    >>> parser.parse("sigma(2*e(t))")
    tanh(2*e(t))
    >>> parser.parse("1/2 + 0.25")
    0.750000000000000
    """

    def __init__(self, names: Mapping[str, NameValue], *,
                 functions: Mapping[str, Callable[..., Any]] | None = None,
                 time_limit: float = MAX_SECONDS) -> None:
        self.time_limit = time_limit
        self._values: dict[str, sp.Expr] = {}
        self._callables: dict[str, Callable[..., Any]] = {}
        for name, value in names.items():
            self._declare(name, value)
        self._functions: dict[str, Callable[..., Any]] = {}
        for name, function in (functions or {}).items():
            if not callable(function):
                raise TypeError(f"function {name!r} is not callable: {function!r}")
            self._functions[unicodedata.normalize("NFKC", name)] = function

    def _declare(self, name: str, value: NameValue) -> None:
        normal = validate_name(name, "declared names")
        if normal in self._values or normal in self._callables:
            raise ProblemFileError(f"{name!r} is declared twice (after Unicode normalization)",
                                   "give each symbol a distinct name")
        if isinstance(value, bool):
            raise TypeError(f"name {name!r}: booleans are not values, got {value!r}")
        if isinstance(value, (int, float)):
            self._values[normal] = _number(value)
        elif isinstance(value, sp.Basic):
            self._values[normal] = value  # type: ignore[assignment]
        elif callable(value):
            self._callables[normal] = value
        else:
            raise TypeError(f"name {name!r}: expected a SymPy expression, a number or a "
                            f"callable, got {type(value).__name__}")

    @property
    def value_names(self) -> frozenset[str]:
        """Declared names that denote values (plus the constants)."""
        return frozenset(self._values) | CONSTANT_NAMES

    @property
    def function_names(self) -> frozenset[str]:
        """Names that may be called: declared callables, extra and built-in functions."""
        return frozenset(self._callables) | frozenset(self._functions) | FUNCTION_NAMES

    def parse(self, text: str | int | float, where: str | None = None) -> sp.Expr:
        """Parse one expression; numbers (TOML ints and floats) are accepted as they are.

        Parameters
        ----------
        text
            The untrusted expression string, or a number.
        where
            Human-readable location for messages, ``"<file>: <field>"`` (split into the
            error's ``path`` and ``field``) or just ``"<field>"``.

        Returns
        -------
        sympy.Expr
            The expression, built node by node.

        Raises
        ------
        UnsafeExpressionError
            For any construct outside the whitelist or over a limit.
        ProblemFileError
            For syntax errors, empty strings, wrong types and undefined values.
        """
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            _raise(ProblemFileError, where,
                   f"expected an expression string or a number, got {type(text).__name__} "
                   f"{_quote(repr(text))}", "write the expression as a TOML string")
        if not isinstance(text, str):
            return _Walker(self, str(text), where).number(text)
        _check_text(text, where)
        source = _normalize(text)
        return _Walker(self, source, where).run(_parse_tree(source, where))


def _check_text(text: str, where: str | None) -> None:
    """Checks on the raw string, before the parser sees it."""
    if not text:
        _raise(ProblemFileError, where, "the expression is empty",
               "write an expression such as 'x1 - tanh(w*x0)'")
    if len(text) > MAX_LENGTH:
        _raise(UnsafeExpressionError, where,
               f"the expression is {len(text):,} characters long, over the limit of "
               f"{MAX_LENGTH:,}", "split it into named parts or simplify it")
    if "#" in text:
        column = text.index("#") + 1
        _raise(UnsafeExpressionError, where,
               f"comments ('#') are not allowed inside an expression: "
               f"{_quote(_excerpt(text, column))} at column {column}",
               "put comments outside the TOML string")
    _check_brackets(text, where)


def _check_brackets(text: str, where: str | None) -> None:
    """Reject bracket nesting over MAX_DEPTH before the parser sees it."""
    depth = 0
    for column, char in enumerate(text, start=1):
        if char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                _raise(UnsafeExpressionError, where,
                       f"brackets are nested more than {MAX_DEPTH} deep: "
                       f"{_quote(_excerpt(text, column))} at column {column}",
                       "simplify the expression or split it into named parts")
        elif char in ")]}":
            depth -= 1


def _parse_tree(text: str, where: str | None) -> ast.Expression:
    """Build the syntax tree only; never compile it to code."""
    _check_text(text, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval")
    except SyntaxError as err:
        offset = err.offset or 0
        position = f"column {offset}" if 0 < offset <= len(text) else "the end"
        _raise(ProblemFileError, where,
               f"syntax error at {position}: {err.msg}: {_quote(_excerpt(text, offset))}",
               "write a single arithmetic expression, e.g. 'tanh(w*x1) - x2'")
    except (RecursionError, MemoryError):
        _raise(UnsafeExpressionError, where,
               "the expression is nested too deeply or is too complex to parse",
               f"keep nesting under {MAX_DEPTH} levels and sums under a few hundred "
               "terms, or split it into named parts")
    except ValueError as err:  # null bytes, on some Python versions
        _raise(ProblemFileError, where, f"the expression cannot be parsed: {err}",
               "remove control characters from the string")


class _Walker:
    """Walks one syntax tree against the whitelist and builds the SymPy expression."""

    def __init__(self, parser: ExpressionParser, text: str, where: str | None) -> None:
        self.parser = parser
        self.text = text
        self.where = where
        self.calls = 0  # function calls currently open around the node being visited
        self.deadline = time.monotonic() + parser.time_limit
        self._constant_depths: dict[sp.Basic, int] = {}
        self.constants = _Constants()

    # ---- errors

    def fail(self, node: ast.expr | ast.keyword, reason: str, fix: str,
             error: type[ProblemFileError] = UnsafeExpressionError) -> NoReturn:
        column = node.col_offset + 1
        segment = ast.get_source_segment(self.text, node) or self.text
        message = f"{reason}: {_quote(segment)} at column {column}"
        if segment != self.text:
            message += f" of {_quote(_excerpt(self.text, column))}"
        _raise(error, self.where, message, fix)

    # ---- entry points

    def run(self, tree: ast.Expression) -> sp.Expr:
        result = self.visit(tree.body, 1)
        return self.check_result(tree.body, result)

    def number(self, value: _Number) -> sp.Expr:
        node = ast.Constant(value=value, lineno=1, col_offset=0,
                            end_lineno=1, end_col_offset=len(self.text))
        return self.check_result(node, self.constant(node, 1))

    def check_time(self, node: ast.expr) -> None:
        if time.monotonic() > self.deadline:
            self.fail(node, f"building the expression took over {self.parser.time_limit:g} s",
                      "simplify it; constant parts can be written as numbers")

    def check_result(self, node: ast.AST, result: sp.Basic) -> sp.Expr:
        self.check_time(node)
        if not isinstance(result, sp.Expr):
            self.fail(node, f"the result is not a scalar expression ({type(result).__name__})",
                      "use scalar names only", ProblemFileError)
        if result.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            self.fail(node, "the expression is undefined or infinite (a division by zero?)",
                      "check denominators and logarithms", ProblemFileError)
        problem = self.constant_problem(result)
        if result.has(sp.I) or problem == "is complex":
            self.fail(node, f"the expression is complex-valued ({_shorten(str(result), 40)})",
                      "problems are real-valued; check square roots and logarithms",
                      ProblemFileError)
        if problem:
            self.fail(node, f"the constant {_shorten(str(result), 40)} {problem}",
                      _CONSTANT_FIX, ProblemFileError)
        return result

    # ---- constants

    def is_constant(self, expr: sp.Basic) -> bool:
        """Whether ``expr`` is a constant with a numeric value (no symbols, no undefined
        functions)."""
        return self.constant_depth(expr) >= 0 and self.constants.value(expr) is not None

    def constant_problem(self, expr: sp.Basic) -> str | None:
        """Why the constant ``expr`` is not a usable real number (``None``: it is, or it
        is not a constant)."""
        return self.constants.problem(expr) if self.constant_depth(expr) >= 0 else None

    def decided_signs(self, node: ast.expr, args: Sequence[sp.Expr]) -> list[int | None]:
        """The signs of the constant ``args`` (``None`` for the others); refuse a constant
        whose sign cannot be decided numerically (SymPy would search for it without
        bound)."""
        signs: list[int | None] = []
        for arg in args:
            sign = None
            if self.is_constant(arg):
                sign = self.constants.sign(arg)
                if sign is None:
                    self.fail(node, f"the sign of the constant {_shorten(str(arg), 40)} "
                              f"cannot be decided at {CONSTANT_DIGITS[-1]} digits (is it "
                              "zero?)", "write the constant as a number, e.g. 0",
                              ProblemFileError)
            signs.append(sign)
        return signs

    def fold(self, build: Callable[..., Any], args: list[sp.Expr],
             signs: list[int | None]) -> sp.Expr | None:
        """``sign``, ``Abs``, ``Max`` and ``Min`` of constants, decided numerically."""
        if build in (sp.sign, sp.Abs) and signs[0] is not None:
            if build is sp.sign:
                return sp.Integer(signs[0])
            return args[0] if signs[0] >= 0 else -args[0]
        if build in (sp.Max, sp.Min) and sum(s is not None for s in signs) >= 2:
            constants = [a for a, s in zip(args, signs) if s is not None]
            best = constants[0]
            for other in constants[1:]:
                difference = self.constants.sign(other - best)
                if difference is not None and (difference > 0) == (build is sp.Max):
                    best = other  # undecided: equal at 240 digits, either will do
            rest = [a for a, s in zip(args, signs) if s is None]
            return build(best, *rest) if rest else best
        return None

    # ---- dispatch

    def visit(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            self.fail(node, f"the expression is nested more than {MAX_DEPTH} levels deep",
                      "simplify the expression or split it into named parts")
        self.check_time(node)
        if isinstance(node, ast.Constant):
            return self.constant(node, depth)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        reason, fix = _FORBIDDEN_NODES.get(
            type(node), (f"the construct {type(node).__name__} is not allowed",
                         f"use only {_ONLY_SIMPLE}"))
        self.fail(node, reason, fix)

    # ---- leaves

    def constant(self, node: ast.Constant, depth: int) -> sp.Expr:
        value = node.value
        for kind, (reason, fix) in _CONSTANT_TYPES.items():
            if type(value) is kind:
                self.fail(node, reason, fix)
        if isinstance(value, int):
            if value.bit_length() > _MAX_BITS:
                self.fail(node, f"the integer has more than {MAX_DIGITS} digits",
                          "write large numbers in scientific notation, e.g. 1.5e120")
            return sp.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(node, "the number is not finite (too large for a float, or nan)",
                          "write a finite number", ProblemFileError)
            return sp.Float(value)
        self.fail(node, f"literals of type {type(value).__name__} are not allowed",
                  "write a number")

    def name(self, node: ast.Name) -> sp.Expr:
        name = node.id
        if name.startswith("__"):
            self.fail(node, "names starting with '__' are never allowed",
                      "use declared names only")
        parser = self.parser
        if name in parser._values:
            return self.scalar(node, parser._values[name])
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in parser.function_names:
            self.fail(node, f"{name!r} is a function, not a value",
                      f"call it with its arguments, e.g. {name}(x)")
        self.fail(node, f"unknown name {name!r}", self.unknown_fix(name, parser.value_names))

    def scalar(self, node: ast.AST, value: sp.Basic) -> sp.Expr:
        if not isinstance(value, sp.Expr):
            self.fail(node, f"this name is not a scalar expression ({type(value).__name__})",
                      "declare each component as its own scalar name", ProblemFileError)
        return value

    def unknown_fix(self, name: str, candidates: frozenset[str]) -> str:
        hints = []
        for suffix in DERIVATIVE_SUFFIXES:
            base = name[: -len(suffix)]
            if name.endswith(suffix) and base in self.parser._values:
                hints.append(f"{name!r} (the time derivative of {base!r}) is not available "
                             "in this field")
        if name[:1] == "d" and name[1:] in self.parser._values:
            hints.append(f"time derivatives are written with a suffix: '{name[1:]}_dot'")
        close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
        if close:
            hints.append("did you mean " + " or ".join(repr(c) for c in close) + "?")
        if not hints:
            known = ", ".join(sorted(candidates)[:12]) + (", ..." if len(candidates) > 12 else "")
            hints.append(f"declare it in the problem file (known names: {known})")
        return "; ".join(hints)

    # ---- operators

    def unary(self, node: ast.UnaryOp, depth: int) -> sp.Expr:
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return self.checked(node, -self.visit(node.operand, depth + 1))
        self.fail(node, *_FORBIDDEN_OPERATORS[type(node.op)])

    def binary(self, node: ast.BinOp, depth: int) -> sp.Expr:
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return self.chain(node, depth, (ast.Add, ast.Sub), self.add)
        if isinstance(node.op, (ast.Mult, ast.Div)):
            return self.chain(node, depth, (ast.Mult, ast.Div), self.multiply)
        if isinstance(node.op, ast.Pow):
            return self.power(node, depth)
        self.fail(node, *_FORBIDDEN_OPERATORS[type(node.op)])

    def chain(self, node: ast.BinOp, depth: int, ops: tuple[type, ...],
              combine: Callable[[ast.AST, list[tuple[ast.operator | None, sp.Expr, ast.AST]]],
                                sp.Expr]) -> sp.Expr:
        """Flatten a left-deep chain such as ``a - b + c`` into one level, iteratively."""
        items: list[tuple[ast.operator | None, ast.AST]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ops):
            items.append((current.op, current.right))
            current = current.left
        items.append((None, current))
        items.reverse()
        operands = [(op, self.visit(operand, depth + 1), operand) for op, operand in items]
        return self.checked(node, combine(node, operands))

    def add(self, node: ast.AST, operands: list) -> sp.Expr:
        return sp.Add(*(-value if isinstance(op, ast.Sub) else value
                        for op, value, _ in operands))

    def multiply(self, node: ast.AST, operands: list) -> sp.Expr:
        factors = []
        for op, value, operand in operands:
            if isinstance(op, ast.Div):
                if value.is_Number and value.is_zero:
                    self.fail(operand, "division by zero", "check the denominator",
                              ProblemFileError)
                self.decided_signs(operand, [value])  # a zero in disguise is refused
                value = sp.Pow(value, sp.S.NegativeOne)
            factors.append(value)
        return sp.Mul(*factors)

    def power(self, node: ast.BinOp, depth: int) -> sp.Expr:
        base = self.visit(node.left, depth + 1)
        exponent = self.visit(node.right, depth + 1)
        self.check_power(node, base, exponent)
        self.check_constant_depth(node, [base, exponent])
        self.decided_signs(node, [base, exponent])
        return self.checked(node, sp.Pow(base, exponent))

    def check_constant_depth(self, node: ast.expr, args: list[sp.Expr]) -> None:
        """Refuse, before building it, a function or power too deep in pure constants."""
        depths = [self.constant_depth(arg) for arg in args]
        if depths and min(depths) >= 0 and 1 + max(depths) > MAX_CONSTANT_DEPTH:
            self.fail(node, "functions and powers of constants are nested more than "
                      f"{MAX_CONSTANT_DEPTH} deep",
                      "compute the constant and write its value as a number")

    def constant_depth(self, expr: sp.Basic) -> int:
        """Nesting of functions and powers in ``expr`` if it has no symbols, else -1."""
        if expr not in self._constant_depths:
            if isinstance(expr, sp.Symbol):
                depth = -1
            elif expr.is_Atom or not expr.args:
                depth = 0
            else:
                children = [self.constant_depth(arg) for arg in expr.args]
                own = isinstance(expr, (sp.Function, sp.Pow))
                depth = -1 if min(children) < 0 else max(children) + own
            self._constant_depths[expr] = depth
        return self._constant_depths[expr]

    def check_power(self, node: ast.BinOp, base: sp.Expr, exponent: sp.Expr) -> None:
        """Refuse, before building it, a power that is huge, undefined or complex."""
        if not exponent.is_Number:
            return
        if abs(exponent) > MAX_EXPONENT:
            self.fail(node, f"the exponent {_shorten(str(exponent), 30)} exceeds the limit "
                      f"of {MAX_EXPONENT} in magnitude",
                      "use a smaller exponent or rescale the quantity")
        if not base.is_Number:
            return
        if base.is_zero and exponent.is_negative:
            self.fail(node, "zero raised to a negative power (division by zero)",
                      "check the base", ProblemFileError)
        if base.is_negative and not exponent.is_integer:
            self.fail(node, "a negative number raised to a non-integer power is complex",
                      "problems are real-valued; check the base", ProblemFileError)
        if not base.is_zero and _digits(base) * float(abs(exponent)) > MAX_DIGITS:
            self.fail(node, f"the power would have more than {MAX_DIGITS} digits",
                      "use a smaller exponent or scientific notation, e.g. 1e50")

    def checked(self, node: ast.AST, value: sp.Expr) -> sp.Expr:
        """Reject a computed number over the digit limit or outside the float range, and
        a constant that is complex, undefined or beyond :data:`MAX_MAGNITUDE`."""
        if isinstance(value, sp.Rational) and max(abs(value.p), value.q).bit_length() > _MAX_BITS:
            self.fail(node, f"the computed number has more than {MAX_DIGITS} digits",
                      "use smaller numbers or scientific notation, e.g. 1e50")
        if isinstance(value, sp.Float) and not math.isfinite(float(value)):
            self.fail(node, "the computed number is too large for a float",
                      "use smaller numbers", ProblemFileError)
        problem = self.constant_problem(value)
        if problem:
            self.fail(node, f"the constant {_shorten(str(value), 40)} {problem}",
                      _CONSTANT_FIX, ProblemFileError)
        return value

    # ---- calls

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            self.fail(node, "calls are allowed only of whitelisted functions by bare name",
                      "call a known function such as exp(x) or tanh(x); methods, attributes "
                      "and computed callees are not allowed")
        name = node.func.id
        if name.startswith("__"):
            self.fail(node.func, "names starting with '__' are never allowed",
                      "use whitelisted functions only")
        if node.keywords:
            self.fail(node.keywords[0], "keyword arguments are not allowed",
                      f"pass arguments by position, e.g. {name}(x)")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, *_FORBIDDEN_NODES[ast.Starred])
        function = self.lookup_function(node, name)
        if self.calls >= MAX_CALL_DEPTH:
            self.fail(node, f"function calls are nested more than {MAX_CALL_DEPTH} deep",
                      "simplify the expression or split it into named parts")
        self.calls += 1
        try:
            args = [self.visit(arg, depth + 1) for arg in node.args]
        finally:
            self.calls -= 1
        self.check_arity(node, name, function)
        self.check_constant_depth(node, args)
        return self.checked(node, self.apply(node, name, function, args))

    def lookup_function(self, node: ast.Call, name: str) -> _Function | Callable[..., Any]:
        parser = self.parser
        for table in (parser._callables, parser._functions, _BUILTIN_FUNCTIONS):
            if name in table:
                return table[name]
        if name in parser._values or name in _CONSTANTS:
            self.fail(node, f"{name!r} is a value, not a function",
                      f"write an explicit product, e.g. {name}*(...)")
        self.fail(node.func, f"unknown function {name!r}", self.unknown_function_fix(name))

    def unknown_function_fix(self, name: str) -> str:
        if name in _DERIVATIVE_CALLS:
            return ("there is no derivative syntax; a time derivative is a declared name "
                    "with the suffix '_dot' or '_ddot', e.g. 'x_dot'")
        close = difflib.get_close_matches(name, sorted(self.parser.function_names), n=3,
                                          cutoff=0.6)
        prefix = (f"{name!r} is a Python builtin, and expressions are not Python code; "
                  if name in dir(builtins) else "")
        if close:
            return prefix + "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return prefix + "allowed functions: " + ", ".join(sorted(self.parser.function_names))

    def check_arity(self, node: ast.Call, name: str,
                    function: _Function | Callable[..., Any]) -> None:
        count = len(node.args)
        if isinstance(function, _Function):
            if not function.min_args <= count <= function.max_args:
                low, high = function.min_args, function.max_args
                expected = f"exactly {low}" if low == high else f"{low} to {high}"
                self.fail(node, f"{name!r} takes {expected} argument{'s' * (high > 1)}, "
                          f"got {count}", f"call it as {function.usage}")
        elif count > MAX_ARGS or _accepts(function, count) is False:
            self.fail(node, f"{name!r} does not accept {count} argument{'s' * (count != 1)}",
                      "check the function's declaration for its number of arguments")

    def apply(self, node: ast.Call, name: str, function: _Function | Callable[..., Any],
              args: list[sp.Expr]) -> sp.Expr:
        build = function.build if isinstance(function, _Function) else function
        if isinstance(function, _Function):  # built-in: decide constants' signs here
            folded = self.fold(build, args, self.decided_signs(node, args))
            if folded is not None:
                return self.scalar(node, folded)
        try:
            result = build(*args)
        except (TypeError, ValueError, ArithmeticError) as err:
            self.fail(node, f"calling {name!r} failed ({_shorten(str(err), 60)})",
                      "check the arguments", ProblemFileError)
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            result = _number(result)
        if not isinstance(result, sp.Basic):
            raise TypeError(f"function {name!r} returned {type(result).__name__}, "
                            "not a SymPy expression")
        if result.has(sp.zoo, sp.nan, sp.I):
            self.fail(node, f"{name}(...) is undefined, infinite or complex here",
                      "check the argument's range", ProblemFileError)
        return self.scalar(node, result)


_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))
_CONSTANT_FIX = ("problems are real-valued and simulated in double precision: keep constants "
                 "real and below 1e308 (check square roots, logarithms, asin/acos, powers "
                 "of negative numbers and large arguments of exp, sinh and cosh)")


def _digits(number: sp.Expr) -> float:
    """Decimal digits (order of magnitude) of a nonzero SymPy number."""
    if isinstance(number, sp.Rational):
        return max(math.log10(abs(number.p)), math.log10(number.q), 1.0)
    return max(abs(math.log10(abs(float(number)))), 1.0) if float(number) else 1.0


def _accepts(function: Callable[..., Any], count: int) -> bool | None:
    """Whether ``function`` accepts ``count`` positional arguments (``None``: unknown)."""
    if isinstance(function, sp.FunctionClass) and isinstance(function.nargs, sp.Set):
        return bool(function.nargs.contains(count))
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


# --------------------------------------------------------------------------- constants

#: mpmath counterparts of the SymPy functions a constant may contain.
_MP_FUNCTIONS: dict[type, Callable[..., Any]] = {
    sp.exp: lambda c, x: c.exp(x), sp.log: lambda c, x: c.log(x),
    sp.sin: lambda c, x: c.sin(x), sp.cos: lambda c, x: c.cos(x),
    sp.tan: lambda c, x: c.tan(x), sp.tanh: lambda c, x: c.tanh(x),
    sp.sinh: lambda c, x: c.sinh(x), sp.cosh: lambda c, x: c.cosh(x),
    sp.sech: lambda c, x: c.sech(x), sp.asin: lambda c, x: c.asin(x),
    sp.acos: lambda c, x: c.acos(x), sp.atan: lambda c, x: c.atan(x),
    sp.atan2: lambda c, y, x: c.atan2(y, x), sp.sign: lambda c, x: c.sign(x),
    sp.Abs: lambda c, x: abs(x), sp.Max: lambda c, *xs: max(xs),
    sp.Min: lambda c, *xs: min(xs),
}


class _Numeric:
    """Numeric values of constant SymPy expressions at one working precision (mpmath).

    Every constant an expression contains was range-checked when it was built, so each
    evaluation here is cheap: the arguments of a function never exceed
    :data:`MAX_MAGNITUDE`. ``None`` stands for "not a constant" (a symbol, an undefined
    function such as an input ``e(1)``).
    """

    def __init__(self, digits: int) -> None:
        self.ctx = MPContext()
        self.ctx.dps = digits
        self._memo: dict[sp.Basic, Any] = {}

    def value(self, expr: sp.Basic) -> Any:
        if expr not in self._memo:
            self._memo[expr] = self._compute(expr)
        return self._memo[expr]

    def _compute(self, expr: sp.Basic) -> Any:
        ctx = self.ctx
        if expr.is_Integer:
            return ctx.mpf(int(expr))
        if expr.is_Rational:
            return ctx.mpf(int(expr.p)) / int(expr.q)
        if expr.is_Float:
            return ctx.mpf(expr._mpf_)
        if expr is sp.I:
            return ctx.mpc(0, 1)
        if expr in (sp.zoo, sp.nan, sp.oo, -sp.oo):
            return ctx.nan
        if isinstance(expr, sp.NumberSymbol):
            return ctx.mpf(expr._as_mpf_val(ctx.prec))
        if isinstance(expr, sp.Symbol) or not expr.args:
            return None
        if expr.is_Add or expr.is_Mul or expr.is_Pow:
            operation = ctx.fsum if expr.is_Add else ctx.fprod if expr.is_Mul else None
        else:
            operation = _MP_FUNCTIONS.get(type(expr))
            if operation is None:
                return None
        args = [self.value(arg) for arg in expr.args]
        if any(arg is None for arg in args):
            return None
        try:
            if expr.is_Pow:
                return ctx.power(*args)
            if expr.is_Add or expr.is_Mul:
                return operation(args)
            if any(isinstance(arg, ctx.mpc) for arg in args) and \
                    type(expr) in (sp.atan2, sp.sign, sp.Max, sp.Min):
                return ctx.nan  # undefined on complex arguments (refused earlier anyway)
            return operation(ctx, *args)
        except (ZeroDivisionError, ValueError, OverflowError, TypeError):
            return ctx.nan


def _problem(numeric: _Numeric, value: Any) -> str | None:
    """Why a constant's ``value`` is not a usable real number, or ``None``."""
    ctx = numeric.ctx
    if ctx.isnan(value) or ctx.isinf(value):
        return "is undefined or infinite"
    if isinstance(value, ctx.mpc) and value.imag != 0:
        return "is complex"
    if abs(value) > MAX_MAGNITUDE:
        return (f"is about 10^{int(ctx.floor(ctx.log10(abs(value))))}, beyond the range "
                f"of a double ({MAX_MAGNITUDE:.1e})")
    return None


class _Constants:
    """The numeric side of the walker: range checks and sign decisions of constants."""

    def __init__(self) -> None:
        self.numerics = [_Numeric(digits) for digits in CONSTANT_DIGITS]

    def value(self, expr: sp.Basic) -> Any:
        """The value at the first working precision (``None``: not a constant)."""
        return self.numerics[0].value(expr)

    def problem(self, expr: sp.Basic) -> str | None:
        value = self.value(expr)
        return None if value is None else _problem(self.numerics[0], value)

    def sign(self, expr: sp.Expr) -> int | None:
        """The sign of a real constant, decided when two successive working precisions
        agree on a nonzero value; ``None`` when they never do (a zero in disguise)."""
        if expr.is_Number:
            return int(sp.sign(expr))
        previous = None
        for numeric in self.numerics:
            value = numeric.value(expr)
            if value is None or _problem(numeric, value) is not None:
                return None
            value = numeric.ctx.re(value)
            if previous is not None and value != 0 and \
                    abs(value - previous) <= abs(value) * numeric.ctx.mpf("1e-20"):
                return 1 if value > 0 else -1
            previous = value
        return None


# --------------------------------------------------------------------------- functions


def parse_expression(text: str | int | float, names: Mapping[str, NameValue], *,
                     functions: Mapping[str, Callable[..., Any]] | None = None,
                     where: str | None = None) -> sp.Expr:
    """Parse an untrusted expression string into a SymPy expression, safely.

    Parameters
    ----------
    text
        The expression, e.g. ``"tanh(w*x1) - x2"``; a TOML int or float is accepted too.
    names
        Declared names and their values (see :class:`ExpressionParser`).
    functions
        Extra whitelisted functions, e.g. ``{"sigma": sympy.tanh}``.
    where
        Location for messages: ``"problems/xor.toml: constraints[2].expr"``.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    UnsafeExpressionError
        For constructs outside the whitelist and inputs over the limits.
    ProblemFileError
        For syntax errors and undefined values.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> parse_expression("-x**2 + 1/2", {"x": x})
    1/2 - x**2
    >>> from cognitive_action.errors import UnsafeExpressionError
    >>> def show(text):
    ...     try:
    ...         parse_expression(text, {"x": x}, where="problems/p.toml: loss")
    ...     except UnsafeExpressionError as err:
    ...         print(err)
    >>> show("x^2")  # doctest: +NORMALIZE_WHITESPACE
    problems/p.toml:loss: '^' is bitwise XOR in Python, not a power: 'x^2' at column 1.
    Fix: write powers with '**', e.g. x**2
    >>> show("1 + sigm(x)")  # doctest: +NORMALIZE_WHITESPACE
    problems/p.toml:loss: unknown function 'sigm': 'sigm' at column 5 of '1 + sigm(x)'.
    Fix: did you mean 'sign' or 'sigmoid'?
    """
    return ExpressionParser(names, functions=functions).parse(text, where)


def parse_number(value: str | int | float, where: str | None = None, *,
                 names: Mapping[str, NameValue] | None = None) -> sp.Expr:
    """Parse a TOML value that must be a real constant: a number or an expression string.

    Parameters
    ----------
    value
        ``0.5``, ``3``, ``"1/3"``, ``"pi/4"``, ``"exp(-1)"``, ...
    where
        Location for messages.
    names
        Names the string may use; their values must be constants for the result to be one.

    Returns
    -------
    sympy.Expr
        An exact SymPy number where possible; ``float(...)`` gives the value.

    Raises
    ------
    ProblemFileError
        If the value is not a real constant (or any error of :func:`parse_expression`).

    Examples
    --------
    >>> parse_number("pi/4")
    pi/4
    >>> parse_number(0.5)
    0.500000000000000
    >>> parse_number("1/3") + parse_number("2/3")
    1
    >>> import sympy as sp
    >>> from cognitive_action.errors import ProblemFileError
    >>> try:
    ...     parse_number("2*m", "problems/p.toml: parameters.k", names={"m": sp.Symbol("m")})
    ... except ProblemFileError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    problems/p.toml:parameters.k: expected a constant, but '2*m' depends on m. Fix: give
    a number or an expression of numbers and constants such as pi
    """
    result = parse_expression(value, names or {}, where=where)
    if result.free_symbols or not result.is_number:
        symbols = ", ".join(sorted(str(s) for s in result.free_symbols))
        _raise(ProblemFileError, where,
               f"expected a constant, but {_quote(str(value))} depends on {symbols}",
               "give a number or an expression of numbers and constants such as pi")
    return result


def parse_vector(values: Sequence[str | int | float], names: Mapping[str, NameValue], *,
                 functions: Mapping[str, Callable[..., Any]] | None = None,
                 where: str | None = None, length: int | None = None) -> list[sp.Expr]:
    """Parse a TOML array of expressions (strings or numbers) element by element.

    Parameters
    ----------
    values
        The array.
    names, functions
        As for :func:`parse_expression`.
    where
        Location; element ``i`` is reported as ``<where>[i]``.
    length
        Required length, if any.

    Returns
    -------
    list of sympy.Expr

    Raises
    ------
    ProblemFileError
        If ``values`` is not an array or has the wrong length, or an element fails.

    Examples
    --------
    >>> import sympy as sp
    >>> t = sp.Symbol("t")
    >>> parse_vector(["sin(t)", 0, "1/2"], {"t": t}, length=3)
    [sin(t), 0, 1/2]
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        _raise(ProblemFileError, where, f"expected an array, got {type(values).__name__}",
               "write a TOML array, e.g. [\"x1\", 0.5]")
    if length is not None and len(values) != length:
        _raise(ProblemFileError, where, f"expected {length} entries, got {len(values)}",
               f"give exactly {length} entries")
    parser = ExpressionParser(names, functions=functions)
    return [parser.parse(value, _extend(where, f"[{i}]")) for i, value in enumerate(values)]


def parse_matrix(rows: Sequence[Sequence[str | int | float]], names: Mapping[str, NameValue],
                 *, functions: Mapping[str, Callable[..., Any]] | None = None,
                 where: str | None = None,
                 shape: tuple[int, int] | None = None) -> list[list[sp.Expr]]:
    """Parse a TOML array of arrays into a rectangular list of rows of expressions.

    Parameters
    ----------
    rows
        The rows.
    names, functions
        As for :func:`parse_expression`.
    where
        Location; entry ``(i, j)`` is reported as ``<where>[i][j]``.
    shape
        Required ``(rows, columns)``, if any.

    Returns
    -------
    list of list of sympy.Expr

    Raises
    ------
    ProblemFileError
        If the rows are not arrays of equal length, the shape is wrong, or an entry fails.

    Examples
    --------
    >>> parse_matrix([[1, "1/2"], [0, "pi"]], {})
    [[1, 1/2], [0, pi]]
    """
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        _raise(ProblemFileError, where, f"expected an array of rows, got {type(rows).__name__}",
               "write a TOML array of arrays, e.g. [[1, 0], [0, 1]]")
    n_rows = shape[0] if shape else None
    n_cols = shape[1] if shape else (len(rows[0]) if rows and isinstance(rows[0], Sequence)
                                     else None)
    if n_rows is not None and len(rows) != n_rows:
        _raise(ProblemFileError, where, f"expected {n_rows} rows, got {len(rows)}",
               f"give exactly {n_rows} rows")
    return [parse_vector(row, names, functions=functions, where=_extend(where, f"[{i}]"),
                         length=n_cols) for i, row in enumerate(rows)]
