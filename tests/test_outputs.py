"""Outputs stay inside the output folder and survive a failed write (issue 17: a
problem's name decided the output path; a killed write left a truncated .npz)."""

from __future__ import annotations

import numpy as np
import pytest

from cognitive_action import workflow
from cognitive_action.errors import ProblemFileError
from cognitive_action.problem_files.loader import load_problem

_FILE = """name = {name!r}
kind = "mechanical"
coordinates = ["q"]
parameters = {{ m = 1.0, k = 2.0 }}

[action]
masses = "m"
lagrangian = "-k*q**2/2"
"""


def test_the_file_is_valid_with_a_plain_name(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(_FILE.format(name="spring.run-1"))
    assert load_problem(path).name == "spring.run-1"


@pytest.mark.parametrize("name", ["../victim/escaped", "/tmp/abs", "a/b", "..", ".hidden",
                                  "x" * 65, ""])
def test_a_name_that_is_a_path_is_refused_when_the_file_is_read(tmp_path, name):
    path = tmp_path / "p.toml"
    path.write_text(_FILE.format(name=name))
    with pytest.raises(ProblemFileError) as info:
        load_problem(path)
    assert info.value.field == "name" and info.value.fix


@pytest.mark.parametrize("name", ["../escaped", "/abs/x", "a/b", "..", "."])
def test_output_path_refuses_to_leave_the_folder(tmp_path, name):
    with pytest.raises(ProblemFileError, match="outside the output folder"):
        workflow.output_path(tmp_path, name, ".npz")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    path = workflow.output_path(tmp_path, "run", "_trajectory.npz")
    workflow.write_atomically(path, lambda f: np.savez(f, t=np.arange(3.0)))
    before = path.read_bytes()

    def interrupted(f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        workflow.write_atomically(path, interrupted)
    assert path.read_bytes() == before
    assert np.array_equal(np.load(path)["t"], np.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_trajectory.npz"]
