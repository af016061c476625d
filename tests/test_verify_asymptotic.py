"""Orders of convergence measured where they are asymptotic (issue 12, item 2).

The references are closed-form error sequences (power laws with pre-asymptotic terms, a
wobbling non-power law, exact zeros) whose orders are known by construction, and, for
the mass-ratio check, CasADi AD backprop deltas at the check's own random state.
"""

from __future__ import annotations

import numpy as np
import pytest

import cognitive_action as ca
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.asymptotic import order_check, search_order
from cognitive_action.verify.checks import check_convergence
from cognitive_action.verify.laws import LawOutput, evaluate_at_ratio
from cognitive_action.verify.report import Report


def test_a_pre_asymptotic_power_law_is_followed_until_its_order_is_stable():
    """e(p) = p (1 + 30 p): local order 1 - 30p/(1 + 30p) < 1 on [1e-1, 1e-4] (the fit on
    the first four points is off by more than 0.1); toward p -> 0 it tends to 1."""
    err = lambda p: p * (1 + 30 * p)  # noqa: E731
    first = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    from cognitive_action.verify.metrics import convergence_order

    assert abs(convergence_order(first, err(first)).order - 1) > 0.1
    s = search_order(err, first)
    assert s.status == "stable"
    assert s.fit.order == pytest.approx(1.0, abs=0.01)
    assert s.range[1] < 1e-4 and s.fit.ci[0] <= s.fit.order <= s.fit.ci[1]
    assert np.allclose(s.errors, err(s.parameters), rtol=1e-15)
    # a geometric continuation of the given sequence
    assert np.allclose(s.parameters[1:] / s.parameters[:-1], 0.1)


def test_a_wobbling_error_never_stabilises():
    """e(p) = p (1.5 + sin(ln(p)/2)): local order 1 + cos(ln p/2)/(2(1.5 + sin(ln p/2)))
    swings between about 0.6 and 1.4 forever: no verdict, the data kept."""
    err = lambda p: p * (1.5 + np.sin(np.log(p) / 2))  # noqa: E731
    s = search_order(err, [1e-1, 1e-2, 1e-3, 1e-4], max_points=10, floor=1e-40)
    assert s.status == "never_stabilised" and len(s.parameters) == 10
    orders = [f.order for f in s.fits]
    assert max(orders) - min(orders) > 0.2
    check = order_check("wobble", s, expected=1.0, order_tol=0.1, what="wobble")
    assert check.status == "inconclusive" and check.passed
    assert "never stabilised" in check.message
    assert len(check.details["errors"]) == 10 and check.details["range"] is not None
    report = Report("demo", [check])
    assert report.exit_code == 0 and "inconclusive" in str(report)


def test_round_off_exact_and_wrong_orders():
    # round-off reached before two windows agree: no verdict
    s = search_order(lambda p: p * (1 + 30 * p), [1e-1, 1e-2, 1e-3], floor=1e-5)
    assert s.status == "round_off"
    check = order_check("r", s, expected=1.0, order_tol=0.1, what="r")
    assert check.status == "inconclusive" and "round-off" in check.message
    # exactly at the limit at every parameter: 0 = O(p^k), a pass
    s = search_order(lambda p: 0.0, [1e-1, 1e-2, 1e-3])
    assert s.status == "exact"
    assert order_check("e", s, expected=1.0, order_tol=0.1, what="e").status == "pass"
    # a stable order 2 where 1 is expected fails, order 1 passes
    s = search_order(lambda p: 5 * p**2, [1e-1, 1e-2, 1e-3, 1e-4])
    assert s.status == "stable" and s.fit.order == pytest.approx(2.0, abs=1e-9)
    assert order_check("q", s, expected=1.0, order_tol=0.1, what="q").status == "fail"
    assert order_check("q", s, expected=2.0, order_tol=0.1, what="q").status == "pass"


@pytest.mark.parametrize("initial, kwargs", [([1e-1, 1e-2], {}), ([1e-2, 1e-1, 1e-3], {}),
                                             ([1e-1, -1e-2, 1e-3], {}),
                                             ([1e-1, 1e-2, 1e-3], {"window": 2})])
def test_bad_requests(initial, kwargs):
    with pytest.raises(DeclarationError):
        search_order(lambda p: p, initial, **kwargs)
    with pytest.raises(DeclarationError):
        search_order(lambda p: float("nan"), [1e-1, 1e-2, 1e-3])


def test_mass_ratio_on_a_64_32_10_net_chooses_an_asymptotic_range():
    """The false fail of issue 12: at ratios 1e-1..1e-4 the fitted order is about 0.7
    (the net is not yet asymptotic there); the check extends the range toward
    m_x/m_W -> 0 and finds the expected order 1 (the ratio enters eq. 10 linearly)."""
    check = check_convergence(ca.layered([64, 32, 10]).problem())
    assert check.status == "pass", check.message
    assert check.value == pytest.approx(1.0, abs=0.05)
    lo, hi = check.details["ci"]
    assert lo <= check.value <= hi and hi - lo < 0.1
    assert check.details["window_orders"][0] < 0.8   # the fixed range's order
    first, last = check.details["range"]
    assert first <= 1e-3 and last < 1e-4
    assert "CI" in check.message and "m_x/m_W in [" in check.message


def _planted(power: float, wobble: bool = False):
    """eq. (10) evaluated at r**power (times a wobble): an error ~ r**power."""
    def evaluate(ns, state, values, gamma, r):
        rr = r ** power * ((1.5 + np.sin(np.log(r) / 2)) if wobble else 1.0)
        return evaluate_at_ratio(ns, state, values, gamma, rr)
    return evaluate


def test_a_law_converging_at_another_order_is_caught():
    """A law whose multipliers approach backprop like sqrt(r): stable order 1/2, a fail."""
    p = ca.layered([3, 4, 2]).problem()
    good = check_convergence(p)
    assert good.status == "pass" and good.value == pytest.approx(1.0, abs=0.05)
    bad = check_convergence(p, evaluate=_planted(0.5))
    assert bad.status == "fail", bad.message
    assert bad.value == pytest.approx(0.5, abs=0.05)
    wobbly = check_convergence(p, evaluate=_planted(1.0, wobble=True), max_points=10)
    assert wobbly.status == "inconclusive", wobbly.message
    assert wobbly.passed


def test_evaluate_output_type_is_the_law_output():
    p = ca.chain(3).problem()
    calls = []

    def evaluate(ns, state, values, gamma, r):
        calls.append(r)
        out = evaluate_at_ratio(ns, state, values, gamma, r)
        assert isinstance(out, LawOutput)
        return out
    check = check_convergence(p, evaluate=evaluate)
    assert check.status == "pass"
    assert calls == list(check.details["parameters"])
