"""Orders of convergence measured where they are asymptotic.

A fitted order of convergence means something only on a range of the parameter where
the error already behaves like ``C p^k``: before that (a large network whose error is
still pre-asymptotic at ``p = 10⁻¹``) the slope of a fixed range is wrong, and a check
with a fixed range fails a correct law. :func:`search_order` therefore chooses the range
itself. It measures the error on an initial sequence of parameters tending to the limit
``p → 0``, fits the order on a sliding window of the last ``window`` points
(:func:`~cognitive_action.verify.metrics.convergence_order`, with its confidence
interval) and extends the sequence geometrically toward the limit until

- two successive windows agree (each order within the other's confidence interval, or
  the two within ``precision/2``) and the last one is precise (half-width of its interval at most
  ``precision``): the order is **stable** and the verdict is taken on that window;
- the errors reach round-off (below ``floor``) before that: **round-off**, no verdict;
- ``max_points`` evaluations were spent: **never stabilised**, no verdict;
- every error is at round-off from the start: the quantity is **exact** at every
  parameter (an error ``0 = O(p^k)`` for every ``k``).

:func:`order_check` turns the result into a :class:`~cognitive_action.verify.report.Check`:
``pass``/``fail`` only for a stable (or exact) order, ``inconclusive`` otherwise, always
with the fitted order, its confidence interval and the range used. Every convergence
check of the verifier (``convergence.mass_ratio``, the simulated ``θ → ∞`` and
``m_x → 0`` checks, ``convergence.speed``) goes through these two functions.

Examples
--------
>>> s = search_order(lambda p: 3.0 * p * (1.0 + 20.0 * p), [1e-1, 1e-2, 1e-3, 1e-4])
>>> s.status, round(s.fit.order, 2), [float(f"{p:.3g}") for p in s.range]
('stable', 1.0, [0.001, 1e-06])
>>> order_check("demo", s, expected=1.0, order_tol=0.1, what="toy").status
'pass'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cognitive_action.errors import DeclarationError
from cognitive_action.verify.metrics import OrderFit, convergence_order
from cognitive_action.verify.report import Check

__all__ = ["OrderSearch", "search_order", "order_check", "SEARCH_STATUSES"]

#: Outcomes of :func:`search_order`.
SEARCH_STATUSES = ("stable", "exact", "round_off", "never_stabilised")


@dataclass(frozen=True)
class OrderSearch:
    """The errors measured by :func:`search_order` and the window the order was taken on.

    Attributes
    ----------
    parameters, errors
        Every parameter evaluated (in the order evaluated, toward the limit) and its error.
    status
        One of :data:`SEARCH_STATUSES`.
    fit
        The fit on the window used (the last window fitted), ``None`` when no window of
        three points above round-off exists.
    window
        ``(start, stop)`` indices into ``parameters`` of that window.
    fits
        The successive window fits, oldest first.
    reason
        One sentence: why the search stopped.
    """

    parameters: np.ndarray
    errors: np.ndarray
    status: str
    fit: OrderFit | None
    window: tuple[int, int]
    fits: tuple[OrderFit, ...] = field(default=())
    reason: str = ""

    @property
    def range(self) -> tuple[float, float] | None:
        """``(first, last)`` parameter of the window used."""
        i, j = self.window
        if j - i < 1:
            return None
        return float(self.parameters[i]), float(self.parameters[j - 1])

    @property
    def half_width(self) -> float:
        """Half-width of the confidence interval of :attr:`fit` (``inf`` without one)."""
        if self.fit is None:
            return float("inf")
        return (self.fit.ci[1] - self.fit.ci[0]) / 2.0


def _half(fit: OrderFit) -> float:
    return (fit.ci[1] - fit.ci[0]) / 2.0


def _agree(a: OrderFit, b: OrderFit, resolution: float) -> bool:
    """Each order within the other's confidence interval, or the two within
    ``resolution`` (a near-exact power law's intervals shrink faster than the drift
    left by its pre-asymptotic terms)."""
    return abs(a.order - b.order) <= max(min(_half(a), _half(b)), resolution)


def search_order(error_at: Callable[[float], float], initial: Sequence[float], *,
                 window: int = 4, max_points: int = 12, precision: float = 0.1,
                 floor: float = 1e-12, confidence: float = 0.95) -> OrderSearch:
    """Measure the error toward ``p → 0`` until its fitted order is stable.

    Parameters
    ----------
    error_at
        ``p ↦ error`` (a non-negative number, e.g. a relative error).
    initial
        At least three distinct positive parameters, decreasing toward the limit; the
        sequence is continued geometrically with the ratio of its last two entries.
    window
        Number of points of a fit (at least 3).
    max_points
        Largest number of evaluations (the bound on the run time).
    precision
        Largest half-width of the confidence interval of a stable order.
    floor
        Errors at or below it are round-off: they end the search and are never fitted.
    confidence
        Level of the confidence intervals.

    Returns
    -------
    OrderSearch

    Raises
    ------
    DeclarationError
        Bad parameters (fewer than three, not positive, not decreasing, a window under 3)
        or an error that is negative or not finite.

    Examples
    --------
    A power law that wobbles forever never stabilises:

    >>> s = search_order(lambda p: p * (1.5 + np.sin(np.log(p) / 2)), [1e-1, 1e-2, 1e-3],
    ...                  max_points=8)
    >>> s.status, len(s.parameters)
    ('never_stabilised', 8)
    """
    p0 = np.asarray(list(initial), dtype=float).ravel()
    if p0.size < 3 or np.any(~np.isfinite(p0)) or np.any(p0 <= 0):
        raise DeclarationError("a convergence order needs at least three positive "
                               f"parameters, got {p0.tolist()}",
                               fix="pass e.g. (1e-1, 1e-2, 1e-3)")
    if np.any(np.diff(p0) >= 0):
        raise DeclarationError(f"the parameters {p0.tolist()} do not decrease toward the limit",
                               fix="order them from far to near the limit p -> 0")
    if window < 3:
        raise DeclarationError(f"a window of {window} points has no confidence interval",
                               fix="use window >= 3")
    max_points = max(int(max_points), p0.size)
    ratio = p0[-1] / p0[-2]
    params: list[float] = []
    errors: list[float] = []
    fits: list[OrderFit] = []

    def measure(p: float) -> float:
        e = float(error_at(float(p)))
        if not np.isfinite(e) or e < 0:
            raise DeclarationError(f"the error at p = {p:g} is {e}",
                                   fix="the error must be a non-negative number")
        params.append(float(p))
        errors.append(e)
        return e

    def result(status: str, reason: str, fit: OrderFit | None, win: tuple[int, int]
               ) -> OrderSearch:
        return OrderSearch(np.array(params), np.array(errors), status, fit, win,
                           tuple(fits), reason)

    prev: OrderFit | None = None
    last_win = (0, 0)
    queue = list(p0)
    while True:
        p = queue.pop(0) if queue else params[-1] * ratio
        e = measure(p)
        n = len(params)
        if e <= floor:
            above = [i for i, v in enumerate(errors) if v > floor]
            if not above:
                if queue:
                    continue
                return result("exact", f"every error is at round-off (<= {floor:g}): the "
                              "quantity equals its limit at every parameter", None, (0, n))
            fit = fits[-1] if fits else None
            return result("round_off", f"the error reached round-off (<= {floor:g}) at "
                          f"p = {p:g} before the fitted order stabilised", fit, last_win)
        if queue:
            continue
        k = min(window, n)
        if k >= 3 and all(v > floor for v in errors[n - k:]):
            fit = convergence_order(params[n - k:], errors[n - k:], confidence=confidence)
            fits.append(fit)
            last_win = (n - k, n)
            if (k == window and prev is not None and _agree(fit, prev, precision / 2)
                    and _half(fit) <= precision):
                return result("stable", f"successive fits agree within their "
                              f"{confidence:.0%} intervals (half-width {_half(fit):.2g})",
                              fit, last_win)
            prev = fit if k == window else prev
        if n >= max_points:
            return result("never_stabilised", f"the fitted order did not stabilise within "
                          f"{max_points} parameters (down to p = {params[-1]:g})",
                          fits[-1] if fits else None, last_win)


def order_check(name: str, search: OrderSearch, *, expected: float, order_tol: float,
                what: str, parameter: str = "p",
                details: Mapping[str, Any] | None = None) -> Check:
    """The :class:`~cognitive_action.verify.report.Check` of an :class:`OrderSearch`.

    Parameters
    ----------
    name
        Name of the check.
    search
        The measured errors (:func:`search_order`).
    expected, order_tol
        A stable order passes when ``|order − expected| ≤ order_tol``, fails otherwise.
    what
        What converges to what, for the message.
    parameter
        How to print the parameter ``p`` tending to 0 (``1/c``, ``m_x/m_W``).
    details
        Extra data for the check's details.

    Returns
    -------
    Check
        ``pass``/``fail`` for a stable order or an exact quantity (value: the fitted
        order, tolerance: ``expected``); ``inconclusive`` when the order never
        stabilised or round-off came first. ``details`` hold every parameter and error,
        the range used, the fitted order's confidence interval and R², and the orders
        of the successive windows.
    """
    fit = search.fit
    rng = search.range
    rng_txt = f" on {parameter} in [{rng[1]:.3g}, {rng[0]:.3g}]" if rng else ""
    data = dict(details or {}) | {
        "parameter": parameter, "parameters": search.parameters, "errors": search.errors,
        "search": search.status, "reason": search.reason, "range": rng,
        "window": list(search.window), "window_orders": [f.order for f in search.fits],
        "order_tolerance": order_tol, "expected": expected,
        "ci": fit.ci if fit else None, "r_squared": fit.r_squared if fit else None,
        "confidence": fit.confidence if fit else None}
    if search.status == "exact":
        return Check(name, "pass", None, expected,
                     f"{what}: exact at every {parameter} (errors <= round-off)", data)
    assert fit is not None or search.status != "stable"
    fit_txt = (f"error ~ ({parameter})^{fit.order:.3f}, {fit.confidence:.0%} CI "
               f"[{fit.ci[0]:.3f}, {fit.ci[1]:.3f}]{rng_txt}" if fit else "no fit")
    if search.status == "stable":
        ok = abs(fit.order - expected) <= order_tol
        return Check(name, "pass" if ok else "fail", fit.order, expected,
                     f"{what}: {fit_txt}" + ("" if ok else
                                              f"; expected order {expected:g}"), data)
    head = "never stabilised" if search.status == "never_stabilised" else "no stable order"
    return Check(name, "inconclusive", fit.order if fit else None, expected,
                 f"{what}: {head}: {search.reason}; last {fit_txt}", data)
