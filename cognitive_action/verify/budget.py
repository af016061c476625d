"""Time budgets for checks that can run for minutes (SymPy row reduction, ``simplify``).

SymPy cannot be interrupted from another thread, so :func:`run_with_budget` runs the
work in a forked child process (``os.fork``) and kills it when the budget is spent: the child starts
with the parent's memory (the problem, SymPy's caches), only the result travels back
through a pipe, and a child stuck anywhere (also inside a C extension) is terminated.
Where ``fork`` does not exist (Windows, and macOS's default), it falls back to
``signal.setitimer`` on the main thread, and otherwise runs the work without a budget
(:data:`BUDGET_METHOD` says which).

Examples
--------
>>> run_with_budget(lambda: 6 * 7, 5.0).value
42
>>> import time
>>> out = run_with_budget(lambda: time.sleep(10), 0.2)
>>> out.timed_out, out.elapsed < 5
(True, True)
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "run_with_budget", "BUDGET_METHOD", "DEFAULT_BUDGET"]

#: Seconds a symbolic check may take by default before it is reported as timed out.
DEFAULT_BUDGET = 20.0


def _method() -> str:
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    if hasattr(signal, "setitimer"):
        return "signal"
    return "none"


#: How budgets are enforced on this platform: ``"fork"``, ``"signal"`` or ``"none"``.
BUDGET_METHOD = _method()


@dataclass(frozen=True)
class Outcome:
    """What a budgeted call returned.

    Attributes
    ----------
    value
        The function's return value (``None`` when it timed out or raised).
    error
        The exception it raised, if any (re-created in the parent).
    timed_out
        Whether the budget ran out first.
    elapsed
        Wall-clock seconds spent.
    """

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    elapsed: float = 0.0


class _Timeout(BaseException):
    """Raised by the alarm of the signal fallback (a BaseException: not caught by
    ``except Exception`` inside SymPy)."""


def _payload(fn: Callable[[], Any]) -> bytes:
    try:
        msg: tuple[str, Any] = ("ok", fn())
    except BaseException as exc:  # report every failure to the parent
        msg = ("error", exc)
    try:
        return pickle.dumps(msg)
    except Exception:  # an unpicklable result or exception: send its text
        kind, obj = msg
        return pickle.dumps(("error", RuntimeError(
            f"{type(obj).__name__}: {obj}" if kind == "error"
            else f"unpicklable result of type {type(obj).__name__}")))


def _run_fork(fn: Callable[[], Any], budget: float) -> Outcome:
    # os.fork rather than multiprocessing: it works inside daemonic workers too (a pool
    # worker, or a budgeted call that calls verify again)
    t0 = time.perf_counter()
    deadline = t0 + budget
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, write, leave without running any exit handlers
        code = 0
        try:
            os.close(r)
            data = _payload(fn)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    timed_out = finished = False
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                timed_out = True
                break
            chunk = os.read(r, 1 << 16)
            if not chunk:
                finished = True
                break
            chunks.append(chunk)
    finally:  # out of time, or interrupted (Ctrl-C): the child must not outlive the call
        os.close(r)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - t0
    if timed_out:
        return Outcome(timed_out=True, elapsed=elapsed)
    try:
        kind, obj = pickle.loads(b"".join(chunks))
    except Exception:  # the child died without an answer (killed, out of memory)
        return Outcome(error=RuntimeError(
            f"the check's process ended with status {status} and no result"),
            elapsed=elapsed)
    return (Outcome(value=obj, elapsed=elapsed) if kind == "ok"
            else Outcome(error=obj, elapsed=elapsed))


def _run_signal(fn: Callable[[], Any], budget: float) -> Outcome:
    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        return Outcome(value=fn(), elapsed=time.perf_counter() - t0)
    except _Timeout:
        return Outcome(timed_out=True, elapsed=time.perf_counter() - t0)
    except Exception as exc:
        return Outcome(error=exc, elapsed=time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_with_budget(fn: Callable[[], Any], budget: float | None, *,
                    method: str | None = None) -> Outcome:
    """Call ``fn()`` and give up after ``budget`` seconds.

    Parameters
    ----------
    fn
        A function without arguments; with the ``fork`` method its return value (and any
        exception) must be picklable.
    budget
        Seconds; ``None`` or ``inf`` runs ``fn`` in this process without a limit.
    method
        ``"fork"`` or ``"signal"`` (default: :data:`BUDGET_METHOD`); ``"signal"`` off
        the main thread runs without a limit.

    Returns
    -------
    Outcome
        The value, or the exception, or ``timed_out=True``.
    """
    if budget is None or budget == float("inf"):
        t0 = time.perf_counter()
        try:
            return Outcome(value=fn(), elapsed=time.perf_counter() - t0)
        except Exception as exc:
            return Outcome(error=exc, elapsed=time.perf_counter() - t0)
    if budget <= 0:
        return Outcome(timed_out=True)
    method = method or BUDGET_METHOD
    if method == "fork":
        return _run_fork(fn, budget)
    if method != "none" and threading.current_thread() is threading.main_thread():
        return _run_signal(fn, budget)
    return run_with_budget(fn, None)
