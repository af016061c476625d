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


def test_unknown_law_name_is_a_problem_file_error_at_verify_time(tmp_path):
    """The loader checks the form only (problem_files may not import the registry,
    which lives in verify); the name is looked up by verify_spec, with file:field."""
    from cognitive_action.errors import ProblemFileError
    from cognitive_action.problem_files.loader import load_problem
    from cognitive_action.workflow import verify_spec
    path = tmp_path / "fa.toml"
    path.write_text(_FILE.replace("{seed}", "0").replace("feedback_alignment", "hebbian"))
    spec = load_problem(path)
    with pytest.raises(ProblemFileError) as info:
        verify_spec(spec)
    assert info.value.field == "verify.law" and str(path) in str(info.value)
    assert "hebbian" in str(info.value)
    assert all(n in info.value.fix for n in ("derived", "feedback_alignment",
                                             "direct_feedback_alignment", "sign_flipped"))
    res = CliRunner().invoke(main, ["verify", str(path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "verify.law" in res.output


def test_module_path_is_refused_when_the_file_is_loaded(tmp_path):
    from cognitive_action.errors import ProblemFileError
    from cognitive_action.problem_files.loader import load_problem
    path = tmp_path / "fa.toml"
    path.write_text(_FILE.replace("{seed}", "0").replace(
        '"feedback_alignment"', '"os.path:join"'))
    with pytest.raises(ProblemFileError, match="never a module path") as info:
        load_problem(path)
    assert info.value.field == "verify.law"


# -- the public protocol and the registry -----------------------------------------------
from cognitive_action.verify.laws import (  # noqa: E402
    ENTRY_POINT_GROUP,
    LawInput,
    LawRates,
    UnknownLawError,
    as_learning_law,
    available_laws,
    backprop_rates,
    chain_rule,
    direct_feedback_alignment,
    make_law,
    register_law,
    unregister_law,
)


def _capture(store):
    def law(given: LawInput) -> LawRates:
        store.append(given)
        delta = chain_rule(given)
        return LawRates(delta=delta, w_dot=given.local_rates(delta))
    return law


def test_law_input_and_chain_rule_against_casadi_ad():
    """What a law is given, at the verifier's random state of a net with skip arcs:
    the chain rule of the protocol gives CasADi's deltas and gradient."""
    from cognitive_action.verify.reference import random_feedforward
    problem = _weighted(random_feedforward(14, 3, density=0.4, seed=1))
    seen = []
    checks = {c.name: c for c in check_backprop_numeric(
        problem, law=as_learning_law(_capture(seen)), seed=2)}
    assert checks["backprop.numeric.multipliers"].value < 1e-12
    assert checks["backprop.numeric.weights"].value < 1e-12
    given = seen[0]
    net = given.network
    assert list(given.weights) == list(net.graph.edges)
    st = random_state(problem, seed=2)
    assert [given.x[j] for j in net.order] == pytest.approx(st.state.x, abs=1e-15)
    for j in net.order:
        if j not in net.inputs:
            a = sum(given.weights[k, j] * given.x[k] for k in net.graph.predecessors(j))
            assert given.preactivation[j] == pytest.approx(a, abs=1e-14)
            assert given.slope[j] == pytest.approx(1 - np.tanh(a) ** 2, abs=1e-14)
    # squared error of the outputs: -dV/dx_o = y_o - x_o, zero elsewhere
    for j in net.order:
        want = st.values[f"y{j}"] - given.x[j] if j in net.outputs else 0.0
        assert given.error[j] == pytest.approx(want, abs=1e-14)
    exact = given.backprop()
    assert set(exact.w_dot) == set(given.weights)
    assert given.inputs == {j: st.values[f"e{j}"] for j in net.inputs}
    assert given.targets == {o: st.values[f"y{o}"] for o in net.outputs}


def test_a_user_law_at_the_users_weights_keyed_in_their_order():
    net = ca.layered([2, 2, 1])
    weights = {(4, 5): 0.3, (1, 3): -0.5, (2, 4): 0.8, (3, 5): -1.1, (2, 3): 0.4,
               (1, 4): 0.2}
    vals = {"e1": 0.5, "e2": -1.0, "y5": 0.25}
    mine = backprop_rates(net, weights, vals, gamma=2.0, law=_capture([]))
    ref = backprop_rates(net, weights, vals, gamma=2.0)
    assert list(mine.w_dot) == list(weights)
    assert [mine.w_dot[a] for a in weights] == pytest.approx(
        [ref.w_dot[a] for a in weights], rel=1e-9)


def test_registered_user_law_is_named_from_a_file(tmp_path):
    """A correct user law passes from a file, a wrong one fails; both by name only."""
    def halved(given):
        delta = chain_rule(given)
        return LawRates(delta=delta,
                        w_dot={a: r / 2 for a, r in given.local_rates(delta).items()})
    register_law("test_exact", lambda seed=0: _capture([]))
    register_law("test_halved", lambda seed=0: halved)
    try:
        assert {"test_exact", "test_halved"} <= set(available_laws())
        with pytest.raises(Exception, match="already registered"):
            register_law("test_exact", lambda seed=0: halved)
        codes = {}
        for name in ("test_exact", "test_halved"):
            path = tmp_path / f"{name}.toml"
            path.write_text(_FILE.replace("{seed}", "1").replace("feedback_alignment", name))
            res = CliRunner().invoke(main, ["verify", str(path), "--json"])
            codes[name] = res.exit_code
            data = json.loads(res.output)
            w = next(c for c in data["checks"] if c["name"] == "backprop.numeric.weights")
            assert w["details"]["law"] == name
            if name == "test_halved":
                assert w["value"] == pytest.approx(0.5, rel=1e-9)
        assert codes == {"test_exact": 0, "test_halved": 1}
    finally:
        unregister_law("test_exact")
        unregister_law("test_halved")
    assert "test_exact" not in available_laws()


def test_unknown_name_lists_the_known_laws():
    with pytest.raises(UnknownLawError) as info:
        make_law("hebbian")
    assert "hebbian" in str(info.value)
    assert "feedback_alignment" in info.value.fix and "register_law" in info.value.fix
    with pytest.raises(Exception, match="not a law name"):
        register_law("pkg.module:law", lambda seed=0: None)


def test_a_law_from_an_entry_point(tmp_path, monkeypatch):
    """An installed distribution declares ``[cognitive_action.laws] half = mylaws:half``;
    the law is found by name and imported only when asked for."""
    (tmp_path / "mylaws_for_test.py").write_text(
        "from cognitive_action.verify.laws import LawRates, chain_rule\n"
        "def half(seed=0):\n"
        "    def half_law(given):\n"
        "        d = chain_rule(given)\n"
        "        return LawRates(delta=d, w_dot={a: r / 2 for a, r in "
        "given.local_rates(d).items()})\n"
        "    return half_law\n")
    dist = tmp_path / "mylaws_for_test-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylaws-for-test\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhalf_from_ep = mylaws_for_test:half\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "half_from_ep" in available_laws()
    law = make_law("half_from_ep", seed=4)
    checks = {c.name: c for c in check_backprop_numeric(
        _weighted(ca.layered([2, 3, 1])), law=law)}
    assert checks["backprop.numeric.multipliers"].status == "pass"
    assert checks["backprop.numeric.weights"].value == pytest.approx(0.5, rel=1e-9)


def test_direct_feedback_alignment_is_not_backprop_but_exact_at_the_output():
    problem = _weighted(ca.layered([4, 8, 8, 3]))
    checks = {c.name: c for c in check_backprop_numeric(
        problem, law=direct_feedback_alignment(seed=2), seed=2)}
    assert checks["backprop.numeric.weights"].status == "fail"
    layers = {r["layer"]: r for r in checks["backprop.numeric.layers"].details["layers"]}
    assert layers[3]["relative_error"] < 1e-9
    assert layers[1]["relative_error"] > 0.1 and layers[2]["relative_error"] > 0.1
    assert make_law("direct_feedback_alignment", seed=2).__name__ == \
        "direct_feedback_alignment(seed=2)"


def test_a_law_from_a_file_gets_the_alignment_over_training_check(tmp_path):
    path = tmp_path / "fa.toml"
    path.write_text(_FILE.replace("{seed}", "0").replace("[3, 4, 2]", "[4, 16, 16, 3]"))
    res = CliRunner().invoke(main, ["verify", str(path), "--json"])
    assert res.exit_code == 1, res.output                 # not backprop ...
    data = json.loads(res.output)
    align = next(c for c in data["checks"] if c["name"] == "alignment.training")
    assert align["status"] == "pass" and align["value"] < 90   # ... but it learns
    steps = sorted({r["step"] for r in align["details"]["layers"]})
    assert steps[0] == 0 and steps[-1] == 240
    path.write_text(_FILE.replace("{seed}", "0").replace(
        '"initial_conditions"]', '"initial_conditions", "alignment"]'))
    res = CliRunner().invoke(main, ["verify", str(path), "--json"])
    skipped = {c["name"]: c for c in json.loads(res.output)["checks"]}["alignment.training"]
    assert skipped["status"] == "skip" and "by request" in skipped["message"]
