"""The command line: exit codes, JSON shapes, errors without tracebacks."""

from __future__ import annotations

import json

import sympy as sp
from click.testing import CliRunner

from cognitive_action.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_problems_lists_the_shipped_problems():
    res = run("problems")
    assert res.exit_code == 0
    names = {line.split()[0] for line in res.output.splitlines()}
    assert {"xor", "chain3", "layered10", "rate_network", "pendulum", "rolling_disc"} <= names


def test_derive_json_is_sympy_parsable_and_matches_the_chain():
    res = run("derive", "chain3", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["coordinates"] == ["x1", "x2", "x3", "w2_1", "w3_2"]
    assert data["rate"] == "theta"
    # the residual of the output neuron, eq. (8) divided by exp(θt): the loss gradient
    # -(x3 - 0.5), the damping -θ m_x ẋ3, the inertia and the multiplier of its constraint
    r = sp.sympify(data["residuals"]["x3"])  # test-side parsing of our own output
    x3, x3d, x3dd, d3, mx, th = sp.symbols("x3 x3_dot x3_ddot delta_G3 m_x theta")
    assert sp.expand(r - (-d3 - mx * th * x3d - mx * x3dd - x3 + sp.Rational(1, 2))) == 0
    assert set(data["constraints"]) == {"G1", "G2", "G3"}


def test_derive_latex():
    res = run("derive", "pendulum", "--latex")
    assert res.exit_code == 0
    assert r"\ddot{q_{1}}" in res.output and r"\lambda_{rod}" in res.output


def test_verify_passes_on_xor_with_exit_zero():
    res = run("verify", "xor", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["passed"] is True
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["rank"]["value"] == 5 and checks["rank"]["tolerance"] == 5
    # the multipliers against CasADi's AD of an independent forward pass (eq. 17)
    assert checks["backprop.numeric.multipliers"]["value"] <= 1e-9
    # every check that did not run is listed as skipped, with its reason
    skipped = {n for n, o in data["outcome"].items() if o != "pass"}
    assert skipped == {"stability.multipliers", "simulated"}
    assert all(checks[n]["status"] == "skip" and checks[n]["message"] for n in skipped)
    assert data["counts"]["skip"] == 2


def test_verify_expected_failure_is_documented_not_hidden():
    """rate_network lists the anti-stable multipliers of eq. (20) in expect_fail."""
    res = run("verify", "rate_network", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["outcome"]["stability.multipliers"] == "expected-fail"
    check = next(c for c in data["checks"] if c["name"] == "stability.multipliers")
    assert check["status"] == "fail" and check["value"] > 0


def test_verify_fails_on_a_rank_deficient_problem_with_exit_one(tmp_path):
    path = tmp_path / "dependent.toml"
    path.write_text('coordinates = ["q1", "q2"]\n[action]\nmasses = 1\n'
                    '[[constraints]]\nname = "A"\nexpr = "q1 + q2"\n'
                    '[[constraints]]\nname = "B"\nexpr = "2*q1 + 2*q2"\n', encoding="utf-8")
    res = run("verify", str(path), "--json")
    assert res.exit_code == 1
    data = json.loads(res.output)
    rank = data["checks"][0]
    assert (rank["name"], rank["value"], rank["tolerance"]) == ("rank", 1, 2)
    assert rank["details"]["dependent"] == ["B"]


def test_bad_input_exits_two_without_traceback(tmp_path):
    res = run("derive", "no_such_problem")
    assert res.exit_code == 2
    assert "error: no problem named" in res.output
    assert "Traceback" not in res.output
    path = tmp_path / "bad.toml"
    path.write_text('[network]\nlayers = [1, 1]\n[action]\nweight = "exp(theta*t)"\n',
                    encoding="utf-8")
    res = run("verify", str(path))
    assert res.exit_code == 2
    assert "theta" in res.output and "Fix:" in res.output


def test_debug_shows_the_traceback():
    res = CliRunner().invoke(main, ["--debug", "derive", "no_such_problem"])
    assert res.exit_code == 2
    assert "Traceback" in res.output


def test_help_everywhere():
    for cmd in ([], ["problems"], ["derive"], ["verify"], ["waves"], ["paper"]):
        res = run(*cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output


def test_simulate_writes_a_trajectory_that_keeps_the_constraint(tmp_path):
    """The pendulum from the file's initial state: |q| stays L (drift small), and the
    energy ½m|q̇|² - m g q1 is conserved (independent of the engine's equations)."""
    import numpy as np

    res = run("simulate", "pendulum", "--out", str(tmp_path), "--t-end", "2",
              "--points", "201")
    assert res.exit_code == 0, res.output
    data = np.load(tmp_path / "pendulum_trajectory.npz")
    q1, q2, v1, v2 = data["q1"], data["q2"], data["q1_dot"], data["q2_dot"]
    assert np.max(np.abs(np.hypot(q1, q2) - 1.0)) < 1e-5
    energy = 0.5 * (v1**2 + v2**2) - 9.81 * q1
    assert np.max(np.abs(energy - energy[0])) < 1e-4
    assert (tmp_path / "pendulum_trajectory.png").stat().st_size > 10_000


def test_simulate_a_data_problem_points_to_train(tmp_path):
    """A data problem's inputs and targets are its samples: ``simulate digits`` says so in
    one line naming ``file:data`` and the train command (it listed 74 signal names and
    asked for their velocities); a network file without [inputs] names the field to
    fill, and runs once the values are given there."""
    res = run("simulate", "digits", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "digits.toml:data:" in res.output and "cognitive-action train digits" in \
        res.output and "(74 signals)" in res.output
    assert not list(tmp_path.iterdir())  # refused before any work
    f = tmp_path / "open.toml"
    f.write_text('name = "open"\nparameters = { m_x = 0.001, m_W = 1.0 }\n[network]\n'
                 'layers = [2, 1]\n[action]\nmass_x = "m_x"\nmass_W = "m_W"\n')
    res = run("simulate", str(f), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "open.toml:initial.values: no value for the constant signals e1, e2, y3" in \
        res.output
    f.write_text(f.read_text() + "[initial]\nvalues = { e1 = 0.5, e2 = -0.5, y3 = 0.2 }\n")
    res = run("simulate", str(f), "--out", str(tmp_path / "o"), "--t-end", "0.1",
              "--points", "3")
    assert res.exit_code == 0, res.output
    import numpy as np

    data = np.load(tmp_path / "o" / "open_trajectory.npz")  # constant signals: at rest
    np.testing.assert_allclose(data["x1"], 0.5, rtol=0, atol=1e-9)
    np.testing.assert_allclose(data["x2"], -0.5, rtol=0, atol=1e-9)
    np.testing.assert_allclose(data["x3"], np.tanh(0.5 * data["w3_1"] - 0.5 * data["w3_2"]),
                               rtol=0, atol=1e-7)


def test_simulate_refuses_the_anti_stable_rate_network_forward(tmp_path):
    res = run("simulate", "rate_network", "--variant", "forward", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "unstable forward in time" in res.output and "relaxation" in res.output


def test_simulate_runs_the_rate_network_relaxed_as_its_file_asks(tmp_path):
    res = run("simulate", "rate_network", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "variant relaxation" in res.output
    import numpy as np

    data = np.load(tmp_path / "rate_network_trajectory.npz")
    assert np.all(np.isfinite(data["nu_G4"])) and data["drift"].max() < 1e-6


def test_unexpected_exception_is_reported_as_a_bug_without_traceback(monkeypatch):
    import cognitive_action.workflow as workflow

    def boom(*args):
        raise ZeroDivisionError("simulated internal failure")

    monkeypatch.setattr(workflow, "derive_preview", boom)  # what derive's text runs
    res = CliRunner().invoke(main, ["derive", "chain3"])
    assert res.exit_code == 3
    assert "internal error: ZeroDivisionError" in res.output and "--debug" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["--debug", "derive", "chain3"])
    assert res.exit_code == 3 and "Traceback" in res.output


def test_simulate_with_progress_bar_matches_one_run(tmp_path):
    """The bar runs the grid in chunks (the integrator restarts between them): the
    chunked trajectory must be as accurate as one run, both measured against a run at
    rtol 1e-12."""
    import numpy as np

    from cognitive_action import workflow

    wf = workflow.load("pendulum")
    n = 201

    def piece(chunks, **kw):  # the workflow runs in 20 chunks by default; None: one piece
        return workflow.simulate_spec(wf.spec, wf.derived, wf.initial,
                                      wf.settings(points=n, **kw), chunks=chunks)

    tight = piece(None, rtol=1e-12, atol=1e-14, progress=False)
    one = piece(None, progress=False)
    many = piece(None, progress=True)
    np.testing.assert_array_equal(wf.simulate(points=n).y, piece(20).y)
    np.testing.assert_array_equal(one.times, many.times)
    err_one = np.abs(one.y - tight.y).max()
    err_many = np.abs(many.y - tight.y).max()
    assert err_many <= 10 * err_one + 1e-9, (err_one, err_many)
    assert many.constraint_values.shape == one.constraint_values.shape
    assert many.stats["chunks"] == 20 and "chunks" not in one.stats
    res = run("simulate", "pendulum", "--progress", "--points", "50", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output


def test_simulate_runs_the_adjoint_sweep(tmp_path):
    """``--variant adjoint``: the multipliers meet their final condition 0 at t_end
    (they are integrated backward from it) and stay finite where a forward run of the
    same derived system is refused as anti-stable (test above)."""
    res = run("simulate", "rate_network", "--variant", "adjoint", "--t-end", "0.5",
              "--points", "26", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "variant adjoint" in res.output and "adjoint sweep (cvodes" in res.output
    import numpy as np

    data = np.load(tmp_path / "rate_network_trajectory.npz")
    mults = [k for k in data.files if k.startswith(("nu_", "mu_")) and "_dot" not in k]
    assert mults
    for k in mults:
        assert np.all(np.isfinite(data[k])) and abs(data[k][-1]) < 1e-12
    assert max(np.abs(data[k]).max() for k in mults) > 1e-3  # not identically zero
    bad = run("simulate", "rate_network", "--variant", "adjoint", "--method", "dopri",
              "--out", str(tmp_path))
    assert bad.exit_code == 2 and "--method cvodes" in bad.output


def test_derive_out_in_an_unusable_folder_exits_2_before_deriving(tmp_path, monkeypatch):
    """``derive --out FILE``: the folder is proved writable before the file is loaded."""
    from cognitive_action.problem_files import loader

    def never(*a, **k):
        raise AssertionError("loaded before --out was checked")

    monkeypatch.setattr(loader, "load_problem", never)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = CliRunner().invoke(main, ["derive", "pendulum", "--out", str(blocker / "eq.txt")])
    assert res.exit_code == 2, res.output
    assert f"the output folder {blocker} is a file" in res.output
    assert "Fix:" in res.output and "Traceback" not in res.output


def test_derive_prints_fewer_rows_of_eq_10_by_default():
    """eq. (10)'s rows are the longest: 10 by default (40 of the other blocks), with a
    count of the rest; --max-rows sets every block."""
    from cognitive_action.problem_files.loader import load_problem

    n = len(load_problem("layered10").problem.holonomic)
    assert n > 10
    res = CliRunner().invoke(main, ["derive", "layered10"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert sum(line.startswith("  b[") for line in lines) == 10
    assert f"  … {n - 10} more (--max-rows, --out)" in lines
    assert sum(line.startswith("  [") for line in lines) == 40
    res = CliRunner().invoke(main, ["derive", "layered10", "--max-rows", "3"])
    lines = res.output.splitlines()
    assert sum(line.startswith("  b[") for line in lines) == 3
    assert sum(line.startswith("  [") for line in lines) == 3
