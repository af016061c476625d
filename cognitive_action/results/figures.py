"""The figure of a simulation, in panels that answer "did it learn?" at a glance.

For a network (eq. 4, 18): the neurons with the output targets (dashed, same colour),
the weights, the multipliers (``δ``, the backprop deltas in the limit of eq. 15-17), the
loss ``V(t)`` along the run, and the constraint drift ``max_j |G^j|``. For a mechanical
problem: the coordinates, the multipliers and the drift. For a phase of an energy model
(equilibrium propagation): the units with the output targets, the energy ``E`` (``E +
βC`` when nudged), the cost ``C`` and the distance to the fixed point ``max |dx/dt|``.
Every line of a panel has its own colour, legends sit outside the axes, and a panel with
more series than :data:`MAX_LINES` shows the outputs and the series that change most,
saying so in its title.

The loss and the targets are evaluated from the declared problem, not from names: the
loss is ``V = -F/ϖ`` of the action (eq. 7 with ``F = -ϖ V``), and an output's target is
read off the loss where ``V`` is quadratic in that output with a constant curvature
``c``: ``y_o = x_o - (∂V/∂x_o)/c`` (the squared error gives ``y_o`` exactly; other
losses show no target line unless the targets are passed).

Examples
--------
>>> from cognitive_action import workflow
>>> wf = workflow.load("chain3")
>>> sim = wf.simulate(t_end=0.5, points=6)
>>> fig = simulation_figure(sim, wf.spec.problem, title="chain3")
>>> [ax.get_title(loc="left") for ax in fig.axes][:2]
['chain3: neurons (dashed: targets)', 'weights']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from cognitive_action.declare.energy import EnergyModel
from cognitive_action.errors import OptionalDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from cognitive_action.compile.simulate import Simulation
    from cognitive_action.declare.problem import Problem

__all__ = ["MAX_LINES", "Panel", "distinct_colors", "energy_along", "loss_along", "panels",
           "rates_along", "simulation_figure", "state_rates", "targets_along"]

#: The most series one panel draws (the rest are named in its title).
MAX_LINES = 16


@dataclass
class Panel:
    """One panel: named series along the simulation's times.

    Attributes
    ----------
    title, ylabel
        Shown on the axes.
    series
        Name → values at ``sim.times`` (the arrays plotted, in order).
    dashed
        Name → values drawn dashed in the colour of the series of the same key (targets).
    log
        A logarithmic y axis (the drift).
    inputs
        Names of series that are driven inputs (drawn dotted, labelled ``(input)``).
    """

    title: str
    ylabel: str
    series: dict[str, np.ndarray]
    dashed: dict[str, np.ndarray]
    log: bool = False
    inputs: frozenset[str] = frozenset()


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - the plots extra
        raise OptionalDependencyError(
            "plotting needs matplotlib", fix='pip install "cognitive_action[plots]"') from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distinct_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` different colours: the 20 of ``tab20`` (dark shades first), then evenly spaced
    hues of ``turbo``.

    Examples
    --------
    >>> cs = distinct_colors(30)
    >>> len(set(cs)) == 30
    True
    """
    from matplotlib import colormaps

    tab = colormaps["tab20"]
    base = [tab(i) for i in range(0, 20, 2)] + [tab(i) for i in range(1, 20, 2)]
    if n <= len(base):
        return base[:n]
    turbo = colormaps["turbo"]
    return [turbo(x) for x in np.linspace(0.05, 0.95, n)]


def _values(sim: Simulation) -> dict[str, Any]:
    """Numbers of the parameters (and constant signals) the run used."""
    return dict(zip(sim.system.parameters, (float(v) for v in sim.params)))


def _evaluate(exprs: Sequence[sp.Expr], sim: Simulation) -> np.ndarray | None:
    """Expressions of ``t``, the states and the parameters along ``sim`` (CasADi, no
    ``eval``); ``None`` when one names a symbol the run does not know."""
    import casadi as ca

    from cognitive_action.compile.translate import to_casadi
    from cognitive_action.errors import TranslationError

    t = ca.SX.sym("t")
    y = ca.SX.sym("y", len(sim.system.states))
    values: dict[str, Any] = {"t": t} | _values(sim)
    values |= {n: y[i] for i, n in enumerate(sim.system.states)}
    try:
        out = to_casadi(list(exprs), values)
    except TranslationError:
        return None
    f = ca.Function("f", [t, y], [ca.vertcat(*out)])
    fm = f.map(len(sim.times))
    res = fm(sim.times.reshape(1, -1), sim.y.T)
    return np.asarray(res, dtype=float).reshape(len(exprs), len(sim.times)).T


def loss_along(sim: Simulation, problem: Problem) -> np.ndarray | None:
    """The loss ``V = -F/ϖ`` of a network problem along ``sim``, or ``None`` (no
    network, or a loss naming a signal the run does not know)."""
    if problem.network is None:
        return None
    a = problem.action
    V = sp.simplify(-a.lagrangian / a.weight) if a.weight != 1 else -a.lagrangian
    out = _evaluate([V], sim)
    return None if out is None else out[:, 0]


def _quadratic_targets(V: sp.Expr, outputs: Sequence[sp.Symbol],
                       coords: set[sp.Symbol]) -> dict[str, sp.Expr]:
    """Each output's target read off a loss ``V``: ``x - (∂V/∂x)/c`` where ``V`` is
    quadratic in ``x`` with a constant curvature ``c``."""
    out = {}
    for x in outputs:
        curvature = sp.diff(V, x, 2)
        if curvature.free_symbols & coords or curvature == 0:
            continue  # not quadratic in x_o with constant curvature: no single target
        y = sp.simplify(x - sp.diff(V, x) / curvature)
        if not y.free_symbols & coords:
            out[str(x)] = y
    return out


def _target_exprs(problem: Problem | EnergyModel) -> dict[str, sp.Expr]:
    if isinstance(problem, EnergyModel):  # the cost C is the loss; the units the state
        return _quadratic_targets(sp.expand(problem.cost), problem.outputs,
                                  set(problem.neurons))
    net = problem.network
    a = problem.action
    V = sp.expand(-a.lagrangian / a.weight) if a.weight != 1 else -a.lagrangian
    return _quadratic_targets(V, [net.x[o] for o in net.outputs], set(problem.coordinates))


def energy_along(sim: Simulation, model: EnergyModel) -> dict[str, np.ndarray] | None:
    """The energy ``E``, the cost ``C`` and ``E + βC`` of an energy model along a phase
    run (``β`` the run's value; the phase ``ẋ = -∂(E + βC)/∂x`` does not increase
    ``E + βC``), or ``None`` if an expression names a symbol the run does not know."""
    out = _evaluate([model.energy, model.cost, model.energy + model.beta * model.cost],
                    sim)
    if out is None:
        return None
    return {"E": out[:, 0], "C": out[:, 1], "E + βC": out[:, 2]}


def state_rates(sim: Simulation) -> np.ndarray:
    """``ẏ`` at the stored times and states of ``sim`` (rows: times, columns:
    ``sim.system.states``), from the compiled right-hand side."""
    n, m = len(sim.times), len(sim.system.states)
    if n == 0 or m == 0:
        return np.zeros((n, m))
    f = sim.system.rhs.map(n)
    p = np.repeat(np.asarray(sim.params, dtype=float).reshape(-1, 1), n, axis=1)
    return np.asarray(f(sim.times.reshape(1, -1), sim.y.T, p), dtype=float).T


def rates_along(sim: Simulation) -> np.ndarray:
    """``max_i |ẏ_i|`` along ``sim`` (:func:`state_rates`): how far each time is from a
    fixed point."""
    yd = state_rates(sim)
    return np.max(np.abs(yd), axis=1) if yd.size else np.zeros(len(sim.times))


def targets_along(sim: Simulation, problem: Problem | EnergyModel,
                  targets: Mapping[str, sp.Expr] | None = None) -> dict[str, np.ndarray]:
    """Each output neuron's target along ``sim``, by neuron name.

    Parameters
    ----------
    problem
        A network problem, or an energy model (its cost ``C`` read as the loss).
    targets
        Target expressions of ``t`` and the parameters by neuron name (``{"x5": ...}``);
        default: read off the loss where it is quadratic in the output (module
        docstring).
    """
    if not isinstance(problem, EnergyModel) and problem.network is None:
        return {}
    exprs = dict(targets) if targets is not None else _target_exprs(problem)
    if not exprs:
        return {}
    vals = _evaluate(list(exprs.values()), sim)
    if vals is None:
        return {}
    return {k: vals[:, i] for i, k in enumerate(exprs)}


def _pick(series: dict[str, np.ndarray], keep: Sequence[str], n: int
          ) -> tuple[dict[str, np.ndarray], int]:
    """At most ``n`` series: ``keep`` first, then the largest ranges; and how many were
    left out."""
    if len(series) <= n:
        return series, 0
    chosen = [k for k in keep if k in series][:n]
    rest = sorted((k for k in series if k not in chosen),
                  key=lambda k: -float(np.ptp(series[k])) if series[k].size else 0.0)
    chosen += rest[:n - len(chosen)]
    order = [k for k in series if k in chosen]  # the network's order
    return {k: series[k] for k in order}, len(series) - len(order)


def _titled(title: str, shown: int, left: int, what: str) -> str:
    return title if not left else (f"{title}: {shown} of {shown + left} {what} "
                                   "(the largest changes)")


def panels(sim: Simulation, problem: Problem | None = None, *,
           max_lines: int = MAX_LINES,
           targets: Mapping[str, sp.Expr] | None = None) -> list[Panel]:
    """The panels of :func:`simulation_figure`, with the arrays they plot.

    Parameters
    ----------
    sim
        A simulation.
    problem
        The declared problem it ran (for the network roles, the loss and the targets);
        ``None``: the compiled system's coordinates only.
    max_lines
        The most series per panel.
    targets
        Output targets by neuron name (see :func:`targets_along`).
    """
    energy = isinstance(problem, EnergyModel)
    net = problem.network if problem is not None and not energy else None
    out: list[Panel] = []
    states = sim.states
    if energy:  # a phase of an energy model: its free units, E + βC, the fixed point
        neurons = {str(x): states[str(x)] for x in problem.neurons if str(x) in states}
        shown, left = _pick(neurons, [str(o) for o in problem.outputs], max_lines)
        targets = targets_along(sim, problem, targets)
        out.append(Panel(_titled("units (dashed: targets)", len(shown), left, "units"),
                         "x", shown, {k: v for k, v in targets.items() if k in shown}))
        weights = {str(w): states[str(w)] for w in problem.learnable if str(w) in states}
        if weights:
            shown, left = _pick(weights, [], max_lines)
            out.append(Panel(_titled("weights", len(shown), left, "weights"), "w", shown,
                             {}))
        e = energy_along(sim, problem)
        if e is not None:
            beta = _values(sim).get(str(problem.beta), 0.0)
            if beta == 0:
                out.append(Panel("energy E (free phase, β = 0: never increases)", "E",
                                 {"E": e["E"]}, {}))
            else:
                out.append(Panel(f"E + βC (nudged phase, β = {beta:g}: never increases)",
                                 "E + βC", {"E + βC": e["E + βC"]}, {}))
            out.append(Panel("cost C(t): the outputs' distance to the targets", "C",
                             {"C": e["C"]}, {}))
        out.append(Panel("distance to the fixed point", "max |dx/dt|",
                         {"max |dx/dt|": np.maximum(rates_along(sim), 1e-17)}, {},
                         log=True))
    elif net is not None:
        neurons = {str(x): states[str(x)] for x in net.neurons if str(x) in states}
        targets = targets_along(sim, problem, targets)
        outputs = [str(net.x[o]) for o in net.outputs]
        shown, left = _pick(neurons, outputs, max_lines)
        out.append(Panel(_titled("neurons (dashed: targets)", len(shown), left, "neurons"),
                         "x", shown, {k: v for k, v in targets.items() if k in shown},
                         inputs=frozenset(str(net.x[i]) for i in net.inputs)))
        weights = {str(w): states[str(w)] for w in net.weights if str(w) in states}
        shown, left = _pick(weights, [], max_lines)
        out.append(Panel(_titled("weights", len(shown), left, "weights"), "w", shown, {}))
    else:
        coords = {q: states[q] for q in sim.system.coordinates}
        shown, left = _pick(coords, [], max_lines)
        out.append(Panel(_titled("coordinates", len(shown), left, "coordinates"), "q",
                         shown, {}))
    mults = {k: np.asarray(v, dtype=float) for k, v in sim.multipliers().items()}
    if mults:
        shown, left = _pick(mults, [], max_lines)
        weighted = any(k.startswith("delta_") for k in mults)
        out.append(Panel(_titled("multipliers" + (" (δ = λ/ϖ)" if weighted else ""),
                                 len(shown), left, "multipliers"), "multiplier", shown, {}))
    if problem is not None and not energy:
        loss = loss_along(sim, problem)
        if loss is not None:
            out.append(Panel("loss V(t)", "V", {"V": loss}, {}))
    drift = sim.drift
    if drift is not None:
        out.append(Panel("constraint drift", "max |G|",
                         {"max |G|": np.maximum(np.abs(np.asarray(drift)), 1e-17)}, {},
                         log=True))
    return out


def simulation_figure(sim: Simulation, problem: Problem | None = None, *,
                      title: str | None = None, max_lines: int = MAX_LINES,
                      targets: Mapping[str, sp.Expr] | None = None) -> Figure:
    """A figure of ``sim`` in panels (see the module docstring), one row each.

    Parameters
    ----------
    sim
        A simulation.
    problem
        The declared problem it ran; ``None`` draws the coordinates, multipliers and drift.
    title
        Prefixed to the first panel's title.
    max_lines
        The most series per panel.
    targets
        Output targets by neuron name, for losses they cannot be read off (see
        :func:`targets_along`).

    Returns
    -------
    matplotlib.figure.Figure
        Each series is a line labelled with its name (inputs: ``<neuron> (input)``,
        targets: ``target <neuron>``), so ``ax.get_lines()`` gives back the plotted
        arrays.

    Raises
    ------
    OptionalDependencyError
        matplotlib is missing (the ``plots`` extra).
    """
    plt = _matplotlib()
    ps = panels(sim, problem, max_lines=max_lines, targets=targets)
    fig, axes = plt.subplots(len(ps), 1, figsize=(9.5, 2.1 * len(ps) + 0.6), sharex=True,
                             squeeze=False)
    for ax, p in zip(axes[:, 0], ps):
        colors = distinct_colors(len(p.series))
        for (name, values), color in zip(p.series.items(), colors):
            draw = ax.semilogy if p.log else ax.plot
            if name in p.inputs:
                draw(sim.times, values, color=color, label=f"{name} (input)", lw=1.2,
                     ls=":")
            else:
                draw(sim.times, values, color=color, label=name, lw=1.4)
            if name in p.dashed:
                ax.plot(sim.times, p.dashed[name], color=color, ls="--", lw=1.6,
                        label=f"target {name}", zorder=3)
        ax.set_title(p.title, fontsize=9, loc="left")
        ax.set_ylabel(p.ylabel)
        ax.grid(alpha=0.3)
        n = len(ax.get_lines())
        if n > 1 or p.dashed or list(p.series) != [p.ylabel]:  # name a lone series too
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                      ncol=1 if n <= 8 else 2, frameon=False, borderaxespad=0.0)
    if title:
        first = axes[0, 0]
        first.set_title(f"{title}: {first.get_title(loc='left')}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("t")
    fig.tight_layout()
    return fig
