"""Time budgets: a budgeted call returns its value, re-raises its error, and is stopped
when it runs out of time (by a forked child, or by an alarm on the main thread)."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from cognitive_action.errors import DerivationError
from cognitive_action.verify.budget import BUDGET_METHOD, run_with_budget

METHODS = ["fork", "signal"] if BUDGET_METHOD == "fork" else [BUDGET_METHOD]


def _slow_sympy() -> sp.Expr:
    """Pure-Python SymPy work that runs for minutes (a dense symbolic determinant)."""
    x = sp.symbols("x0:12")
    M = sp.Matrix(12, 12, lambda i, j: sp.tanh(x[i] * (j + 1) + x[j]))
    return M.det(method="berkowitz").expand()


def _fails() -> None:
    raise DerivationError("no value given for beta", fix="pass values={'beta': ...}")


@pytest.mark.parametrize("method", METHODS)
def test_value_comes_back(method):
    x = sp.Symbol("x")
    out = run_with_budget(lambda: sp.diff(sp.sin(x) ** 2, x), 30.0, method=method)
    assert not out.timed_out and out.error is None
    assert sp.simplify(out.value - sp.sin(2 * x)) == 0


@pytest.mark.parametrize("method", METHODS)
def test_typed_error_is_raised_again_in_the_caller(method):
    out = run_with_budget(_fails, 30.0, method=method)
    assert isinstance(out.error, DerivationError) and "beta" in str(out.error)


@pytest.mark.parametrize("method", METHODS)
def test_sympy_that_would_run_for_minutes_is_stopped_at_the_budget(method):
    t0 = time.perf_counter()
    out = run_with_budget(_slow_sympy, 0.5, method=method)
    assert out.timed_out and out.value is None
    assert time.perf_counter() - t0 < 10  # stopped near 0.5 s, not after minutes


def test_no_budget_runs_in_this_process():
    assert run_with_budget(lambda: 3, None).value == 3
    assert run_with_budget(lambda: 3, 0).timed_out


@pytest.mark.skipif(BUDGET_METHOD != "fork", reason="the forked child exists only there")
def test_an_interrupted_call_leaves_no_child_behind(tmp_path):
    import os
    import signal

    pidfile = tmp_path / "pid"

    def work():
        pidfile.write_text(str(os.getpid()))
        time.sleep(60)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_with_budget(work, 30.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - t0 < 20  # not waiting out the child's 60 s
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
