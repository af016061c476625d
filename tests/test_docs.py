"""The documentation cannot rot: its problem files, equations and error messages are
checked against the shipped files and against fresh runs of the engine.

- ``docs/tutorial.md``: the problem file shown is ``examples/tutorial_law.toml``; it
  loads, derives to the backprop deltas of eq. (17) (checked against CasADi AD of the
  loss, an independent reference), and the mistakes shown give the errors shown.
- ``docs/problems/<name>.md``: the problem file shown is the shipped one; the committed
  LaTeX of the small problems equals a fresh derivation (a regression check of the
  engine's output against a reviewed page); every figure a page links exists.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import casadi
import numpy as np
import pytest
from click.testing import CliRunner

from cognitive_action.cli import main
from cognitive_action.errors import ProblemFileError
from cognitive_action.problem_files.loader import load_problem, shipped_problems

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
TUTORIAL_FILE = ROOT / "examples" / "tutorial_law.toml"


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_problem_pages", DOCS / "generate_problem_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_toml_is_the_shipped_file():
    blocks = _blocks(TUTORIAL.read_text(), "toml")
    assert len(blocks) == 1, "the tutorial shows its problem file once, whole"
    assert blocks[0] == TUTORIAL_FILE.read_text()


def test_tutorial_law_derives_the_backprop_deltas():
    """In the backprop limit (15)-(17) the derived multipliers and weight velocities of
    the tutorial's law equal -dV/dx and -(1/gamma) dV/dW computed by CasADi AD of an
    independently written forward pass (softplus net, pseudo-Huber loss)."""
    import sympy as sp

    from cognitive_action import euler_lagrange
    from cognitive_action.derive.limits import GAMMA, backprop, reduce

    spec = load_problem(TUTORIAL_FILE)
    net = spec.network
    assert spec.problem.name == "tutorial_law" and len(net.weights) == 6
    el = euler_lagrange(spec.problem)
    solution = reduce(el, backprop(rate=el.rate)).solve()
    rng = np.random.default_rng(7)
    w = {str(s): float(v) for s, v in zip(net.weights, rng.normal(size=6))}
    tt, gamma, omega = 0.7, 1.0, spec.values["omega"]
    x1, x2 = float(np.sin(omega * tt)), 1.0
    # the reference: forward pass with perturbations z on the neurons, and W symbolic
    z = casadi.SX.sym("z", 5)
    W = casadi.SX.sym("W", 6)
    names = ["w3_1", "w3_2", "w4_1", "w4_2", "w5_3", "w5_4"]
    softplus = lambda a: casadi.log(1 + casadi.exp(a))  # noqa: E731
    X1, X2 = x1 + z[0], x2 + z[1]
    X3 = softplus(W[0] * X1 + W[1] * X2) + z[2]
    X4 = softplus(W[2] * X1 + W[3] * X2) + z[3]
    X5 = softplus(W[4] * X3 + W[5] * X4) + z[4]
    V = casadi.sqrt(1 + (X5 - 1.5) ** 2) - 1
    f = casadi.Function("f", [z, W], [casadi.gradient(V, z), casadi.gradient(V, W),
                                      casadi.vertcat(X1, X2, X3, X4, X5)])
    dV_dx, dV_dW, xs = (np.asarray(v).ravel() for v in f(np.zeros(5), [w[n] for n in names]))
    values = {sp.Symbol(k, real=True): v for k, v in spec.values.items()}
    values |= {sp.Symbol(k, real=True): v for k, v in w.items()}
    values |= {sp.Symbol(f"x{j + 1}", real=True): xs[j] for j in range(5)}
    values |= {sp.Symbol("t", real=True): tt, GAMMA: gamma}
    by_name = {str(u): e for u, e in solution.items()}

    def number(name: str) -> float:
        e = by_name[name]
        return float(e.xreplace({s: values[s] for s in e.free_symbols if s in values}))

    deltas = [number(f"delta_G{j}") for j in (3, 4, 5)]
    np.testing.assert_allclose(deltas, -dV_dx[2:], rtol=1e-10, atol=1e-14)
    rates = [number(f"{n}_dot") for n in names]
    np.testing.assert_allclose(rates, -dV_dW / gamma, rtol=1e-10, atol=1e-14)


def test_tutorial_verify_report_matches_the_page():
    """`cognitive-action verify` on the tutorial file passes the checks the page lists."""
    page = TUTORIAL.read_text()
    shown = re.search(r"\$ cognitive-action verify tutorial_law.toml\n(.*?)\n\$ echo",
                      page, flags=re.S).group(1).splitlines()
    shown_status = {line.split()[0]: line.split()[1] for line in shown[2:]}
    res = CliRunner().invoke(main, ["verify", str(TUTORIAL_FILE)])
    assert res.exit_code == 0, res.output
    got = {line.split()[0]: line.split()[1] for line in res.output.splitlines()[2:]}
    assert got == shown_status
    assert shown[0] == res.output.splitlines()[0]


@pytest.mark.parametrize("old, new, field", [
    ("(x5 - y5)", "(x6 - y5)", "action.loss"),
    ('mass_W = "m_W"', 'mass_W = "mW"', "action.mass_W"),
    ('2 = "1"\n', '3 = "1"\n', "inputs.3"),
])
def test_tutorial_mistakes_give_the_errors_shown(tmp_path, monkeypatch, old, new, field):
    text = TUTORIAL_FILE.read_text()
    assert old in text
    (tmp_path / "tutorial_law.toml").write_text(text.replace(old, new, 1))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProblemFileError):
        load_problem("tutorial_law.toml")
    res = CliRunner().invoke(main, ["derive", "tutorial_law.toml"])
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"error: tutorial_law.toml:{field}:") and "Fix:" in line
    assert line in TUTORIAL.read_text(), "the tutorial shows this error verbatim"


PAGES = sorted(shipped_problems())


@pytest.mark.parametrize("name", PAGES)
def test_problem_page_shows_the_shipped_file_and_its_figure(name):
    page = (DOCS / "problems" / f"{name}.md").read_text()
    assert _blocks(page, "toml") == [shipped_problems()[name].read_text()]
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page):
        assert (DOCS / "problems" / link).resolve().is_file(), link


@pytest.mark.parametrize("name", ["chain3", "xor", "pendulum"])
def test_committed_latex_equals_a_fresh_derivation(name):
    """Drift in the derived equations of a small problem fails here: regenerate with
    ``python docs/generate_problem_pages.py NAME`` and review the diff."""
    gen = _generator()
    assert gen.committed_latex(name) == gen.equations_latex(name)


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    missing = [p for p in pages if p not in nav]
    assert not missing, f"add to mkdocs.yml nav: {missing}"


def test_every_cited_test_exists():
    """Pages cite tests as ``tests/test_x.py::test_y`` (or ``::test_y`` after one):
    each must be a test function of that file, so a renamed test cannot leave the
    reproduction table or the errata pointing at nothing."""
    defined = {p.name: set(re.findall(r"^def (test_\w+)", p.read_text(), flags=re.M))
               for p in (ROOT / "tests").glob("test_*.py")}
    everywhere = set().union(*defined.values())
    cited = 0
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        for path, name in re.findall(r"tests/(test_\w+\.py)::(test_\w+)", text):
            assert name in defined.get(path, set()), f"{page.name}: {path}::{name}"
            cited += 1
        for name in re.findall(r"(?<![\w.])::(test_\w+)", text):
            assert name in everywhere, f"{page.name}: ::{name}"
    assert cited >= 20
