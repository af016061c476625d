"""Ctrl-C (``SIGINT``) that long runs can see, and that CasADi cannot swallow.

CasADi checks Python's signals while it evaluates functions, and turns a
``KeyboardInterrupt`` raised there into a failure of the function (an integrator
reports ``CV_RHSFUNC_FAIL``); the interrupt itself is gone. A run would then report a
blow-up, or carry on and exit as if nothing happened. :func:`handling` installs a
handler that first *records* the request (:func:`requested`), so the code around a
CasADi call can tell an interrupt from a failure, and then raises
``KeyboardInterrupt`` as Python's default handler does, except inside
:func:`deferred`, where a run polls at safe points (between chunks of a simulation,
while a checkpoint is written). A second Ctrl-C always raises.

The handler is installed only in the main thread and only over Python's default
handler (or the command line's start-up handler, which it restores on exit): code that
installed its own keeps it.

Examples
--------
>>> import os, signal
>>> with handling():
...     with deferred():
...         os.kill(os.getpid(), signal.SIGINT)  # recorded, not raised here
...         requested()
True
>>> requested()  # the outermost handling() forgets it on exit
False
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["handling", "deferred", "raising", "requested", "raise_if_requested",
           "quiet_startup"]


class _State:
    depth = 0  # nested handling() blocks
    deferring = 0  # nested deferred() blocks
    count = 0  # Ctrl-C received while handling
    previous: object = None


_state = _State()


def requested() -> bool:
    """Whether Ctrl-C was pressed since the outermost :func:`handling` began."""
    return _state.count > 0


def raise_if_requested() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed (a safe point of a run)."""
    if requested():
        raise KeyboardInterrupt


def _handler(signum, frame) -> None:
    _state.count += 1
    if _state.deferring and _state.count == 1:
        return  # the run polls requested() at its next safe point
    raise KeyboardInterrupt


def _startup_interrupt(signum, frame) -> None:
    """Ctrl-C while the command line starts: one line, exit 130 (no traceback)."""
    sys.stderr.write("interrupted (Ctrl-C)\n")
    sys.exit(130)


_startup_interrupt.cognitive_action_startup = True  # type: ignore[attr-defined]


def quiet_startup() -> None:
    """Make Ctrl-C before a command starts (while modules load and arguments are parsed)
    exit 130 with one line instead of a traceback of whatever was loading.

    Called when the package is imported by the ``cognitive-action`` program, never on an
    ``import`` from Python; :func:`handling`, entered by every command, takes over from
    it. (Python's own start-up, before the package is imported, is out of reach.)
    """
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _startup_interrupt)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Record Ctrl-C for the duration (re-entrant; a no-op outside the main thread or
    when someone else's handler is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        current = signal.getsignal(signal.SIGINT)
        # Python's default, or the command line's start-up handler (exit 130 quietly).
        if current is not signal.default_int_handler and not getattr(
                current, "cognitive_action_startup", False):
            yield
            return
        _state.previous = current
        _state.count = 0
        signal.signal(signal.SIGINT, _handler)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0:
            signal.signal(signal.SIGINT, _state.previous)
            _state.count = 0
            _state.deferring = 0


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, a first Ctrl-C only records the request (see :func:`requested`)."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Inside a :func:`deferred` block: raise at once again (around a long CasADi call,
    which the raise stops at its next check of the signals)."""
    saved = _state.deferring
    _state.deferring = 0
    try:
        yield
    finally:
        _state.deferring = saved


