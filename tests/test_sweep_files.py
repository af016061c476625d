"""The ``[sweep]`` table of problem files, ``workflow.run_sweep_file`` and
``cognitive-action sweep``.

The file's checks run before any work (no cluster starts for a bad file). One test runs
the command on a tiny convergence sweep (a real ``LocalCluster`` of one worker process)
and compares the stored distances with the closed form of the weighted oscillator.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")
pytest.importorskip("xarray")
pytest.importorskip("zarr")

from references import oscillator_solution  # noqa: E402

from cognitive_action.cli import main  # noqa: E402
from cognitive_action.compile.options import SolverOptions  # noqa: E402
from cognitive_action.errors import ProblemFileError  # noqa: E402
from cognitive_action.problem_files.loader import load_problem  # noqa: E402
from cognitive_action.sweeps import Convergence, SweepSpec, engine  # noqa: E402
from cognitive_action.sweeps.section import EXAMPLE, load_sweep_file  # noqa: E402

DAMPED = """name = "damped"
coordinates = ["x"]
parameters = { m = 1.0, k = 4.0, theta = 0.1 }
[action]
masses = "m"
weight = "exp(theta*t)"
lagrangian = "-exp(theta*t)*k*x**2/2"
[initial]
values = { x = 1.0, x_dot = 0.0 }
[simulate]
rtol = 1e-10
atol = 1e-12
"""

SWEEP = """
[sweep]
task = "convergence"
axes = { theta = [0.04, 0.02, 0.01, 0.005] }
times = [0.0, 5.0]
points = 26
outputs = ["x"]
[sweep.convergence]
axis = "theta"
reference = 0.0
"""


def _file(tmp_path, sweep=SWEEP, base=DAMPED, name="damped.toml"):
    path = tmp_path / name
    path.write_text(base + sweep, encoding="utf-8")
    return path


def test_file_section_builds_the_same_spec_as_python(tmp_path):
    sf = load_sweep_file(_file(tmp_path))
    by_hand = SweepSpec(load_problem(_file(tmp_path)).problem,
                        axes={"theta": [0.04, 0.02, 0.01, 0.005]}, task="convergence",
                        values={"m": 1.0, "k": 4.0, "theta": 0.1},
                        initial={"x": 1.0, "x_dot": 0.0}, times=(0.0, 5.0), n_points=26,
                        outputs=("x",), options=SolverOptions(rtol=1e-10, atol=1e-12),
                        convergence=Convergence("theta", reference=0.0))
    assert sf.spec.fingerprint() == by_hand.fingerprint()
    assert (sf.scheduler, sf.workers, sf.chunk_size) == (None, 2, None)
    assert SweepSpec.from_file(_file(tmp_path)).fingerprint() == by_hand.fingerprint()
    # other commands read a file with a [sweep] table as before
    assert load_problem(EXAMPLE).problem.name == "damped"


def test_fingerprint_is_the_same_in_another_process():
    """A rerun (another process, another hash seed) must find its store."""
    code = ("from cognitive_action.sweeps.section import load_sweep_file, EXAMPLE; "
            "print(load_sweep_file(EXAMPLE).spec.fingerprint())")
    here = load_sweep_file(EXAMPLE).spec.fingerprint()
    here_seed = os.environ.get("PYTHONHASHSEED", "random")
    for seed in ("1" if here_seed != "1" else "2",):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join(sys.path)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120, check=True)
        assert out.stdout.strip() == here


BAD = [
    ('axes = { mu = [1.0] }', "sweep.axes.mu", "'mu' is neither"),
    ('axes = { theta = [] }', "sweep.axes.theta", "the axis is empty"),
    ('axes = { theta = "0.1" }', "sweep.axes.theta", "values of type str"),
    ('axes = { theta = [0.1, "x"] }', "sweep.axes.theta", "value 'x'"),
    ('axes = { seed = [1.5] }', "sweep.axes.seed", "value 1.5"),
    ('axes = [1, 2]', "sweep.axes", "must be a table"),
    ('axes = { k = [1.0] }\nwhat = 1', "sweep.what", "unknown key"),
    ('axes = { k = [1.0] }\nmode = "cartesian"', "sweep.mode", "unknown mode"),
    ('axes = { k = [1.0] }\ntask = "fit"', "sweep.task", "unknown task"),
    ('axes = { k = [1.0] }\ntimes = [1.0, 0.0]', "sweep.times", "tf > t0"),
    ('axes = { k = [1.0] }\npoints = 0', "sweep.points", "integer >= 1"),
    ('axes = { k = [1.0] }\nworkers = 1.5', "sweep.workers", "integer >= 1"),
    ('axes = { k = [1.0] }\nchunk_size = true', "sweep.chunk_size", "integer >= 1"),
    ('axes = { k = [1.0] }\nscheduler = 8786', "sweep.scheduler", "non-empty string"),
    ('axes = { k = [1.0] }\nmethod = "euler"', "sweep.method", "unknown method"),
    ('axes = { k = [1.0] }\noutputs = ["y"]', "sweep.outputs", "unknown outputs"),
    ('axes = { k = [1.0] }\nepochs = 2', "sweep.epochs", "setting of the train task"),
    ('axes = { k = [1.0, 2.0] }\nmode = "zip"\n[sweep.convergence]\naxis = "k"',
     "sweep.convergence.axis", "at least 3"),
    ('task = "convergence"\naxes = { k = [1.0, 2.0, 3.0] }', "sweep.convergence",
     "needs a convergence axis"),
    ('task = "convergence"\naxes = { k = [1.0, 2.0, 3.0] }\n[sweep.convergence]\n'
     'axis = "k"\nreference = 2.0', "sweep.convergence.reference", "is a value of the axis"),
    ('axes = { k = [1.0, 2.0, 3.0] }\n[sweep.convergence]\naxis = "k"\nvariable = "x"',
     "sweep.convergence.variable", "simulate stores trajectories"),
    ('axes = { k = [1.0, 2.0, 3.0] }\n[sweep.convergence]\naxis = "k"\nlimit = 0',
     "sweep.convergence.limit", "unknown key"),
    ('task = "train"\naxes = { k = [1.0] }', "sweep.task", "needs a network problem"),
]


@pytest.mark.parametrize(("body", "field", "match"), BAD, ids=[b[1] for b in BAD])
def test_bad_sweep_table_names_file_and_field(tmp_path, body, field, match):
    path = _file(tmp_path, "\n[sweep]\n" + body + "\n")
    with pytest.raises(ProblemFileError, match=match) as info:
        load_sweep_file(path)
    assert info.value.field == field and info.value.path == str(path)
    assert info.value.fix and f"{path}:{field}:" in str(info.value)


def test_train_sweep_table_needs_data_and_checks_its_axes(tmp_path):
    net = 'name = "net"\n[network]\nlayers = [64, 3, 10]\n'
    with pytest.raises(ProblemFileError, match="has no data") as info:
        load_sweep_file(_file(tmp_path, '[sweep]\ntask = "train"\naxes = { seed = [0] }\n',
                              base=net))
    assert info.value.field == "sweep.data"
    data = '[data]\nsource = "digits"\n'
    for axes, field, match in (('{ law = ["limit", "adam"] }', "sweep.axes.law", "'adam'"),
                               ('{ learning_rate = [0.1, -1.0] }', "sweep.axes.learning_rate",
                                "-1.0"),
                               ('{ x3 = [0.1] }', "sweep.axes.x3", "train task has no initial")):
        with pytest.raises(ProblemFileError, match=match) as info:
            load_sweep_file(_file(tmp_path, f'[sweep]\ntask = "train"\naxes = {axes}\n',
                                  base=net + data))
        assert info.value.field == field


def test_no_sweep_table(tmp_path):
    with pytest.raises(ProblemFileError, match="no \\[sweep\\] table") as info:
        load_sweep_file(_file(tmp_path, ""))
    assert info.value.field == "sweep"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_bad_file_exits_2_with_file_and_field_before_any_work(tmp_path):
    path = _file(tmp_path, "\n[sweep]\naxes = { mu = [1.0] }\n")
    res = run("sweep", path, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert f"{path}:sweep.axes.mu:" in res.output and "Fix:" in res.output
    out = tmp_path / "out"  # checked writable: nothing written (nor created)
    assert not out.exists() or list(out.iterdir()) == []


def test_cli_unwritable_out_exits_2_before_any_work(tmp_path, monkeypatch):
    """``--out`` is proved writable before the file is read, derived or swept."""
    import cognitive_action.workflow as wf

    def never(*a, **k):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(wf, "sweep_file", never)
    monkeypatch.setattr(wf, "run_sweep_file", never)
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    res = run("sweep", _file(tmp_path), "--out", blocker / "sub")  # under a file
    assert res.exit_code == 2, res.output
    assert "the output folder" in res.output and str(blocker / "sub") in res.output
    assert "Fix:" in res.output


def test_cli_unanswering_scheduler_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "SCHEDULER_TIMEOUT", 1.0)
    path = _file(tmp_path, SWEEP.replace('outputs = ["x"]',
                                         'outputs = ["x"]\nscheduler = "tcp://127.0.0.1:9"'))
    res = run("sweep", path, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert f"{path}:sweep.scheduler: no Dask scheduler answers" in res.output
    assert not list((tmp_path / "out").rglob("*.npz"))
    res = run("sweep", _file(tmp_path), "--out", tmp_path / "out2",
              "--scheduler", "tcp://127.0.0.1:9")
    assert res.exit_code == 2 and "scheduler: no Dask scheduler answers" in res.output


def test_cli_convergence_sweep_against_closed_form_and_rerun(tmp_path):
    """The command on a tiny file (one worker process): distances equal the closed form's,
    the fitted order is 1, the figure is written; the rerun runs nothing."""
    import xarray as xr

    path = _file(tmp_path)
    res = run("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "4 points run" in res.output and "4 ok, 0 failed, 0 missing" in res.output
    assert "points done 4/4, failed 0, remaining 0" in res.output
    store = tmp_path / "out" / "damped_sweep"
    ds = xr.open_zarr(store / "dataset.zarr").load()
    t = np.linspace(0.0, 5.0, 26)
    base = oscillator_solution(t, 1.0, 4.0, 0.0, 1.0, 0.0)
    for theta in (0.04, 0.02, 0.01, 0.005):
        closed = oscillator_solution(t, 1.0, 4.0, theta, 1.0, 0.0)
        np.testing.assert_allclose(ds.x.sel(theta=theta).values, closed, atol=1e-8)
        assert float(ds.distance.sel(theta=theta)) == pytest.approx(
            np.max(np.abs(closed - base)), rel=1e-6)
    closed_order = np.polyfit(np.log(ds.theta.values), np.log(ds.distance.values), 1)[0]
    assert ds.attrs["convergence_order"] == pytest.approx(closed_order, abs=1e-6)
    assert abs(ds.attrs["convergence_order"] - 1.0) < 0.05  # first order in theta
    assert f"p = {ds.attrs['convergence_order']:.3f}" in res.output
    assert (store / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert again.exit_code == 0 and "0 points run" in again.output
    assert "(4 already stored)" in again.output


@pytest.mark.parametrize(("old", "new", "field"), [
    ("rtol = 1e-10", "rtol = -1.0", "simulate.rtol"),
    ("[simulate]", '[simulate]\nt_end = "x"', "simulate.t_end"),
    ("[simulate]", "[simulate]\npoints = 2.5", "simulate.points"),
])
def test_defaults_from_the_simulate_table_are_checked_where_they_are(tmp_path, old, new,
                                                                     field):
    path = _file(tmp_path, "\n[sweep]\naxes = { k = [1.0] }\n", base=DAMPED.replace(old, new))
    with pytest.raises(ProblemFileError) as info:
        load_sweep_file(path)
    assert info.value.field == field and info.value.fix
