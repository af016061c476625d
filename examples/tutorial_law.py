"""The tutorial's learning law from Python: load, derive, verify, compile, simulate.

The problem file ``examples/tutorial_law.toml`` (a 2-2-1 softplus network with a
pseudo-Huber loss, see ``docs/tutorial.md``) is loaded, its Euler-Lagrange equations
(8)-(9) are derived, the verifier checks the backprop limit (eq. 14-17) against CasADi
AD and finite differences, and the compiled system is simulated from consistent
initial conditions (eq. 11).

Run: ``python examples/tutorial_law.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cognitive_action as ca
from cognitive_action.compile import compile_system, simulate
from cognitive_action.problem_files.loader import load_problem
from cognitive_action.verify import verify

HERE = Path(__file__).resolve().parent


def main() -> None:
    spec = load_problem(HERE / "tutorial_law.toml")
    print(spec.problem)
    # eq. (8)-(10) through the per-neuron templates, then every entry materialized
    el = ca.derive_network(spec.problem).euler_lagrange()
    print(ca.latex(el.residuals[4]))            # the output neuron x5's equation
    # the verifier: Proposition 1, the backprop limit, convergence, initial conditions
    report = verify(spec.problem, values=spec.values)
    print(report)
    assert report.passed, "the tutorial's law must pass the verifier"
    # consistent initial conditions: weights given, the outputs solved for (eq. 11)
    rng = np.random.default_rng(4)
    given = dict(spec.values)
    for w in spec.network.weights:
        given[str(w)] = 0.5 * float(rng.standard_normal()) / np.sqrt(2)
        given[str(ca.dot(w))] = 0.0
    y0 = ca.complete_initial_conditions(el, given, free=spec.network.neurons)
    system = compile_system(el)
    sim = simulate(system, (0.0, 10.0), y0, spec.values, n_points=201)
    x5 = sim.states["x5"]
    print(f"x5: {x5[0]:.3f} -> {x5[-1]:.3f} (target 1.5); max |G| = {sim.max_drift:.1e}")


if __name__ == "__main__":
    main()
