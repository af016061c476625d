"""The verifier: numeric backprop limit on random graphs, wrong laws, stability, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare import Action, Constraint, Problem
from cognitive_action.declare import symbols as S
from cognitive_action.errors import DeclarationError
from cognitive_action.verify.checks import (
    check_backprop_numeric,
    check_initial_conditions,
    check_stability,
    verify,
)
from cognitive_action.verify.laws import feedback_alignment, sign_flipped
from cognitive_action.verify.pytest_helpers import (
    VerificationError,
    assert_backprop_limit,
    assert_full_rank,
)
from cognitive_action.verify.reference import random_feedforward

theta, c = S.parameters("theta c")


def _weighted(net):
    return net.problem(weight=sp.exp(theta * S.t), parameters=[theta])


@pytest.fixture(scope="module")
def skip_net():
    return _weighted(random_feedforward(40, 4, density=0.3, seed=2))


@pytest.mark.parametrize("net", [ca.layered([3, 6, 5, 2]),
                                 random_feedforward(30, 3, skip=False, seed=5),
                                 random_feedforward(40, 4, density=0.3, seed=2)],
                         ids=["layered", "random-layered", "skip-connections"])
def test_numeric_backprop_limit_matches_autodiff_and_differences(net):
    checks = {c.name: c for c in check_backprop_numeric(_weighted(net), seed=3, gamma=0.5)}
    assert checks["backprop.numeric.multipliers"].value <= 1e-9
    assert checks["backprop.numeric.weights"].value <= 1e-9
    assert checks["backprop.numeric.finite_differences"].value <= 1e-6
    assert checks["backprop.numeric.finite_differences"].details["ad_vs_fd"] <= 1e-6
    assert all(r["angle_deg"] < 1e-5 and r["sign_agreement"] == 1.0
               for r in checks["backprop.numeric.layers"].details["layers"])


def test_sign_flipped_law_fails_with_180_degrees_in_every_layer(skip_net):
    checks = {c.name: c for c in check_backprop_numeric(skip_net, law=sign_flipped())}
    assert checks["backprop.numeric.multipliers"].status == "pass"  # deltas untouched
    assert checks["backprop.numeric.weights"].status == "fail"
    assert checks["backprop.numeric.weights"].value == pytest.approx(2.0, rel=1e-9)
    layers = checks["backprop.numeric.layers"].details["layers"]
    assert all(r["angle_deg"] == pytest.approx(180.0) for r in layers)
    assert all(r["sign_agreement"] == 0.0 for r in layers)


def test_feedback_alignment_fails_hidden_layers_but_not_the_output_layer():
    net = ca.layered([4, 8, 8, 3])
    checks = {c.name: c for c in check_backprop_numeric(_weighted(net),
                                                        law=feedback_alignment(seed=7))}
    assert checks["backprop.numeric.weights"].status == "fail"
    layers = {r["layer"]: r for r in checks["backprop.numeric.layers"].details["layers"]}
    # Weights into the output layer see the exact output delta: no error there.
    assert layers[3]["angle_deg"] < 1e-6
    # Hidden layers receive the error through random B instead of W.
    assert layers[1]["angle_deg"] > 1.0 and layers[2]["angle_deg"] > 1.0
    with pytest.raises(VerificationError, match="per layer"):
        assert_backprop_limit(_weighted(net), law=feedback_alignment(seed=7))


def test_verify_report_chain_passes_with_table_json_and_exit_code():
    report = verify(_weighted(ca.chain(3)), seed=2)
    assert report.exit_code == 0, str(report)
    names = {c.name for c in report.checks}
    assert {"rank", "backprop.symbolic", "backprop.numeric.multipliers",
            "convergence.mass_ratio", "initial_conditions"} <= names
    assert report["convergence.mass_ratio"].value == pytest.approx(1.0, abs=0.1)
    data = json.loads(report.to_json())
    assert data["exit_code"] == 0 and len(data["checks"]) == len(report.checks)
    assert "backprop.symbolic" in str(report)


def test_verify_with_eq15_formula_fails_with_exit_code_one():
    x1, x2, w21, w32 = (S.symbol(n) for n in ("x1", "x2", "w2_1", "w3_2"))
    g = S.symbol("gamma")
    from cognitive_action.derive.limits import GAMMA
    assert g.name == GAMMA.name
    printed = {S.dot(w21): -(1 - sp.tanh(w21 * x1) ** 2) * S.symbol("delta_G2") * x1 / GAMMA,
               S.dot(w32): -(1 - sp.tanh(w32 * x2) ** 2) * S.symbol("delta_G3") * x2 / GAMMA}
    report = verify(_weighted(ca.chain(3)), formulas={"eq15": printed},
                    skip=["convergence", "backprop.numeric"])
    assert report.exit_code == 1
    assert report["formula.eq15"].details["opposite_sign"] == ["w2_1_dot", "w3_2_dot"]


def test_stability_flags_eq20_as_anti_stable_with_eigenvalues_plus_c():
    p = ca.chain(4, speed=c).problem(parameters=[])
    chk = check_stability(p, values={"c": 2.5, "m_x": 0.3, "m_W": 0.7}, seed=1)
    eig = np.array([complex(e) for e in chk.details["eigenvalues"]])
    # design.md: delta_dot = c (I - (s'W)^T) delta, s'W nilpotent: every eigenvalue is +c.
    assert np.allclose(eig, 2.5, atol=1e-9)
    assert chk.status == "fail" and "adjoint" in chk.message and "relaxation" in chk.message


def test_stability_with_time_weight_shifts_eigenvalues_by_minus_theta():
    p = ca.chain(3, speed=c).problem(weight=sp.exp(theta * S.t), parameters=[theta])
    chk = check_stability(p, values={"c": 2.5, "theta": 4.0, "m_x": 0.3, "m_W": 0.7})
    eig = np.array([complex(e) for e in chk.details["eigenvalues"]])
    assert np.allclose(eig, 2.5 - 4.0, atol=1e-9)  # c^-1 (nu_dot + theta nu) in the EL rows
    assert chk.status == "pass"


def test_initial_conditions_check_names_violations():
    p = _weighted(ca.chain(2, "identity"))
    good = {"x1": 2.0, "x2": 6.0, "w2_1": 3.0, "x1_dot": 0.0, "x2_dot": 0.0, "w2_1_dot": 0.0,
            "e1": 2.0, "e1_dot": 0.0, "theta": 1.0, "m_x": 1.0, "m_W": 1.0, "y2": 0.0}
    assert check_initial_conditions(p, good).status == "pass"
    bad = check_initial_conditions(p, good | {"x2_dot": 1.0})
    assert bad.status == "fail" and "dG2/dt" in bad.details["violated"]
    assert bad.value == pytest.approx(1.0)


def test_rank_deficiency_and_bad_input():
    q1, q2 = S.coordinates("q1 q2")
    p = Problem(Action([q1, q2], masses=1), [Constraint(q1 + q2, name="A"),
                                             Constraint(2 * q1 + 2 * q2, name="B")])
    with pytest.raises(VerificationError, match="dependent constraints B"):
        assert_full_rank(p)
    assert verify(p).exit_code == 1
    assert_full_rank(_weighted(ca.xor()))
    with pytest.raises(DeclarationError):
        verify("not a problem")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("skip", [False, True], ids=["layered", "skip-connections"])
def test_numeric_backprop_limit_at_200_neurons(skip):
    net = (random_feedforward(200, 10, density=0.15, seed=11) if skip
           else ca.layered([20, 60, 60, 60]))
    checks = {c.name: c for c in check_backprop_numeric(_weighted(net), seed=4)}
    assert checks["backprop.numeric.multipliers"].value <= 1e-9
    assert checks["backprop.numeric.weights"].value <= 1e-9
    assert checks["backprop.numeric.finite_differences"].value <= 1e-6
