"""Complete exports: the whole derived system to a file, reports as Markdown/HTML, and
the notebook representations.

The LaTeX of a 10-neuron net (layers [3, 4, 3]: 10 neurons, 3·4 + 4·3 = 24 weights,
so 34 Euler-Lagrange rows and 10 constraint rows, counted by hand) is written whole by
``derive --latex --out``; the residual
rows are matched to their coordinates by the one acceleration each contains (the mass
matrix of a network is diagonal); every row has balanced braces and one ``&=``, and
every fourth is parsed by matplotlib's mathtext (slow: about 0.1 s a row).
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cognitive_action import workflow
from cognitive_action.cli import main
from cognitive_action.derive.latex import symbol_names
from cognitive_action.verify.report import Check, Report

NET10 = """
name = "net10"
parameters = { m_x = 0.001, m_W = 1.0, theta = 10.0 }
[network]
layers = [3, 4, 3]
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
"""


def _rows(tex: str) -> list[str]:
    assert tex.startswith("\\begin{aligned}\n") and tex.rstrip().endswith("\\end{aligned}")
    body = tex.split("\\begin{aligned}\n", 1)[1].rsplit("\n\\end{aligned}", 1)[0]
    return body.split(" \\\\\n")


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.fixture(scope="module")
def net10(tmp_path_factory):
    path = tmp_path_factory.mktemp("net10") / "net10.toml"
    path.write_text(NET10)
    return path


def test_latex_export_of_a_10_neuron_net_is_whole_and_parses(net10, tmp_path):
    out = tmp_path / "net10.tex"
    res = CliRunner().invoke(main, ["derive", str(net10), "--latex", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "44 equations, complete" in res.output
    tex = out.read_text(encoding="utf-8")
    rows = _rows(tex)
    assert len(rows) == 34 + 10  # one row per equation, nothing cut
    assert "more}" not in tex and _balanced(tex)
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("path")
    for r in rows:
        assert r.count("&=") == 1 and _balanced(r)
    for r in rows[::4] + [rows[-1]]:  # mathtext is slow (~0.1 s a row): every 4th row
        parser.parse("$" + r.replace("&=", "=") + "$")  # raises ValueError if malformed
    assert matplotlib is not None
    # row i is the equation of coordinate i: its only acceleration is that coordinate's
    spec = workflow.as_spec(net10)
    el = workflow.derive_spec(spec)
    for q, r in zip(el.coordinates, rows):
        accel = re.findall(r"\\ddot\{((?:[^{}]|\{[^{}]*\})*)\}", r)
        from cognitive_action.declare.symbols import dot
        qdd = dot(q, 2)
        expected = symbol_names(qdd)[qdd]
        assert ["\\ddot{" + a + "}" for a in accel] == [expected]
    # the constraint rows: G^j = x_j - tanh(a_j) (eq. 4) for the 7 computing neurons and
    # the input clamps for 3
    assert sum("\\tanh" in r for r in rows[34:]) == 7


def test_terminal_output_is_cut_and_says_so(net10):
    res = CliRunner().invoke(main, ["derive", str(net10), "--latex", "--max-rows", "5"])
    assert res.exit_code == 0
    assert "\\text{… 39 more}" in res.output
    assert "the terminal shows 5 of 44 rows; --out FILE writes the whole system" in \
        res.output


def test_text_and_json_exports_are_whole(net10, tmp_path):
    res = CliRunner().invoke(main, ["derive", str(net10), "--out", str(tmp_path / "a.txt")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "a.txt").read_text(encoding="utf-8")
    assert sum(line.startswith("  [") for line in text.splitlines()) == 34
    assert "more" not in text
    res = CliRunner().invoke(main, ["derive", str(net10), "--json", "--out",
                                    str(tmp_path / "a.json")])
    data = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert len(data["residuals"]) == 34 and len(data["constraints"]) == 10
    # the terminal text form is cut at --max-rows and says how many are left
    res = CliRunner().invoke(main, ["derive", str(net10), "--max-rows", "4"])
    assert "… 30 more (--max-rows, --out)" in res.output


def test_report_markdown_and_html_escape_and_list_every_check():
    r = Report("demo", [Check("rank", "pass", 3, 3, "a | b"),
                        Check("backprop.numeric", "fail", 2e-3, 1e-9, "x < y & z"),
                        Check("stability.multipliers", "skip", None, None, "n/a")])
    md = r.to_markdown()
    lines = md.splitlines()
    assert lines[0] == "**verify demo**: 1 passed, 1 failed, 1 skipped"
    table = [ln for ln in lines if ln.startswith("| `")]
    assert len(table) == 3 and "a \\| b" in table[0] and "| FAIL |" in table[1]
    h = r._repr_html_()
    assert h.count("<tr>") == 4  # header + 3 checks
    assert "x &lt; y &amp; z" in h and "<script" not in h
    assert r._repr_markdown_() == md
    v = workflow.Verification(r, {"rank": "pass", "backprop.numeric": "expected-fail",
                                  "stability.multipliers": "skip"})
    assert v.passed
    assert "| `backprop.numeric` | expected-fail |" in v.to_markdown()
    assert "expected-fail" in v._repr_html_() and "-&gt; passed" in v._repr_html_()


def test_verify_markdown_on_the_command_line():
    res = CliRunner().invoke(main, ["verify", "chain3", "--markdown"])
    assert res.exit_code == 0, res.output
    rows = [ln for ln in res.output.splitlines() if ln.startswith("| `")]
    report = workflow.verify_spec(workflow.as_spec("chain3")).report
    assert [r.split("`")[1] for r in rows] == [c.name for c in report.checks]


def test_derived_systems_render_in_notebooks():
    spec = workflow.as_spec("pendulum")
    el = workflow.derive_spec(spec)
    tex = el._repr_latex_()
    assert tex.startswith("$") and tex.endswith("$") and "\\ddot{q_{1}}" in tex
