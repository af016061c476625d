"""Planted wrong laws: a defect in one layer fails ``backprop.numeric`` with a per-layer
table whose failing rows are exactly the planted layer."""

from __future__ import annotations

import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import symbols as S
from cognitive_action.verify.checks import check_backprop_numeric
from cognitive_action.verify.laws import LawInput, LawRates, as_learning_law, chain_rule
from cognitive_action.verify.reference import depths, random_feedforward

theta, = S.parameters("theta")
RTOL = 1e-9


def _weighted(net):
    return net.problem(weight=sp.exp(theta * S.t), parameters=[theta])


def sign_flip_at(layer):
    """Backprop, with the weight rates into ``layer`` negated."""
    def law(given: LawInput) -> LawRates:
        d = depths(given.network)
        delta = chain_rule(given)
        rates = given.local_rates(delta)
        return LawRates(delta, {(k, j): -r if d[j] == layer else r
                                for (k, j), r in rates.items()})
    law.__name__ = f"sign_flip_at({layer})"
    return law


def halved_at(layer, propagate=False):
    """Backprop with the deltas of ``layer`` halved; with ``propagate`` the halved
    deltas are sent on down (every layer below is halved too)."""
    def law(given: LawInput) -> LawRates:
        net, d = given.network, depths(given.network)
        delta = {}
        for k in reversed(net.order):
            v = given.error[k] + sum(given.weights[k, j] * given.slope[j] * delta[j]
                                     for j in net.graph.successors(k))
            delta[k] = v / 2 if d[k] == layer else v
        if not propagate:
            exact = chain_rule(given)
            delta = {k: exact[k] / 2 if d[k] == layer else exact[k] for k in exact}
        return LawRates(delta, given.local_rates(delta))
    law.__name__ = f"halved_at({layer}, propagate={propagate})"
    return law


def shifted_down(layer):
    """Wrong layer order: the neurons of ``layer - 1`` use the deltas of ``layer``
    (position by position; both layers have the same width)."""
    def law(given: LawInput) -> LawRates:
        d = depths(given.network)
        delta = chain_rule(given)
        upper = [j for j in given.network.order if d[j] == layer]
        lower = [j for j in given.network.order if d[j] == layer - 1]
        assert len(upper) == len(lower)
        wrong = dict(delta) | {lo: delta[up] for lo, up in zip(lower, upper)}
        return LawRates(wrong, given.local_rates(wrong))
    law.__name__ = f"shifted_down({layer})"
    return law


def _table(problem, law, seed=1):
    checks = {c.name: c for c in check_backprop_numeric(problem, law=as_learning_law(law),
                                                        seed=seed)}
    layers = checks["backprop.numeric.layers"]
    assert layers.status == "fail"
    assert checks["backprop.numeric.weights"].status == "fail"
    rows = {r["layer"]: r for r in layers.details["layers"]}
    failing = {k for k, r in rows.items() if r["relative_error"] > RTOL}
    return checks, rows, failing


LAYERED = _weighted(ca.layered([3, 5, 5, 5, 2]))          # weight layers 1-4


@pytest.mark.parametrize("layer", [1, 2, 3, 4])
def test_sign_flip_in_one_layer_is_pinpointed(layer):
    checks, rows, failing = _table(LAYERED, sign_flip_at(layer))
    assert failing == {layer}
    assert rows[layer]["angle_deg"] == pytest.approx(180.0)
    assert rows[layer]["sign_agreement"] == 0.0
    assert rows[layer]["relative_error"] == pytest.approx(2.0)
    assert all(r["angle_deg"] < 1e-6 for k, r in rows.items() if k != layer)
    assert checks["backprop.numeric.multipliers"].status == "pass"   # deltas are exact
    assert f"layer {layer}" in checks["backprop.numeric.layers"].message


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_halved_deltas_are_pinpointed_by_the_relative_error(layer):
    """The angle is 0 (a halved vector is parallel): only the relative error shows it."""
    checks, rows, failing = _table(LAYERED, halved_at(layer))
    assert failing == {layer}
    assert rows[layer]["relative_error"] == pytest.approx(0.5, rel=1e-9)
    assert rows[layer]["angle_deg"] < 1e-6 and rows[layer]["sign_agreement"] == 1.0
    assert checks["backprop.numeric.multipliers"].status == "fail"


def test_halved_deltas_sent_on_down_fail_from_the_planted_layer_down():
    _, rows, failing = _table(LAYERED, halved_at(3, propagate=True))
    assert failing == {1, 2, 3}
    assert all(rows[k]["relative_error"] == pytest.approx(0.5, rel=1e-9) for k in failing)
    assert rows[4]["relative_error"] <= RTOL


@pytest.mark.parametrize("layer", [2, 3])
def test_wrong_layer_order_is_pinpointed(layer):
    """Deltas of layer ``l`` used for layer ``l - 1``: the weights into ``l - 1`` fail."""
    _, rows, failing = _table(LAYERED, shifted_down(layer))
    assert failing == {layer - 1}
    assert rows[layer - 1]["relative_error"] > 0.1


def test_planted_defect_on_a_net_with_skip_arcs():
    """Depth-based layers on a DAG with skip arcs: still exactly the planted depth."""
    problem = _weighted(random_feedforward(20, 3, density=0.3, seed=4))
    d = depths(problem.network)
    target = sorted(set(d.values()))[2]
    _, rows, failing = _table(problem, halved_at(target))
    assert failing == {target}
    assert rows[target]["relative_error"] == pytest.approx(0.5, rel=1e-9)
