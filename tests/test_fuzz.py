"""Fuzzing the expression parser and the problem-file loader with Hypothesis (issue 17).

The property: whatever the input, the outcome is either a result or an exception from
:mod:`cognitive_action.errors` (never a ``TypeError`` from SymPy, a ``RecursionError``,
a hang or a memory blow-up); an accepted constant is a finite real number.

Two kinds of inputs, for the parser and for the loader:

* grammar-based: strings built from the expression grammar (names, numbers from tiny
  to huge, the whitelisted functions with right and wrong arities, nesting), and TOML
  tables built from the problem-file schema with values of every type;
* mutation-based: the shipped problem files, the parser's own test strings and the
  regression corpus (``tests/corpus/``), with characters inserted, deleted, replaced
  and pieces spliced together.

Every case runs under a per-case time bound (:data:`CASE_SECONDS`, a ``SIGALRM``: a
case that does not end is reported as a hang with its input). The default run has a
small budget (a few seconds); ``-m slow`` runs 10⁴ cases in all and checks that the
process stayed under 1 GB (``resource.getrusage``). Inputs that once failed are kept in
``tests/corpus/`` and replayed by :func:`test_regression_corpus`.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import signal
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sympy as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cognitive_action.errors import CognitiveActionError  # noqa: E402
from cognitive_action.problem_files import FUNCTION_NAMES, ExpressionParser  # noqa: E402
from cognitive_action.problem_files.loader import (  # noqa: E402
    Limits,
    load_problem,
    parse_problem,
    shipped_problems,
)

CORPUS = Path(__file__).parent / "corpus"
#: Seconds one case may take before it counts as a hang (the issue's "zero hangs > 10 s").
CASE_SECONDS = 10.0
#: Cases per test in the default run and under ``-m slow`` (4 tests x 2,500 = 10⁴).
QUICK, LONG = 40, 2_500
#: A small size budget for the loader's cases: the budget is what bounds a network's
#: cost, so the fuzzer runs under one (a file that names 50,000 weights within the
#: default budget is allowed to take seconds; that is not a hang).
FUZZ_LIMITS = Limits(max_neurons=60, max_weights=300, max_points=10_000)
#: The process may not grow beyond this (the issue's "zero processes over 1 GB").
MAX_RSS_BYTES = 1 << 30

t, x1, x2, w = sp.symbols("t x1 x2 w", real=True)
NAMES = {"t": t, "x1": x1, "x2": x2, "w": w, "e": sp.Function("e")}


class Hang(BaseException):
    """A case ran longer than :data:`CASE_SECONDS` (a BaseException: SymPy's ``except
    Exception`` blocks do not swallow it)."""


@contextlib.contextmanager
def time_bound(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (``SIGALRM``)."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows
        yield
        return

    fired: list[bool] = []

    def alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The Hang can land where Python ignores exceptions (a garbage-collector callback,
    # a __del__) and never reach us: the case still ran too long.
    if fired:
        raise Hang(f"over {seconds} s (the interrupt was swallowed on the way)")


def check_expression(text: Any) -> None:
    """The property for one expression: a real expression or a typed error, in time."""
    with time_bound():
        try:
            result = ExpressionParser(NAMES).parse(text, "fuzz.toml: expr")
        except CognitiveActionError:
            return
    assert isinstance(result, sp.Expr)
    if result.is_number:  # an accepted constant is a finite real number
        value = float(result)
        assert math.isfinite(value), (text, result)


def check_file_data(data: dict[str, Any]) -> None:
    """The property for one parsed TOML table."""
    with time_bound():
        try:
            parse_problem(data, path="fuzz.toml", limits=FUZZ_LIMITS)
        except CognitiveActionError:
            return


def check_file_text(text: str, tmp: Path) -> None:
    """The property for one file's text, through ``load_problem`` (TOML included)."""
    path = tmp / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with time_bound():
        try:
            load_problem(path, limits=FUZZ_LIMITS)
        except CognitiveActionError:
            return


# --------------------------------------------------------------------------- grammars

_SMALL_NUMBERS = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(
    ["0", "1", "2", "0.5", "1e-3", "3.25", "1/2", "10", "100", "1e10", "10**10", "10**64",
     "1e308", "1e-308", "9**9", "pi", "E", "1_000"]))
_ATOMS = st.one_of(_SMALL_NUMBERS, st.sampled_from(["x1", "x2", "w", "t", "e(t)", "x1_dot",
                                                    "q1", "q2_dot", "m", "theta", "y", "exp",
                                                    "__class__", "'s'", "True"]))
_FUNCTIONS = sorted(FUNCTION_NAMES) + ["e", "diff", "eval", "sum"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "^", "%"]),
                       children).map(lambda p: f"({p[0]} {p[1]} {p[2]})")
    unary = st.tuples(st.sampled_from(["-", "+"]), children).map("".join)
    call = st.tuples(st.sampled_from(_FUNCTIONS),
                     st.lists(children, min_size=0, max_size=3)).map(
        lambda p: f"{p[0]}({', '.join(p[1])})")
    return st.one_of(binary, unary, call, call)


EXPRESSIONS = st.recursive(_ATOMS, _combine, max_leaves=12)

_SEEDS = [
    "tanh(w*x1) - x2", "(x2 - w)**2/2", "sigmoid(w*x1)", "exp(-t)*x1", "Max(x1, x2, 0)",
    "sqrt(x1**2 + x2**2)", "atan2(x2, x1)", "softplus(x1) - log(2)", "sign(x1)*Abs(x2)",
    "sign(sin(exp(10**10)))", "(-64)**sigmoid(1)", "sinh(asin(10))", "9**9**9",
    "sigmoid(sinh(10**10))", "Abs(sin(exp(10**10)))", "1/(sin(1)**2 + cos(1)**2 - 1)",
]
_ALPHABET = string.printable + "ｅπ\x00\u200b"


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """A seed with random edits: inserts, deletions, replacements and splices."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "splice", "repeat"]))
        i = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:i] + draw(st.text(_ALPHABET, min_size=1, max_size=4)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 4)):]
        elif kind == "replace" and text:
            text = text[:i] + draw(st.sampled_from(_ALPHABET)) + text[i + 1:]
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            j = draw(st.integers(0, len(other)))
            text = text[:i] + other[j:]
        else:
            text = text[:i] + text[i:i + 8] * draw(st.integers(2, 30)) + text[i:]
    return text


# --------------------------------------------------------------------------- file grammar

_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
              st.floats(allow_nan=True, allow_infinity=True), EXPRESSIONS,
              st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=8).map(lambda v: v)


def _maybe(key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), strategy.map(lambda v: {key: v}))


def _table(keys: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
           ) -> st.SearchStrategy[dict[str, Any]]:
    parts = [s.map(lambda v, k=k: {k: v}) if k in required else _maybe(k, s)
             for k, s in keys.items()]
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]
            ) -> st.SearchStrategy[Any]:
    """Valid values three times in four: the loader's deeper fields get reached."""
    return st.one_of(valid, valid, valid, other)


_NUMBER = st.floats(0.01, 100.0)
_LAYERS = _mostly(st.lists(st.integers(1, 4), min_size=2, max_size=4),
                  st.one_of(st.lists(st.integers(-1, 30), max_size=5), _VALUES))
_EDGES = st.lists(st.lists(st.one_of(st.integers(0, 8), st.sampled_from(["a", "b c", "1"])),
                           min_size=1, max_size=3), max_size=12)
_NAME = st.sampled_from(["ok"] * 8 + ["law_1", "a.b", "my-law", "../x", "/abs",
                         "a" * 300, "", "ü bad", "x\x00"])
NETWORK_FILES = _table({
    "name": _NAME,
    "parameters": st.dictionaries(st.sampled_from(["m_x", "m_W", "theta", "k", "exp", "t"]),
                                  _mostly(_NUMBER, _VALUES), max_size=3),
    "network": _table({"layers": _LAYERS, "edges": _EDGES,
                       "inputs": st.lists(st.integers(0, 8), max_size=3),
                       "activation": st.sampled_from(["tanh", "logistic", "relu", 3]),
                       "bias": _mostly(st.booleans(), _VALUES),
                       "outputs": st.one_of(st.lists(st.integers(0, 8), max_size=2), _VALUES),
                       "nodes": _VALUES, "speed": st.one_of(EXPRESSIONS, _VALUES),
                       "activations": _VALUES, "output_activation": _VALUES},
                      required=("layers",)),
    "data": _table({"source": st.sampled_from(["digits", "../etc", 3]), "split": _VALUES,
                    "seed": _VALUES, "limit": _VALUES}),
    "train": _table({"epochs": _VALUES, "learning_rate": _VALUES, "quick_samples": _VALUES}),
    "action": _table({"mass_x": _mostly(_NUMBER, _VALUES), "mass_W": _mostly(_NUMBER, _VALUES),
                      "weight": EXPRESSIONS,
                      "loss": st.one_of(EXPRESSIONS, st.sampled_from(["squared", "x"]))}),
    "initial": _table({"values": _mostly(st.dictionaries(st.sampled_from(
        ["x1", "x2", "x3", "w3_1", "x1_dot", "zz"]), _mostly(_NUMBER, _VALUES), max_size=3),
        _VALUES), "seed": _mostly(st.integers(0, 5), _VALUES),
        "weight_scale": _mostly(_NUMBER, _VALUES), "init": _VALUES}),
    "simulate": _table({"t_end": _mostly(_NUMBER, _VALUES),
                        "points": _mostly(st.integers(2, 500), _VALUES),
                        "rtol": _mostly(st.floats(1e-12, 1e-3), _VALUES),
                        "method": _mostly(st.sampled_from(["cvodes", "rk", "idas"]), _VALUES),
                        "variant": _mostly(st.sampled_from(["forward", "adjoint"]), _VALUES)}),
    "verify": _table({"rtol": _mostly(_NUMBER, _VALUES), "seed": _VALUES, "skip": _VALUES,
                      "law": _mostly(st.sampled_from(["derived", "feedback_alignment"]),
                                     _VALUES)}),
    "inputs": st.dictionaries(st.sampled_from(["1", "2", "9"]), _VALUES, max_size=2),
}, required=("name", "network"))
MECHANICAL_FILES = _table({
    "name": _NAME,
    "coordinates": _mostly(st.lists(st.sampled_from(["q1", "q2"]), min_size=1, max_size=2,
                                    unique=True),
                           st.one_of(st.lists(st.sampled_from(["x", "exp", "t", "m"]),
                                              min_size=1, max_size=3), _VALUES)),
    "parameters": st.dictionaries(st.sampled_from(["m", "g", "L"]), _mostly(_NUMBER, _VALUES),
                                  max_size=3),
    "action": _table({"masses": _mostly(st.sampled_from([1, "m", "1 + q1**2"]), _VALUES),
                      "lagrangian": EXPRESSIONS, "weight": EXPRESSIONS,
                      "mass_matrix": _VALUES}),
    "constraints": st.lists(_table({"name": _VALUES, "expr": EXPRESSIONS}), max_size=2),
    "nonholonomic": st.sampled_from(["vakonomic", "dalembert", "x"]),
}, required=("name", "coordinates", "action"))


def _shipped_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in shipped_problems().values()]


# --------------------------------------------------------------------------- the tests


def _settings(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None, derandomize=examples == QUICK,
                    suppress_health_check=list(HealthCheck), database=None)


def _expression_grammar(examples: int):
    @_settings(examples)
    @given(EXPRESSIONS)
    def run(text: str) -> None:
        check_expression(text)
    return run


def _expression_mutation(examples: int):
    seeds = _SEEDS + _corpus_expressions()

    @_settings(examples)
    @given(mutated(seeds))
    def run(text: str) -> None:
        check_expression(text)
    return run


def _file_grammar(examples: int):
    @_settings(examples)
    @given(st.one_of(NETWORK_FILES, MECHANICAL_FILES))
    def run(data: dict[str, Any]) -> None:
        check_file_data(data)
    return run


def _file_mutation(examples: int, tmp: Path):
    @_settings(examples)
    @given(mutated(_shipped_texts()))
    def run(text: str) -> None:
        check_file_text(text, tmp)
    return run


def test_expression_grammar_fuzz() -> None:
    _expression_grammar(QUICK)()


def test_expression_mutation_fuzz() -> None:
    _expression_mutation(QUICK)()


def test_file_grammar_fuzz() -> None:
    _file_grammar(QUICK)()


def test_file_mutation_fuzz(tmp_path: Path) -> None:
    _file_mutation(QUICK // 2, tmp_path)()


@pytest.mark.slow
def test_long_fuzz_run(tmp_path: Path) -> None:
    """10⁴ cases: no foreign exception, no case over :data:`CASE_SECONDS`, < 1 GB."""
    _expression_grammar(LONG)()
    _expression_mutation(LONG)()
    _file_grammar(LONG)()
    _file_mutation(LONG, tmp_path)()
    assert _max_rss_bytes() < MAX_RSS_BYTES


def _max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # kB on Linux


# --------------------------------------------------------------------------- the corpus


def _corpus_expressions() -> list[str]:
    path = CORPUS / "expressions.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _corpus_files() -> list[Path]:
    return sorted((CORPUS / "files").glob("*.toml"))


@pytest.mark.parametrize("text", _corpus_expressions())
def test_regression_corpus(text: str) -> None:
    """Every kept input (the issue's hostile cases, the fuzzer's findings) keeps the
    property."""
    check_expression(text)


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.stem)
def test_regression_corpus_files(path: Path, tmp_path: Path) -> None:
    check_file_text(path.read_text(encoding="utf-8"), tmp_path)


def test_the_corpus_keeps_the_issue_cases() -> None:
    texts = set(_corpus_expressions())
    assert {"sign(sin(exp(10**10)))", "Abs(sin(exp(10**10)))", "sigmoid(sinh(10**10))",
            "(-64)**sigmoid(1)", "sinh(asin(10))"} <= texts


def test_the_time_bound_catches_a_hang() -> None:
    """The per-case bound works (else a hang would stall the suite instead of failing)."""
    import time

    with pytest.raises(Hang), time_bound(0.05):
        time.sleep(5)


def test_a_swallowed_time_bound_still_counts_as_a_hang() -> None:
    import time

    """A Hang raised where Python ignores exceptions (here: caught by the case, as a
    garbage-collector callback would) still fails the case."""
    with pytest.raises(Hang, match="swallowed"), time_bound(0.05), contextlib.suppress(Hang):
        time.sleep(5)
