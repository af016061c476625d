"""Define your own learning law, derive it, and check Proposition 1 and the multipliers.

A two-layer network with a *softplus* hidden unit and a loss with a weight-decay-like
term on the output, under the time weight ϖ = exp(θt). We derive eq. (8)-(10),
print them in LaTeX, check that the constraint Jacobian has full rank, make the initial
conditions consistent, and solve eq. (10) for the multipliers at t = 0.

Run: ``python examples/define_your_own_law.py``.
"""

from __future__ import annotations

import networkx as nx
import sympy as sp

import cognitive_action as ca
from cognitive_action.declare.symbols import dot


def main() -> None:
    theta, gamma = sp.symbols("theta gamma", real=True)
    # 1. the architecture: inputs 1, 2 -> hidden 3 -> output 4, plus a skip arc 1 -> 4
    graph = nx.DiGraph([(1, 3), (2, 3), (3, 4), (1, 4)])
    net = ca.Network(graph, inputs=[1, 2], activation="softplus")
    x4 = net.x[4]
    # 2. the action: masses, time weight, and the loss V(t, x) (F = -ϖ V)
    problem = net.problem(weight=sp.exp(theta * ca.t),
                          loss=(x4 - sp.sin(ca.t)) ** 2 / 2 + gamma * x4**4 / 4,
                          inputs={1: sp.cos(ca.t), 2: 1}, parameters=[theta, gamma])
    print(problem)
    # 3. derive
    el = ca.euler_lagrange(problem)
    print(ca.latex(el, max_rows=4))
    # 4. Proposition 1: G_ξ has full rank (feedforward graph)
    print(ca.constraint_rank(el, wrt=net.neurons))
    # 5. consistent initial conditions from W(0), Ẇ(0) = 0 and the inputs at t = 0
    values = {"theta": 5.0, "gamma": 0.1, "m_x": 0.01, "m_W": 1.0}
    weights = {str(w): 0.5 for w in net.weights} | {str(dot(w)): 0.0 for w in net.weights}
    given = values | weights | {"e1": 1.0, "e1_dot": 0.0, "e2": 1.0, "e2_dot": 0.0}
    ic = ca.complete_initial_conditions(el, given, free=net.neurons)
    print("x(0) =", [round(ic[str(x)], 6) for x in net.neurons])
    # 6. eq. (10) at t = 0: the multipliers δ
    delta = ca.multiplier_equation(el).solve(ic)   # values by name, t = 0 included
    print("δ(0) =", [round(float(d), 6) for d in delta])


if __name__ == "__main__":
    main()
