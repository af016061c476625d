"""Ctrl-C (issue 17): a run stops with the completed part kept, never reported as an
integrator failure or as success, and ``--resume`` continues it to the same numbers,
bit for bit, as a run that was never stopped.

CasADi turns a ``KeyboardInterrupt`` raised while it evaluates into a failure of the
function (CVODES reports ``CV_RHSFUNC_FAIL``); the tests send real ``SIGINT`` signals
(to this process from a timer thread or a chunk callback, and to a command-line
subprocess) and check what comes out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from cognitive_action import interrupts, workflow
from cognitive_action.cli import main
from cognitive_action.compile import simulate
from cognitive_action.errors import CompileError, InterruptedRunError, SimulationError


@pytest.fixture(scope="module")
def pendulum():
    wf = workflow.load("pendulum")
    return wf.system(), wf.initial, wf.spec.values


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


# -- resume: bit for bit ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["cvodes", "dopri", "idas"])
def test_a_resumed_run_equals_the_uninterrupted_run_bit_for_bit(pendulum, method):
    system, y0, values = pendulum
    full = simulate(system, (0, 5), y0, values, n_points=401, chunks=20, method=method)
    saved = []
    again = simulate(system, (0, 5), y0, values, n_points=401, chunks=20, method=method,
                     on_chunk=saved.append)
    assert [c.done for c in saved] == list(range(1, 21)) and saved[-1].complete
    np.testing.assert_array_equal(again.y, full.y)
    for cp in (saved[0], saved[6], saved[18]):
        res = simulate(system, (0, 5), y0, values, n_points=401, chunks=20, method=method,
                       resume=cp)
        np.testing.assert_array_equal(res.y, full.y)
        if method == "idas":
            np.testing.assert_array_equal(res.algebraic, full.algebraic)
    # the chunked run is as accurate as one piece: |q| = L along both
    one = simulate(system, (0, 5), y0, values, n_points=401, method=method)
    assert np.max(np.abs(np.hypot(full["q1"], full["q2"]) - 1)) < 1e-5
    assert np.max(np.abs(full.y - one.y)) < 1e-4


def test_a_checkpoint_of_another_run_is_refused(pendulum):
    system, y0, values = pendulum
    saved = []
    simulate(system, (0, 5), y0, values, n_points=401, chunks=20, on_chunk=saved.append)
    with pytest.raises(CompileError, match="another run"):
        simulate(system, (0, 5), y0, values, n_points=401, chunks=10, resume=saved[3])
    other = dict(y0) | {"q1_dot": 0.0, "q2": 1.0, "q1": 0.0, "q2_dot": 0.0}
    bad = saved[3].__class__(saved[3].edges, saved[3].done, saved[3].y * 2)
    with pytest.raises(CompileError, match="another run"):
        simulate(system, (0, 5), other, values, n_points=401, chunks=20, resume=bad)


# -- Ctrl-C in this process ------------------------------------------------------------
def test_ctrl_c_between_chunks_keeps_the_completed_chunks(pendulum):
    """SIGINT while a checkpoint is being taken (after chunk 5) waits for it and stops
    before chunk 6; the partial run is the uninterrupted run's first rows exactly."""
    system, y0, values = pendulum
    full = simulate(system, (0, 5), y0, values, n_points=401, chunks=20)

    def on_chunk(cp):
        if cp.done == 5:
            _sigint_self()

    with pytest.raises(InterruptedRunError) as info:
        simulate(system, (0, 5), y0, values, n_points=401, chunks=20, on_chunk=on_chunk)
    exc = info.value
    assert isinstance(exc, KeyboardInterrupt)
    assert exc.resume.done == 5 and "5 of 20 chunks" in str(exc)
    k = exc.resume.edges[5]
    np.testing.assert_array_equal(exc.partial.y, full.y[:k + 1])
    np.testing.assert_array_equal(exc.partial.times, full.times[:k + 1])
    assert exc.time == pytest.approx(full.times[k])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not interrupts.requested()
    res = simulate(system, (0, 5), y0, values, n_points=401, chunks=20, resume=exc.resume)
    np.testing.assert_array_equal(res.y, full.y)


@pytest.mark.parametrize("chunks", [None, 20])
def test_ctrl_c_inside_a_cvodes_integration_is_an_interrupt_not_a_failure(chunks):
    """SIGINT from a timer while CVODES integrates a long run: CasADi aborts the call
    (CV_RHSFUNC_FAIL); the run reports an interrupt, promptly, not a blow-up."""
    wf = workflow.load("pendulum")
    system = wf.system()
    y0, values = wf.initial, wf.spec.values
    timer = threading.Timer(1.0, _sigint_self)
    t0 = time.perf_counter()
    timer.start()
    exc = None
    try:
        simulate(system, (0, 4000), y0, values, n_points=40001, rtol=1e-12, atol=1e-14,
                 max_steps=10**7, chunks=chunks)
    except InterruptedRunError as e:
        exc = e
    except KeyboardInterrupt:  # never let a stray SIGINT end the test session
        pytest.fail("SIGINT arrived outside simulate (machine too loaded?)")
    finally:
        timer.cancel()
    assert exc is not None and not isinstance(exc, SimulationError)
    assert time.perf_counter() - t0 < 30  # the whole run takes minutes
    if chunks is not None:
        assert exc.resume.done < 20


def test_the_handler_is_left_alone_outside_the_main_thread_and_when_customised():
    seen = []

    def mine(signum, frame):
        seen.append(signum)

    old = signal.signal(signal.SIGINT, mine)
    try:
        with interrupts.handling():
            assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, old)
    out = []
    th = threading.Thread(target=lambda: out.append(
        interrupts.handling().__enter__() is None))
    th.start()
    th.join()
    assert out == [True] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_does_not_wait():
    with interrupts.handling(), interrupts.deferred():
        _sigint_self()
        assert interrupts.requested()
        with pytest.raises(KeyboardInterrupt):
            _sigint_self()
            time.sleep(1)  # the handler runs at the next bytecode


# -- the command line ------------------------------------------------------------------
@pytest.mark.slow
def test_resume_on_the_command_line(tmp_path):
    """A checkpoint written by the workflow (a run stopped after its last chunk, before
    saving) is resumed by ``--resume`` to the same arrays as a fresh run; a checkpoint of
    other options, or none, is exit 2."""
    out = tmp_path / "a"
    fresh = CliRunner().invoke(main, ["simulate", "pendulum", "--out", str(out),
                                      "--t-end", "1", "--points", "41"])
    assert fresh.exit_code == 0, fresh.output
    assert not (out / "pendulum_trajectory.checkpoint.npz").exists()
    wf = workflow.load("pendulum")
    res_dir = tmp_path / "b"
    res_dir.mkdir()
    cp = workflow.checkpoint_path(res_dir, "pendulum")
    settings = wf.settings(t_end=1.0, points=41)
    wf.simulate(settings, checkpoint=cp)
    with np.load(cp) as d:  # readable as a trajectory, plus what a resume needs
        assert d["t"][-1] == 1.0 and d["q1"].shape == (41,)
        assert json.loads(str(d["__meta__"]))["done"] == 20
    res = CliRunner().invoke(main, ["simulate", "pendulum", "--out", str(res_dir),
                                    "--t-end", "1", "--points", "41", "--resume"])
    assert res.exit_code == 0, res.output
    assert "resumed after 20 of 20 chunks" in res.output
    a, b = np.load(out / "pendulum_trajectory.npz"), np.load(res_dir / "pendulum_trajectory.npz")
    assert a.files == b.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    assert not cp.exists()
    wf.simulate(settings, checkpoint=cp)
    other = CliRunner().invoke(main, ["simulate", "pendulum", "--out", str(res_dir),
                                      "--t-end", "3", "--points", "41", "--resume"])
    assert other.exit_code == 2 and "another run" in other.output
    cp.unlink()
    none = CliRunner().invoke(main, ["simulate", "pendulum", "--out", str(res_dir),
                                     "--resume"])
    assert none.exit_code == 2 and "no checkpoint" in none.output


def test_a_swallowed_interrupt_is_never_success(monkeypatch):
    """An interrupt that a library swallowed (the command then finishes) still exits 130
    with one line."""
    def derive_preview(spec, rows):  # what `derive` calls first on the terminal route
        _sigint_self()
        time.sleep(0.05)
        raise AssertionError("not reached: the handler raises")

    monkeypatch.setattr(workflow, "derive_preview", derive_preview)
    res = CliRunner().invoke(main, ["derive", "chain3"])
    assert res.exit_code == 130 and res.output.strip() == "interrupted (Ctrl-C)"

    def swallow(spec, rows):
        try:
            _sigint_self()
            time.sleep(0.05)
        except KeyboardInterrupt:
            raise RuntimeError("Evaluation failed") from None  # what CasADi does

    monkeypatch.setattr(workflow, "derive_preview", swallow)
    res = CliRunner().invoke(main, ["derive", "chain3"])
    assert res.exit_code == 130 and "internal error" not in res.output


_SLOW_FILE = """name = "slowpend"
kind = "mechanical"
coordinates = ["q1", "q2"]
parameters = {{ m = 1.0, g = 9.81, L = 1.0 }}

[action]
masses = "m"
lagrangian = "m*g*q1"

[[constraints]]
name = "rod"
expr = "q1**2 + q2**2 - L**2"

[initial]
values = {{ q1 = 0.0, q2 = 1.0, q1_dot = 0.0, q2_dot = 0.0 }}

[simulate]
t_end = {t_end}
points = 4001
rtol = 1e-11
atol = 1e-13
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cognitive_action.cli", *args]


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_then_resume(tmp_path):
    """A real SIGINT to ``cognitive-action simulate`` once its first checkpoint exists:
    exit 130, one line naming the checkpoint, no traceback and no integrator flag; then
    ``--resume`` gives the uninterrupted run's arrays exactly."""
    path = tmp_path / "slowpend.toml"
    path.write_text(_SLOW_FILE.format(t_end=400.0))
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    whole = subprocess.run(_cli("simulate", str(path), "--out", str(tmp_path / "whole"),
                                "--no-progress"), capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    cp = out / "slowpend_trajectory.checkpoint.npz"
    proc = subprocess.Popen(_cli("simulate", str(path), "--out", str(out), "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.monotonic() + 120
    while not cp.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted (Ctrl-C) at t = ")
    assert "--resume" in lines[0] and str(cp) in lines[0]
    assert "Traceback" not in err and "CV_" not in err
    assert not (out / "slowpend_trajectory.npz").exists()
    with np.load(cp) as d:
        done = json.loads(str(d["__meta__"]))["done"]
        assert 1 <= done < 20 and d["t"].size == 200 * done + 1
    res = subprocess.run(_cli("simulate", str(path), "--out", str(out), "--no-progress",
                              "--resume"), capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert f"resumed after {done} of 20 chunks" in res.stdout
    a = np.load(tmp_path / "whole" / "slowpend_trajectory.npz")
    b = np.load(out / "slowpend_trajectory.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    names = {p.name for p in out.iterdir()}
    assert {"slowpend_trajectory.npz", "slowpend_trajectory.png"} <= names
    assert not [n for n in names if n.startswith(".") or "checkpoint" in n]


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """SIGINT while the command loads and derives: exit 130, one line, no traceback."""
    path = tmp_path / "slowpend.toml"
    path.write_text(_SLOW_FILE.format(t_end=400.0))
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.8, 1.5):
        proc = subprocess.Popen(_cli("simulate", str(path), "--out", str(tmp_path / "o")),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def _program_start(tmp_path, argv0: str):
    """Start a Python that calls itself ``argv0``, imports the package and the command
    line, then gets Ctrl-C before any command runs (as an early Ctrl-C would)."""
    code = (f"import sys, os, signal; sys.argv[0] = {argv0!r}; import cognitive_action.cli; "
            "os.kill(os.getpid(), signal.SIGINT); import time; time.sleep(5); "
            "print('not interrupted')")
    import cognitive_action

    root = os.path.dirname(os.path.dirname(cognitive_action.__file__))  # this checkout
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_while_the_program_starts_is_one_line(tmp_path):
    """Ctrl-C while ``cognitive-action`` loads its modules or parses its arguments:
    exit 130 with one line, no traceback (issue 17)."""
    res = _program_start(tmp_path, "/usr/local/bin/cognitive-action")
    assert res.returncode == 130, res.stderr
    assert res.stderr.strip() == "interrupted (Ctrl-C)" and "not interrupted" not in res.stdout


def test_importing_the_package_leaves_ctrl_c_alone(tmp_path):
    """From Python, importing the package (and the CLI module) changes no signal
    handler: Ctrl-C is Python's KeyboardInterrupt."""
    res = _program_start(tmp_path, "my_script.py")
    assert res.returncode != 130 and "KeyboardInterrupt" in res.stderr


@pytest.mark.parametrize("swallowed", [False, True])
def test_ctrl_c_in_the_adjoint_sweep_says_nothing_was_kept(monkeypatch, tmp_path, swallowed):
    """The adjoint sweep runs in one piece: Ctrl-C exits 130 with one line saying that
    nothing was written, also when CasADi turned the interrupt into a failure."""
    def simulate(self, settings=None, **kw):
        assert settings.variant == "adjoint" and kw.get("checkpoint") is None
        try:
            _sigint_self()
            time.sleep(0.05)
        except KeyboardInterrupt:
            if swallowed:
                raise RuntimeError("Evaluation failed") from None  # what CasADi does
            raise
        raise AssertionError("not reached: the handler raises")

    monkeypatch.setattr(workflow.Workflow, "prepare", lambda self: self)
    monkeypatch.setattr(workflow.Workflow, "simulate", simulate)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["simulate", "rate_network", "--variant", "adjoint",
                                    "--out", str(out)])
    assert res.exit_code == 130, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted (Ctrl-C) during the adjoint")
    assert "keeps nothing" in lines[0]
    assert not out.exists() or list(out.iterdir()) == []  # nothing written
