"""``[verify]`` settings of problem files: laws, formulas, skips; validated as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy as sp
from click.testing import CliRunner

import cognitive_action as ca
from cognitive_action.cli import main
from cognitive_action.declare import symbols as S
from cognitive_action.errors import ProblemFileError, UnsafeExpressionError
from cognitive_action.problem_files.loader import load_problem
from cognitive_action.verify.checks import verify

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "eq15_erratum.toml"

HEAD = """
name = "c3"
parameters = { m_x = 0.001, m_W = 1.0, theta = 10.0 }
[network]
edges = [[1, 2], [2, 3]]
inputs = [1]
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
[targets]
3 = "0.5"
"""


def _file(tmp_path, verify_table: str) -> Path:
    p = tmp_path / "c3.toml"
    p.write_text(HEAD + verify_table)
    return p


def test_printed_eq15_is_reported_with_opposite_sign_from_a_file():
    """The erratum example: the printed eq. (15) is -1 times the derived weight law."""
    res = CliRunner().invoke(main, ["verify", str(EXAMPLE), "--json"])
    assert res.exit_code == 0, res.output   # the failure is listed in expect_fail
    data = json.loads(res.output)
    assert data["outcome"]["formula.eq15_printed"] == "expected-fail"
    assert data["outcome"]["formula.eq15_corrected"] == "pass"
    printed = next(c for c in data["checks"] if c["name"] == "formula.eq15_printed")
    assert printed["details"]["opposite_sign"] == ["w2_1_dot", "w3_2_dot"]


def test_formula_symbols_are_matched_by_name_not_assumptions():
    """``gamma`` declared real by a user against the engine's positive ``gamma``: the
    derived law must still be recognized (it was silently 'different' before)."""
    x1, x2, w21, w32 = (S.symbol(n) for n in ("x1", "x2", "w2_1", "w3_2"))
    g = sp.Symbol("gamma", real=True)
    derived = {S.dot(w21): (1 - sp.tanh(w21 * x1) ** 2) * S.symbol("delta_G2") * x1 / g,
               S.dot(w32): (1 - sp.tanh(w32 * x2) ** 2) * S.symbol("delta_G3") * x2 / g}
    theta, = S.parameters("theta")
    p = ca.chain(3).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    report = verify(p, formulas={"mine": derived}, skip=["convergence", "backprop"])
    assert report["formula.mine"].status == "pass"


def test_law_from_file_sign_flipped_fails_with_180_degrees(tmp_path):
    path = _file(tmp_path, '[verify]\nlaw = "sign_flipped"\nskip = ["convergence"]\n')
    res = CliRunner().invoke(main, ["verify", str(path), "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    layers = next(c for c in data["checks"] if c["name"] == "backprop.numeric.layers")
    assert layers["status"] == "fail" and layers["value"] == pytest.approx(180.0, abs=1e-6)


def test_skip_from_file_lists_the_checks_as_skipped_by_request(tmp_path):
    path = _file(tmp_path, '[verify]\nskip = ["convergence", "backprop.symbolic"]\n')
    res = CliRunner().invoke(main, ["verify", str(path), "--json"])
    data = json.loads(res.output)
    checks = {c["name"]: c for c in data["checks"]}
    assert res.exit_code == 0 and checks["rank"]["status"] == "pass"
    asked = {n: c for n, c in checks.items()
             if n.startswith(("convergence", "backprop.symbolic"))}
    # not run, but listed: skipped by request, and counted
    assert set(asked) == {"convergence.mass_ratio", "backprop.symbolic"}
    assert all(c["status"] == "skip" and "by request" in c["message"]
               for c in asked.values())
    assert data["counts"]["skip"] == sum(c["status"] == "skip" for c in checks.values()) >= 2


@pytest.mark.parametrize("table, field", [
    ('law = "mypkg.laws:my_law"', "verify.law"),
    ("law = 3", "verify.law"),
    ("rtol = -1", "verify.rtol"),
    ('rtol = "1e-9"', "verify.rtol"),
    ("gamma = 0", "verify.gamma"),
    ("seed = 1.5", "verify.seed"),
    ('skip = "convergence"', "verify.skip"),
    ("expect_fail = [1]", "verify.expect_fail"),
    ("formulas = 3", "verify.formulas"),
    ("[verify.formulas.f]\nnot_a_name_here = \"x1\"", "verify.formulas.f.not_a_name_here"),
    ("[verify.formulas.f]\nw2_1_dot = 3.5j", None),
    ("tolerance = 1", "verify.tolerance"),
])
def test_bad_verify_settings_name_the_field(tmp_path, table, field):
    text = table if table.startswith("[") else "[verify]\n" + table
    path = _file(tmp_path, text + "\n")
    if field is None:   # not even TOML: the loader's parse error
        with pytest.raises(ProblemFileError):
            load_problem(path)
        return
    with pytest.raises(ProblemFileError) as info:
        load_problem(path)
    assert info.value.field == field and info.value.fix
    res = CliRunner().invoke(main, ["verify", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_formula_text_is_parsed_against_the_whitelist(tmp_path):
    sentinel = tmp_path / "pwned"
    path = _file(tmp_path, "[verify.formulas.f]\nw2_1_dot = "
                 f"\"__import__('os').system('touch {sentinel}')\"\n")
    with pytest.raises((UnsafeExpressionError, ProblemFileError)):
        load_problem(path)
    assert not sentinel.exists()
