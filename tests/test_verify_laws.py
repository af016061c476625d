"""Learning laws other than the derived one: feedback alignment is not backprop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import cognitive_action as ca
from cognitive_action.cli import main
from cognitive_action.declare import symbols as S
from cognitive_action.derive.network import derive_network
from cognitive_action.verify import metrics
from cognitive_action.verify.checks import check_backprop_numeric, random_state
from cognitive_action.verify.laws import feedback_alignment
from cognitive_action.verify.reference import casadi_gradients

theta, = S.parameters("theta")


def _weighted(net):
    return net.problem(weight=sp.exp(theta * S.t), parameters=[theta])


@pytest.mark.parametrize("sizes", [[3, 6, 5, 2], [4, 16, 16, 3]])
@pytest.mark.parametrize("seed", [0, 1, 3, 5])
def test_feedback_alignment_with_the_verifier_seed_is_not_backprop(sizes, seed):
    """Regression: with the same seed for the law and the random state, ``B`` was the
    verifier's ``W`` and feedback alignment passed as exact backprop (1.6e-14).

    The whole update is compared with the gradient by CasADi AD (independent of the
    law): its angle is strictly between 0 and 90 degrees (the output layer is exact,
    the hidden layers get the error through a random ``B``)."""
    problem = _weighted(ca.layered(sizes))
    law = feedback_alignment(seed=seed)
    checks = {c.name: c for c in check_backprop_numeric(problem, law=law, seed=seed)}
    assert checks["backprop.numeric.weights"].status == "fail"
    assert checks["backprop.numeric.weights"].value > 0.1
    assert checks["backprop.numeric.layers"].status == "fail"
    st = random_state(problem, seed=seed)
    out = law(derive_network(problem), st.state, st.values, 1.0)
    grad = -casadi_gradients(problem, st.state.w, st.values).grad_w
    angle = float(metrics.angle_degrees(out.w_dot, grad))
    assert 1.0 < angle < 90.0


_FILE = """
name = "fa"
parameters = { m_x = 0.001, m_W = 1.0, theta = 10.0 }
[network]
layers = [3, 4, 2]
[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"
[verify]
law = "feedback_alignment"
seed = {seed}
skip = ["rank", "backprop.symbolic", "convergence", "initial_conditions"]
"""


@pytest.mark.parametrize("seed", [0, 3])
def test_feedback_alignment_from_a_file_exits_one(tmp_path, seed):
    """The CLI gives the file's seed to the law and to the random state: it exited 0."""
    path = tmp_path / "fa.toml"
    path.write_text(_FILE.replace("{seed}", str(seed)))
    res = CliRunner().invoke(main, ["verify", str(path), "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    weights = next(c for c in data["checks"] if c["name"] == "backprop.numeric.weights")
    assert weights["status"] == "fail" and weights["value"] > 0.1


def test_feedback_matrices_come_from_their_own_stream():
    from cognitive_action.verify.laws import feedback_rng
    for seed in range(5):
        w = np.random.default_rng(seed).standard_normal(50)
        b = feedback_rng(seed).standard_normal(50)
        assert abs(np.corrcoef(w, b)[0, 1]) < 0.6
