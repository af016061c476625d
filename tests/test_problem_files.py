"""Problem files: shipped problems load and derive; malformed files are rejected."""

from __future__ import annotations

import pytest
import sympy as sp

from cognitive_action.declare.symbols import dot
from cognitive_action.derive import euler_lagrange
from cognitive_action.errors import ProblemFileError
from cognitive_action.problem_files.loader import load_problem, shipped_problems

SHIPPED = ["xor", "chain3", "layered10", "rate_network", "pendulum", "rolling_disc"]


def test_the_promised_problems_ship():
    assert set(SHIPPED) <= set(shipped_problems())


def test_pendulum_file_gives_the_reference_equations():
    """The file's pendulum derives design.md's ``eom`` (sympy.physics.mechanics)."""
    spec = load_problem("pendulum")
    el = euler_lagrange(spec.problem)
    q1, q2 = spec.problem.coordinates
    m, g, lam = (sp.Symbol(n, real=True) for n in ("m", "g", "lambda_rod"))
    expected = [m * dot(q1, 2) - g * m + 2 * lam * q1, m * dot(q2, 2) + 2 * lam * q2]
    assert [sp.expand(a - b) for a, b in zip(el.equations_of_motion(), expected)] == [0, 0]
    assert spec.values == {"m": 1.0, "g": 9.81, "L": 1.0}


def test_xor_file_matches_the_papers_constraints():
    spec = load_problem("xor")
    x = {i: sp.Symbol(f"x{i}", real=True) for i in range(1, 6)}
    w = {k: sp.Symbol(f"w{k[0]}_{k[1]}", real=True)
         for k in [(3, 1), (3, 2), (4, 1), (4, 2), (5, 3), (5, 4)]}
    expected = {
        "G1": x[1] - 1, "G2": x[2] - 0,
        "G3": x[3] - sp.tanh(w[3, 1] * x[1] + w[3, 2] * x[2]),
        "G4": x[4] - sp.tanh(w[4, 1] * x[1] + w[4, 2] * x[2]),
        "G5": x[5] - sp.tanh(w[5, 3] * x[3] + w[5, 4] * x[4]),
    }
    got = {c.name: c.expr for c in spec.problem.constraints}
    assert {k: sp.simplify(got[k] - v) for k, v in expected.items()} == dict.fromkeys(expected, 0)


def test_rolling_disc_file_is_nonholonomic_dalembert():
    spec = load_problem("rolling_disc")
    assert spec.problem.nonholonomic == "dalembert"
    assert [c.kind for c in spec.problem.constraints] == ["nonholonomic"] * 2


BAD_FILES = {
    "toml_syntax": ('name = "x\n', "not valid TOML"),
    "unknown_top_key": ('name = "x"\nbogus = 1\n', "unknown top-level key"),
    "unknown_network_key": ("[network]\nlayers = [1, 1]\nwidth = 3\n", "unknown key"),
    "edges_and_layers": ("[network]\nlayers = [1, 1]\nedges = [[1, 2]]\n", "exactly one"),
    "bad_layers": ('[network]\nlayers = [1, "a"]\n', "positive integers"),
    "edge_into_input": ("[network]\nedges = [[1, 2], [2, 1]]\ninputs = [1]\n", "enters the input"),
    "unknown_activation": ('[network]\nlayers = [1, 1]\nactivation = "relu"\n',
                           "unknown activation"),
    "import_in_weight": ("[network]\nlayers = [1, 1]\n[action]\n"
                         "weight = \"__import__('os').system('touch /tmp/pwned_ca')\"\n",
                         "column"),
    "attribute_in_loss": ('[network]\nlayers = [1, 1]\n[action]\nloss = "x2.__class__"\n',
                          "loss"),
    "unknown_name": ('[network]\nlayers = [1, 1]\n[action]\nmass_x = "mx"\n', "mx"),
    "huge_power": ('[network]\nlayers = [1, 1]\n[action]\nweight = "9**9**9"\n', "weight"),
    "param_not_number": ('parameters = { m = [1, 2] }\n[network]\nlayers = [1, 1]\n',
                         "parameters.m"),
    "target_not_output": ('[network]\nlayers = [1, 1]\n[targets]\n1 = "0"\n',
                          "not an output neuron"),
    "missing_coordinates": ('kind = "mechanical"\n[action]\nmasses = 1\n', "coordinates"),
    "constraint_without_expr": ('coordinates = ["q"]\n[action]\nmasses = 1\n'
                                '[[constraints]]\nname = "c"\n', "expr"),
    "constraint_no_coordinate": ('coordinates = ["q"]\nparameters = { a = 1.0 }\n'
                                 '[action]\nmasses = 1\n[[constraints]]\nexpr = "a - 1"\n',
                                 "involves no coordinate"),
    "velocity_in_holonomic_field": ('coordinates = ["q"]\n[action]\nmasses = "q_dot"\n',
                                    "q_dot"),
    "bad_rule": ('nonholonomic = "magic"\ncoordinates = ["q"]\n[action]\nmasses = 1\n',
                 "unknown rule"),
    "lambda": ('coordinates = ["q"]\n[action]\nlagrangian = "(lambda: 1)()"\n', "lagrangian"),
    "reserved_coordinate": ('coordinates = ["exp"]\n[action]\nmasses = 1\n', "exp"),
    "dunder_name": ('coordinates = ["__class__"]\n[action]\nmasses = 1\n', "__class__"),
    "subscript": ('coordinates = ["q"]\n[action]\nlagrangian = "q[0]"\n', "lagrangian"),
    "comprehension": ('coordinates = ["q"]\n[action]\nlagrangian = "[q for q in (1,)]"\n',
                      "lagrangian"),
    "fstring": ('coordinates = ["q"]\n[action]\nlagrangian = "f\'{q}\'"\n', "lagrangian"),
    "keyword_argument": ('coordinates = ["q"]\n[action]\nlagrangian = "exp(x=q)"\n',
                         "lagrangian"),
    "deep_nesting": ('coordinates = ["q"]\n[action]\nlagrangian = "' + "(" * 200 + "q"
                     + ")" * 200 + '"\n', "lagrangian"),
    "huge_integer": ('coordinates = ["q"]\n[action]\nlagrangian = "' + "9" * 500 + '*q"\n',
                     "lagrangian"),
    "eval_call": ('coordinates = ["q"]\n[action]\nlagrangian = "eval(\'1\')"\n',
                  "lagrangian"),
    "boolean_value": ('coordinates = ["q"]\n[action]\nmasses = true\n', "action.masses"),
    "list_as_expression": ('coordinates = ["q"]\n[action]\nlagrangian = [1, 2]\n',
                           "action.lagrangian"),
    "coordinates_not_list": ('coordinates = "q"\n[action]\nmasses = 1\n', "coordinates"),
    "constraints_not_array": ('coordinates = ["q"]\nconstraints = "q"\n[action]\nmasses = 1\n',
                              "constraints"),
    "unknown_constraint_key": ('coordinates = ["q"]\n[action]\nmasses = 1\n'
                               '[[constraints]]\nexpr = "q"\nkind = "x"\n', "unknown key"),
    "edge_not_pair": ("[network]\nedges = [[1, 2, 3]]\n", "source, target"),
    "bad_label": ('[network]\nedges = [["a b", "c"]]\n', "identifier"),
    "velocity_in_holonomic_constraint_of_unknown": (
        'coordinates = ["q"]\n[action]\nmasses = 1\n[[constraints]]\nexpr = "p_dot"\n',
        "p_dot"),
    "parameter_is_coordinate": ('coordinates = ["m"]\nparameters = { m = 1.0 }\n'
                                '[action]\nmasses = 1\n', "one role"),
    "unknown_kind": ('kind = "quantum"\n', "unknown kind"),
}


@pytest.mark.parametrize("text, needle", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_malformed_file_is_rejected_with_location_and_fix(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProblemFileError) as info:
        load_problem(path)
    message = str(info.value)
    assert needle in message
    assert "bad.toml" in message
    assert "Fix:" in message


def test_nothing_is_executed(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.toml"
    path.write_text('[network]\nlayers = [1, 1]\n[action]\n'
                    f"weight = \"__import__('pathlib').Path('{sentinel}').touch()\"\n",
                    encoding="utf-8")
    with pytest.raises(ProblemFileError):
        load_problem(path)
    assert not sentinel.exists()


def test_a_folder_named_like_a_shipped_problem_does_not_shadow_it(tmp_path, monkeypatch):
    """``cognitive-action derive chain3`` run where a folder ``chain3/`` exists (e.g. one
    made for its results) loaded the folder as a file: 'file 'chain3' does not exist'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chain3").mkdir()
    assert load_problem("chain3").name == "chain3"
    with pytest.raises(ProblemFileError, match="no problem named 'nothing'"):
        (tmp_path / "nothing").mkdir()
        load_problem("nothing")
