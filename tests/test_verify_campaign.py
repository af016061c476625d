"""A random-network campaign: random DAGs of 5-15 neurons with mixed activations and
losses must all verify, each under a generous time guard (a hang is the failure it
guards against, not a speed target).

The default run takes 10 networks; ``-m slow`` runs all 50. Seeds are fixed, one per
network, so a failure names a reproducible network.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from cognitive_action.declare import symbols as S
from cognitive_action.declare.activations import BUILTIN_ACTIVATIONS
from cognitive_action.declare.network import Network
from cognitive_action.verify.budget import run_with_budget
from cognitive_action.verify.checks import verify

#: Seconds one verify() may take before the campaign calls it hung.
GUARD = 300.0
ACTIVATIONS = sorted(BUILTIN_ACTIVATIONS)
LOSSES = ("squared", "cross_entropy", "weighted")
theta = S.parameters("theta")[0]


def random_dag(seed: int) -> tuple[Network, str]:
    """A DAG of 5-15 neurons, 1-3 inputs, every neuron reached; an activation and a loss
    kind drawn from the seed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 16))
    n_in = int(rng.integers(1, min(3, n - 2) + 1))
    density = float(rng.uniform(0.2, 0.7))
    edges: set[tuple[int, int]] = set()
    for j in range(n_in + 1, n + 1):
        preds = [k for k in range(1, j) if rng.random() < density]
        if not preds:
            preds = [int(rng.integers(1, j))]
        edges |= {(j, k) for k in preds}
    for i in range(1, n_in + 1):  # every input feeds some neuron
        if not any(k == i for (_j, k) in edges):
            edges.add((int(rng.integers(n_in + 1, n + 1)), i))
    act = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
    net = Network([(k, j) for (j, k) in sorted(edges)], inputs=list(range(1, n_in + 1)),
                  activation=act)
    return net, LOSSES[int(rng.integers(len(LOSSES)))]


def random_problem(seed: int):
    net, kind = random_dag(seed)
    rng = np.random.default_rng(seed + 10_000)
    outs = [(net.x[o], S.symbol(f"y{o}")) for o in net.outputs]
    if kind == "squared":
        loss = None  # the default, 1/2 sum (x_o - y_o)^2
    elif kind == "cross_entropy":
        if net.activation.name == "logistic":  # outputs in (0, 1)
            loss = sp.Add(*(-(y * sp.log(x) + (1 - y) * sp.log(1 - x)) for x, y in outs))
        else:  # the logistic loss of a real-valued score
            loss = sp.Add(*(sp.log(1 + sp.exp(-y * x)) for x, y in outs))
    else:
        c = rng.uniform(0.2, 2.0, size=len(outs))
        loss = sp.Add(*(sp.Float(ci) * (x - y) ** 2 / 2 for ci, (x, y) in zip(c, outs)))
    p = net.problem(weight=sp.exp(theta * S.t), parameters=[theta], loss=loss,
                    name=f"dag{seed}")
    return p, f"{len(net.order)} neurons, {net.activation.name}, {kind}"


SEEDS = [1000 + 37 * k for k in range(50)]
DEFAULT = SEEDS[::5]


def _campaign(seed: int) -> None:
    p, what = random_problem(seed)
    got = run_with_budget(lambda: verify(p, seed=seed % 7, progress=False), GUARD)
    assert not got.timed_out, f"seed {seed} ({what}): verify() ran over {GUARD:g} s"
    if got.error is not None:
        raise got.error
    report = got.value
    failed = {c.name for c in report.failures}
    assert not failed, f"seed {seed} ({what}):\n{report}"
    numeric = report["backprop.numeric.multipliers"]
    assert numeric.status == "pass" and numeric.value <= 1e-9
    assert report["rank"].status == "pass" and report["initial_conditions"].status == "pass"
    # nothing silently missing: every check that did not pass says why
    assert all(c.message for c in report.checks if c.status == "skip")
    # a correct law never fails a limit; a range that never became asymptotic is said
    assert report["convergence.mass_ratio"].status in ("pass", "inconclusive")


def test_campaign_covers_every_activation_and_loss():
    drawn = [random_dag(s) for s in SEEDS]
    assert {net.activation.name for net, _ in drawn} == set(ACTIVATIONS)
    assert {kind for _, kind in drawn} == set(LOSSES)
    assert {len(net.order) for net, _ in drawn} >= {5, 15}


@pytest.mark.parametrize("seed", DEFAULT)
def test_random_dag_verifies(seed):
    _campaign(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in SEEDS if s not in DEFAULT])
def test_random_dag_verifies_full_campaign(seed):
    _campaign(seed)
