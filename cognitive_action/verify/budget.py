"""Time budgets for checks that can run for minutes (SymPy row reduction, ``simplify``).

SymPy cannot be interrupted from another thread, so :func:`run_with_budget` runs the
work in a forked child process and kills it when the budget is spent: the child starts
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
import pickle
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


def _child(fn: Callable[[], Any], conn: Any) -> None:
    try:
        msg: tuple[str, Any] = ("ok", fn())
    except BaseException as exc:  # report every failure to the parent
        msg = ("error", exc)
    try:
        data = pickle.dumps(msg)
    except Exception:  # an unpicklable result or exception: send its text
        kind, obj = msg
        data = pickle.dumps(("error", RuntimeError(
            f"{type(obj).__name__}: {obj}" if kind == "error"
            else f"unpicklable result of type {type(obj).__name__}")))
    conn.send_bytes(data)
    conn.close()


def _run_fork(fn: Callable[[], Any], budget: float) -> Outcome:
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(fn, send), daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(budget):
            try:
                kind, obj = pickle.loads(recv.recv_bytes())
            except EOFError:  # the child died without an answer (killed, out of memory)
                proc.join()
                return Outcome(error=RuntimeError(
                    f"the check's process ended with exit code {proc.exitcode} and no "
                    "result"), elapsed=time.perf_counter() - t0)
            proc.join()
            elapsed = time.perf_counter() - t0
            return (Outcome(value=obj, elapsed=elapsed) if kind == "ok"
                    else Outcome(error=obj, elapsed=elapsed))
        return Outcome(timed_out=True, elapsed=time.perf_counter() - t0)
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
            proc.join()


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
