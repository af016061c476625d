"""Hardening against untrusted problem files (issue 17, items 2 and 3).

* Bounded evaluation: the short hostile expressions of the issue, which hung SymPy or
  ate gigabytes, end with a typed error; constants are checked numerically against an
  independent mpmath evaluation at high precision.
* The size budget: networks over :class:`Limits` are refused before they are built,
  and the count the budget uses equals the count of the network actually built.
* Bad values: every one is exit 2 with ``file:field`` and a fix, never exit 3.
"""

from __future__ import annotations

import random
from pathlib import Path

import mpmath
import pytest
import sympy as sp
from click.testing import CliRunner

from cognitive_action.cli import main
from cognitive_action.declare.network import layered
from cognitive_action.errors import CognitiveActionError, ProblemFileError
from cognitive_action.problem_files import parse_expression, parse_number
from cognitive_action.problem_files.loader import Limits, load_problem
from cognitive_action.verify.budget import run_with_budget

#: The expressions of issue 17 that hung or grew without bound, with what the message
#: must say (the fuzz corpus, tests/corpus/, keeps them too).
ISSUE_EXPRESSIONS = [
    ("sign(sin(exp(10**10)))", "beyond the range of a double"),
    ("Abs(sin(exp(10**10)))", "beyond the range of a double"),
    ("sigmoid(sinh(10**10))", "beyond the range of a double"),
    ("(-64)**sigmoid(1)", "is complex"),
    ("sinh(asin(10))", "is complex"),
    ("sign(sin(1)**2 + cos(1)**2 - 1)", "cannot be decided"),
    ("1/(sin(1)**2 + cos(1)**2 - 1)", "cannot be decided"),
    ("exp(700)*exp(700)", "beyond the range of a double"),
    ("log(-2)", "complex"),
    ("acos(2)*x", "complex"),
]


def _parse_outcome(text: str) -> str:
    try:
        parse_number(text, "problems/p.toml: parameters.k")
    except ProblemFileError as exc:
        return str(exc)
    return "accepted"


@pytest.mark.parametrize(("text", "reason"), ISSUE_EXPRESSIONS,
                         ids=[t for t, _ in ISSUE_EXPRESSIONS])
def test_hostile_constants_end_with_a_typed_error(text: str, reason: str) -> None:
    # run in a forked child with a hard limit: a regression hangs there, not the suite
    out = run_with_budget(lambda: _parse_outcome(text), 30.0)
    assert not out.timed_out, f"{text!r} did not finish in 30 s"
    message = out.value
    assert message.startswith("problems/p.toml:parameters.k: ")
    assert reason in message and "Fix: " in message


def test_hostile_constants_as_a_parameter_exit_two(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('parameters = { k = "sign(sin(exp(10**10)))" }\n'
                    "[network]\nlayers = [1, 1]\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["derive", str(path)])
    assert res.exit_code == 2
    assert "p.toml:parameters.k:" in res.output and "Fix:" in res.output


def _reference(text: str) -> mpmath.mpf:
    """The value of a constant expression at 50 digits, by mpmath alone (no SymPy)."""
    env = {name: getattr(mpmath, name) for name in ("exp", "log", "sin", "cos", "sqrt",
                                                    "tanh", "atan", "pi", "e")}
    env.update(Abs=abs, Max=max, Min=min, sign=mpmath.sign, E=mpmath.e, mpf=mpmath.mpf)
    for ratio in ("22/7", "355/113", "1/2"):  # exact ratios, not Python floats
        numerator, denominator = ratio.split("/")
        text = text.replace(ratio, f"(mpf({numerator})/{denominator})")
    with mpmath.workdps(50):
        return +eval(text, {"__builtins__": {}}, env)  # our own test strings, not input


@pytest.mark.parametrize("seed", range(5))
def test_folded_constants_have_the_right_values(seed: int) -> None:
    """sign, Abs, Max and Min of constants are folded numerically: compare with mpmath."""
    rng = random.Random(seed)
    atoms = ["pi", "E", "sqrt(2)", "log(3)", "exp(-1)", "sin(1)", "atan(2)", "22/7",
             "355/113", "tanh(1/2)"]
    for _ in range(20):
        a, b, c = rng.sample(atoms, 3)
        text = rng.choice([f"Max({a}, {b}, {c})", f"Min({a} - {b}, {c})",
                           f"Abs({a} - {b})*sign({b} - {c})", f"sign({a} - {c})",
                           f"Max({a}*{b}, {c}/{a}) - Min({b}, {c})"])
        got = parse_number(text)
        with mpmath.workdps(50):
            assert abs(mpmath.mpf(sp.N(got, 40)) - _reference(text)) < mpmath.mpf(10) ** -30


def test_close_constants_are_told_apart() -> None:
    # pi - 355/113 is -2.7e-7: a sign decided numerically, not by SymPy's search
    assert parse_number("sign(pi - 355/113)") == -1
    assert parse_number("Max(pi, 355/113)") == sp.Rational(355, 113)
    assert parse_number("Abs(pi - 355/113)") == sp.Rational(355, 113) - sp.pi


def test_symbolic_expressions_are_unchanged_by_the_constant_checks() -> None:
    x = sp.Symbol("x")
    assert parse_expression("Max(x, pi, 3)", {"x": x}) == sp.Max(x, sp.pi)
    assert parse_expression("sign(x)*Abs(x - 1)", {"x": x}) == sp.sign(x) * sp.Abs(x - 1)
    assert parse_expression("exp(-pi**2/4)*x", {"x": x}) == sp.exp(-sp.pi**2 / 4) * x


# --------------------------------------------------------------------------- size budget


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_the_budget_counts_what_the_network_builds(seed: int, bias: bool) -> None:
    """The loader counts neurons and weights before building: the same numbers as the
    network it then builds (random layer sizes)."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 5) for _ in range(rng.randint(2, 4))]
    net = layered(sizes, bias=bias)
    neurons, weights = len(net.neurons), len(net.weights)
    path_text = f"[network]\nlayers = {sizes}\nbias = {str(bias).lower()}\n"
    just = Limits(max_neurons=neurons, max_weights=weights)
    spec = _load_text(path_text, just)
    assert len(spec.network.weights) == weights
    for tight in (Limits(max_neurons=neurons - 1) if neurons > 1 else None,
                  Limits(max_weights=weights - 1) if weights > 1 else None):
        if tight is not None:
            with pytest.raises(ProblemFileError, match="over the limit"):
                _load_text(path_text, tight)


def test_the_budget_counts_edges(tmp_path: Path) -> None:
    text = "[network]\nedges = [[1, 3], [2, 3], [3, 4], [1, 4]]\ninputs = [1, 2]\n"
    spec = _load_text(text, Limits(max_neurons=4, max_weights=4))
    assert (len(spec.network.neurons), len(spec.network.weights)) == (4, 4)
    with pytest.raises(ProblemFileError, match=r"4 weights \(limit 3\), over the limit"):
        _load_text(text, Limits(max_weights=3))


def _load_text(text: str, limits: Limits | None = None):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.toml"
        path.write_text(text, encoding="utf-8")
        return load_problem(path, limits=limits)


@pytest.mark.parametrize("layers", ["[500, 500]", "[10000, 10000]", "[2, 10000, 10000, 1]"])
def test_huge_networks_are_refused_before_they_are_built(tmp_path: Path, layers: str) -> None:
    path = tmp_path / "big.toml"
    path.write_text(f"[network]\nlayers = {layers}\n", encoding="utf-8")  # 39 bytes
    # hard-limited: building 10^8 weights would take minutes and gigabytes
    out = run_with_budget(lambda: CliRunner().invoke(main, ["derive", str(path)]).output,
                          30.0)
    assert not out.timed_out
    assert "big.toml:network.layers:" in out.value
    assert "(limit 50,000), over the limit" in out.value and "--max-weights" in out.value


def test_the_limit_can_be_raised_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text("[network]\nlayers = [3, 3, 1]\n", encoding="utf-8")  # 12 weights
    res = CliRunner().invoke(main, ["--max-weights", "11", "derive", str(path)])
    assert res.exit_code == 2 and "--max-weights 12" in res.output
    res = CliRunner().invoke(main, ["--max-weights", "12", "derive", str(path)])
    assert res.exit_code == 0, res.output


def test_default_limits_admit_the_shipped_problems_and_a_dense_200_net() -> None:
    Limits().check_network(200, 200 * 200)  # benchmarks/bench_derive.py's dense net
    from cognitive_action.problem_files.loader import shipped_problems

    for path in shipped_problems().values():
        load_problem(path)  # default Limits


def test_mechanical_problems_are_bounded_too(tmp_path: Path) -> None:
    names = [f"q{i}" for i in range(1, 8)]
    text = (f"coordinates = {names}\n[action]\nmasses = 1\n".replace("'", '"')
            + "".join(f'[[constraints]]\nexpr = "{q} - 1"\n' for q in names[:3]))
    assert len(_load_text(text, Limits(max_coordinates=7)).problem.coordinates) == 7
    with pytest.raises(ProblemFileError, match="7 coordinates, over the limit of 6"):
        _load_text(text, Limits(max_coordinates=6))
    with pytest.raises(ProblemFileError, match="3 constraints, over the limit of 2"):
        _load_text(text.replace(f"{names}".replace("'", '"'), '["q1", "q2"]'),
                   Limits(max_coordinates=2))


def test_limits_themselves_are_validated() -> None:
    with pytest.raises(ProblemFileError, match="max_weights"):
        Limits(max_weights=0)


# --------------------------------------------------------------------------- bad values

BASE = """name = "b"
parameters = { m_x = 0.01, m_W = 1.0, theta = 1.0 }
[network]
layers = [2, 1]
[inputs]
1 = "1"
2 = "0"
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
"""

#: (id, text appended to BASE or a whole file, field named in the message)
BAD_VALUES = [
    ("t_end-string", '[simulate]\nt_end = "abc"\n', "simulate.t_end"),
    ("t_end-negative", "[simulate]\nt_end = -1.0\n", "simulate.t_end"),
    ("t_end-inf", "[simulate]\nt_end = inf\n", "simulate.t_end"),
    ("rtol-string", '[simulate]\nrtol = "x"\n', "simulate.rtol"),
    ("atol-inf", "[simulate]\natol = inf\n", "simulate.atol"),
    ("points-negative", "[simulate]\npoints = -3\n", "simulate.points"),
    ("points-float", "[simulate]\npoints = 1e9\n", "simulate.points"),
    ("points-huge", "[simulate]\npoints = 1000000000\n", "simulate.points"),
    ("method-unknown", '[simulate]\nmethod = "magic"\n', "simulate.method"),
    ("method-number", "[simulate]\nmethod = 3\n", "simulate.method"),
    ("variant-unknown", "[simulate]\nvariant = 3\n", "simulate.variant"),
    ("values-not-table", "[initial]\nvalues = 5\n", "initial.values"),
    ("values-unknown-name", "[initial]\nvalues = { zz = 1.0 }\n", "initial.values.zz"),
    ("values-nan", "[initial]\nvalues = { x3 = nan }\n", "initial.values.x3"),
    ("values-string", '[initial]\nvalues = { x3 = "abc" }\n', "initial.values.x3"),
    ("values-complex", '[initial]\nvalues = { x3 = "sqrt(-1)" }\n', "initial.values.x3"),
    ("values-list", "[initial]\nvalues = { x3 = [1] }\n", "initial.values.x3"),
    ("seed-negative", "[initial]\nseed = -1\n", "initial.seed"),
    ("weight_scale-nan", "[initial]\nweight_scale = nan\n", "initial.weight_scale"),
    ("parameter-complex", None, "parameters.k"),
    ("parameter-huge", None, "parameters.k"),
    ("long-name", None, "name"),
]
WHOLE_FILES = {
    "parameter-complex": 'parameters = { k = "sinh(asin(10))" }\n[network]\nlayers = [1, 1]\n',
    "parameter-huge": 'parameters = { k = "exp(1000)" }\n[network]\nlayers = [1, 1]\n',
    "long-name": f'name = "{"a" * 300}"\n[network]\nlayers = [1, 1]\n',
}


@pytest.mark.parametrize(("key", "extra", "field"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
@pytest.mark.parametrize("command", ["verify", "simulate"])
def test_bad_values_exit_two_with_file_field_and_fix(tmp_path: Path, key: str,
                                                      extra: str | None, field: str,
                                                      command: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(WHOLE_FILES[key] if extra is None else BASE + extra, encoding="utf-8")
    args = [command, str(path)] + (["--out", str(tmp_path / "out")]
                                   if command == "simulate" else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert f"bad.toml:{field}:" in res.output and "Fix:" in res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    out = tmp_path / "out"  # proved writable before the file is read: nothing in it
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("args", [["--points", "1000000000"], ["--points", "1"],
                                  ["--t-end", "-1"], ["--t-end", "nan"], ["--points", "1e9"]])
def test_bad_command_line_values_exit_two(tmp_path: Path, args: list[str]) -> None:
    res = CliRunner().invoke(main, ["simulate", "xor", "--out", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output


def test_unreadable_paths_exit_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = CliRunner().invoke(main, ["derive", str(tmp_path)])  # a folder
    assert res.exit_code == 2 and "not a regular file" in res.output
    path = tmp_path / "p.toml"
    path.write_text(BASE, encoding="utf-8")
    real_open = open

    def refuse(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)  # root reads any file: simulate EACCES
    with pytest.raises(ProblemFileError, match="cannot read the file"):
        load_problem(path)


def test_bad_values_in_the_python_api_are_typed(tmp_path: Path) -> None:
    from cognitive_action import workflow

    wf = workflow.load("pendulum")
    for bad in ({"points": 10**9}, {"t_end": float("nan")}, {"points": 1}):
        with pytest.raises(CognitiveActionError):
            wf.simulate(**bad)


# --------------------------------------------------------------------------- fast route


@pytest.mark.parametrize("seed", range(4))
def test_the_derive_preview_equals_the_generic_derivation(seed: int) -> None:
    """``cognitive-action derive`` prints rows from the network templates (the fast
    route, NetworkSystem.preview): they equal the generic euler_lagrange and
    multiplier_equation of the same problem (random layered nets, bias or not)."""
    from cognitive_action.declare.symbols import t
    from cognitive_action.derive import euler_lagrange, multiplier_equation
    from cognitive_action.derive.network import derive_network

    rng = random.Random(seed)
    theta = sp.Symbol("theta", real=True)
    net = layered([rng.randint(1, 3) for _ in range(rng.randint(2, 4))], bias=seed % 2 == 1)
    problem = net.problem(weight=sp.exp(theta * t), parameters=[theta])
    rows = rng.randint(1, len(problem.coordinates))
    residuals, b = derive_network(problem).preview(rows)
    el = euler_lagrange(problem)
    generic = dict(zip(el.coordinates, el.residuals))
    assert [q for q, _ in residuals] == list(el.coordinates[:rows])
    assert all(sp.expand(r - generic[q]) == 0 for q, r in residuals)
    expected = multiplier_equation(el).b_entries()[:rows]
    assert len(b) == len(expected)
    assert all(sp.expand(x - y) == 0 for x, y in zip(b, expected))


@pytest.mark.parametrize("n", [2, 3])
def test_the_derive_preview_of_a_dense_recurrent_net_is_lazy_and_exact(n: int,
                                                                       monkeypatch) -> None:
    """A dense net with self-loops (the shape of the issue's 200-neuron file): the lazy
    preview builds one row of eq. (10) per row read, and every row, weights included,
    equals the generic derivation."""
    from cognitive_action.declare import Network
    from cognitive_action.declare.symbols import t
    from cognitive_action.derive import euler_lagrange, multiplier_equation
    from cognitive_action.derive.network import NetworkSystem, derive_network

    theta = sp.Symbol("theta", real=True)
    edges = [(i, j) for i in range(1, n + 1) for j in range(1, n + 1)]
    problem = Network(edges, [], "tanh", outputs=[n]).problem(
        weight=sp.exp(theta * t), parameters=[theta])
    ns = derive_network(problem)
    built: list[object] = []
    real_row = NetworkSystem.jacobian_row
    monkeypatch.setattr(NetworkSystem, "jacobian_row",
                        lambda self, j: built.append(j) or real_row(self, j))
    rows = len(problem.coordinates)
    residuals, b = ns.iter_preview(rows)
    first = next(b)
    assert len(built) == 1  # one row built for one row read
    b_all = [first, *b]
    el = euler_lagrange(problem)
    generic = dict(zip(el.coordinates, el.residuals))
    res = list(residuals)
    assert [q for q, _ in res] == list(el.coordinates)
    assert all(sp.expand(r - generic[q]) == 0 for q, r in res)
    expected = multiplier_equation(el).b_entries()
    assert len(b_all) == len(expected) == n
    assert all(sp.expand(x - y) == 0 for x, y in zip(b_all, expected))


# --------------------------------------------------------------------------- generated C


def _compiled_layered(sizes: list[int]):
    from cognitive_action.compile import compile_system
    from cognitive_action.declare.symbols import t

    theta = sp.Symbol("theta", real=True)
    return compile_system(layered(sizes).problem(weight=sp.exp(theta * t),
                                                 parameters=[theta]))


def test_exact_jacobians_over_the_budget_are_refused_before_generating(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's [20, 40, 40, 20] net generated 876 MB of C with derivatives="exact":
    the default budget refuses it from its number of states, before any C exists."""
    from cognitive_action.compile import codegen
    from cognitive_action.errors import CompileError

    def never(*args, **kwargs):
        raise AssertionError("C was generated")

    monkeypatch.setattr(codegen, "generate_source", never)
    system = _compiled_layered([20, 40, 40, 20])
    with pytest.raises(CompileError, match=r"at least 11\d MB of C \(limit 67 MB\)"):
        codegen.codegen_system(system, derivatives="exact")
    small = _compiled_layered([2, 3, 2])
    with pytest.raises(CompileError, match="max_generated_bytes"):
        codegen.codegen_system(small, derivatives="exact", max_generated_bytes=1_000)


def test_the_size_estimate_is_a_lower_bound() -> None:
    """EXACT_BYTES_PER_STATE never overestimates: the C generated for a small net is at
    least the estimate (so a refusal is never for a source that would have fit)."""
    from cognitive_action.compile.codegen import EXACT_BYTES_PER_STATE, generate_source

    system = _compiled_layered([2, 3, 2])
    fns = [system.rhs, system.unknowns, system.dae["function"]]
    source = generate_source(fns, jacobians=("rhs", "dae"))
    assert len(source) >= EXACT_BYTES_PER_STATE * system.n_states


def test_a_long_bad_name_is_not_echoed_whole(tmp_path: Path) -> None:
    """A 100,000-character name is refused with a message of one short line."""
    from cognitive_action.errors import ProblemFileError
    from cognitive_action.problem_files.loader import load_problem

    path = tmp_path / "long.toml"
    path.write_text(f'name = "{"a" * 100_000}"\n[network]\nlayers = [1, 1]\n',
                    encoding="utf-8")
    with pytest.raises(ProblemFileError, match="100000 characters") as info:
        load_problem(path)
    assert len(str(info.value)) < 400 and info.value.field == "name"
