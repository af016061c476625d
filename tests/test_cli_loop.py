"""``cognitive-action simulate --loop c``: the dopri run in generated C through the CLI.

The C loop's numbers are checked against SciPy's DOP853 and the Python loop in
test_compile_c_loop.py; here: the option reaches the C loop (counted), the trajectory
file equals the Python loop's to round-off, and ``--loop c`` with another method is a
user error (exit 2, nothing written). Compiles C, so skipped without a C compiler.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from click.testing import CliRunner

from cognitive_action.cli import main

# the module (the package exports the function `simulate` under the same name)
simulate_module = importlib.import_module("cognitive_action.compile.simulate")

pytestmark = pytest.mark.skipif(
    not any(os.access(os.path.join(d, c), os.X_OK) for d in os.environ.get("PATH", "").split(":")
            for c in ("cc", "gcc", "clang")),
    reason="no C compiler")


def test_loop_c_runs_the_c_loop_and_writes_the_python_loops_trajectory(tmp_path, monkeypatch):
    monkeypatch.setenv("COGNITIVE_ACTION_CACHE", str(tmp_path / "cache"))
    calls = []
    real = simulate_module.c_loop_for

    def counting(system, **kw):
        calls.append(system.name)
        return real(system, **kw)

    monkeypatch.setattr(simulate_module, "c_loop_for", counting)
    runner = CliRunner()
    for loop in ("c", "python"):
        res = runner.invoke(main, ["simulate", "xor", "--method", "dopri", "--loop", loop,
                                   "--out", str(tmp_path / loop), "--no-progress"])
        assert res.exit_code == 0, res.output
    assert calls  # --loop c went through the C loop; --loop python did not add calls
    n_c = len(calls)
    a = np.load(tmp_path / "c" / "xor_trajectory.npz")
    b = np.load(tmp_path / "python" / "xor_trajectory.npz")
    assert sorted(a.files) == sorted(b.files)
    assert len(calls) == n_c
    for key in a.files:
        if a[key].dtype.kind == "f":
            scale = max(1.0, float(np.abs(b[key]).max()))
            assert np.abs(a[key] - b[key]).max() <= 1e-12 * scale, key


def test_loop_c_with_another_method_is_a_user_error(tmp_path):
    res = CliRunner().invoke(main, ["simulate", "xor", "--method", "cvodes", "--loop", "c",
                                    "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "--method dopri" in res.output
    assert not (tmp_path / "out").exists()
