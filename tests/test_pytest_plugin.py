"""The pytest plugin's fixtures, used as a user's suite would use them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sympy as sp

from cognitive_action.declare import symbols as S
from cognitive_action.verify import VerificationError
from cognitive_action.verify.laws import sign_flipped


def test_shipped_problem_loads_by_name(shipped_problem):
    spec = shipped_problem("chain3")
    assert spec.name == "chain3"
    assert spec.network is not None and len(spec.network.order) == 3


def test_random_network_is_seeded_per_test_and_per_call(random_network):
    a, b = random_network(10), random_network(10)
    assert a.is_feedforward and b.is_feedforward
    assert set(a.graph.edges) != set(b.graph.edges)  # successive calls differ
    again = random_network(10, seed=0)
    assert set(again.graph.edges) == set(random_network(10, seed=0).graph.edges)


def test_verifier_passes_derived_law_and_fails_sign_flipped(random_network,
                                                           backprop_verifier):
    theta, = S.parameters("theta")
    net = random_network(8, skip=True)
    problem = net.problem(weight=sp.exp(theta * S.t), parameters=[theta])
    backprop_verifier.full_rank(problem)
    backprop_verifier.backprop_limit(problem, symbolic=False)   # against CasADi AD and FD
    with pytest.raises(VerificationError, match="180"):
        backprop_verifier.backprop_limit(problem, law=sign_flipped(), symbolic=False)


def test_plugin_is_registered_for_any_suite(tmp_path):
    """A fresh suite outside the project sees the fixtures with no import or conftest."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""
        def test_uses_fixtures(shipped_problem, random_network, backprop_verifier):
            assert shipped_problem("xor").network is not None
            assert random_network(5).is_feedforward
    """))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_user.py")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout
