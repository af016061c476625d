"""pytest fixtures for users' own suites (registered as the ``cognitive_action`` plugin).

Installing the package registers this module through the ``pytest11`` entry point, so
the fixtures below are available in any test suite without imports:

- ``shipped_problem``: a factory loading a problem file (a shipped name such as
  ``"xor"`` or a path) as a :class:`~cognitive_action.problem_files.loader.ProblemSpec`;
- ``random_network``: a factory of random feedforward networks (layered, or with
  arcs that skip layers) for property tests of a learning law, seeded per test;
- ``backprop_verifier``: the assertions :func:`assert_backprop_limit` and
  :func:`assert_full_rank` bundled with the test's seed.

A test that uses them::

    def test_my_law_reaches_backprop(random_network, backprop_verifier):
        net = random_network(12, skip=True)
        problem = net.problem(weight=sp.exp(theta * t), parameters=[theta])
        backprop_verifier.full_rank(problem)
        backprop_verifier.backprop_limit(problem, rtol=1e-9)

Disable the plugin with ``pytest -p no:cognitive_action``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["BackpropVerifier", "backprop_verifier", "random_network", "shipped_problem"]


def _test_seed(request: pytest.FixtureRequest) -> int:
    """A seed stable across runs and distinct per test (CRC32 of the test's node id)."""
    return zlib.crc32(request.node.nodeid.encode()) % 2**31


@pytest.fixture
def shipped_problem() -> Callable[[str | Path], object]:
    """Load a problem file: ``shipped_problem("xor")`` or ``shipped_problem(path)``.

    Returns a :class:`~cognitive_action.problem_files.loader.ProblemSpec` (``.problem``,
    ``.values``, ``.network``, settings). Bad files raise
    :class:`~cognitive_action.errors.ProblemFileError` naming the field and the fix.
    """
    from cognitive_action.problem_files.loader import load_problem

    return load_problem


@pytest.fixture
def random_network(request: pytest.FixtureRequest) -> Callable[..., object]:
    """Factory of random feedforward networks, seeded by the test's node id.

    ``random_network(n, n_inputs=2, skip=True, density=0.3, activation="tanh",
    seed=None)`` returns a :class:`~cognitive_action.declare.network.Network` (see
    :func:`~cognitive_action.verify.reference.random_feedforward`). Successive calls in
    one test give different networks; the sequence is the same on every run.
    """
    from cognitive_action.verify.reference import random_feedforward

    base = _test_seed(request)
    calls = [0]

    def make(n: int, n_inputs: int = 2, *, skip: bool = True, density: float = 0.3,
             activation: str = "tanh", seed: int | None = None):
        if seed is None:
            seed = base + calls[0]
            calls[0] += 1
        return random_feedforward(n, n_inputs, density=density, seed=seed, skip=skip,
                                  activation=activation)

    return make


@dataclass(frozen=True)
class BackpropVerifier:
    """The verifier's assertions with a fixed seed for the random states they sample."""

    seed: int

    def backprop_limit(self, problem, **kwargs) -> None:
        """:func:`~cognitive_action.verify.pytest_helpers.assert_backprop_limit`."""
        from cognitive_action.verify.pytest_helpers import assert_backprop_limit

        kwargs.setdefault("seed", self.seed)
        assert_backprop_limit(problem, **kwargs)

    def full_rank(self, problem, **kwargs) -> None:
        """:func:`~cognitive_action.verify.pytest_helpers.assert_full_rank`."""
        from cognitive_action.verify.pytest_helpers import assert_full_rank

        kwargs.setdefault("seed", self.seed)
        assert_full_rank(problem, **kwargs)


@pytest.fixture
def backprop_verifier(request: pytest.FixtureRequest) -> BackpropVerifier:
    """:class:`BackpropVerifier` seeded by the test's node id."""
    return BackpropVerifier(_test_seed(request) % 10_000)
