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


# -- the output folder is checked before any work (issue 17) ------------------------------
def _never(*args, **kwargs):
    raise AssertionError("work started before the output folder was checked")


@pytest.mark.parametrize("command", [["simulate", "pendulum"], ["waves", "--quick"],
                                     ["train", "digits", "--quick"], ["paper", "--quick"]])
def test_an_unusable_out_is_refused_before_any_work(tmp_path, monkeypatch, command):
    """``--out`` below a regular file cannot be created: exit 2 naming the folder, with a
    fix, and nothing loaded, derived or simulated (the loaders would raise here)."""
    from click.testing import CliRunner

    from cognitive_action import cli
    from cognitive_action.problem_files import loader

    monkeypatch.setattr(workflow, "load", _never)
    monkeypatch.setattr(workflow, "waves", _never)
    monkeypatch.setattr(workflow, "train_spec", _never)
    monkeypatch.setattr(loader, "load_problem", _never)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "results"
    res = CliRunner().invoke(cli.main, [*command, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert str(out) in res.output and "Fix:" in res.output
    assert "Traceback" not in res.output


def test_a_full_or_read_only_folder_is_found_by_writing(tmp_path, monkeypatch):
    """The probe writes a file: a refusal at write time (a full disk, a read-only mount;
    simulated here, root ignores permission bits) is an OutputError, and the probe file
    never stays behind."""
    import errno
    import os

    from cognitive_action.errors import OutputError

    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match="No space left") as info:
        workflow.output_folder(tmp_path / "out")
    monkeypatch.setattr(os, "write", real_write)
    assert info.value.path == str(tmp_path / "out") and info.value.fix
    assert list(tmp_path.iterdir()) == []  # no probe left, no folder created
    assert workflow.output_folder(tmp_path / "out") == tmp_path / "out"
    assert list(tmp_path.iterdir()) == []  # the outputs create it when they are written
    (tmp_path / "out").mkdir()
    assert workflow.output_folder(tmp_path / "out") == tmp_path / "out"
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes through permission bits")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    from cognitive_action.errors import OutputError

    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(OutputError, match="cannot write"):
        workflow.output_folder(ro)
