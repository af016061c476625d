"""The simulate figure shows the simulated series, and shows them legibly.

For every shipped problem that simulates, the line data are read back from the
matplotlib figure object and compared with the simulation's arrays; the targets and
the loss with hand-written references (the targets copied from the files, whose text is
checked, and ``V = ½ Σ (x_o - y_o)²`` computed here with NumPy); colours do not repeat
within a panel and every legend lies outside its axes.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cognitive_action import workflow  # noqa: E402
from cognitive_action.problem_files.loader import shipped_problems  # noqa: E402
from cognitive_action.results.figures import simulation_figure  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Targets of the shipped networks, written by hand from their files: (text, function
#: of t and the file's parameters). The text is checked against the file.
TARGETS = {
    "xor": ("x5", "1", lambda t, p: np.ones_like(t)),
    "chain3": ("x3", "0.5", lambda t, p: np.full_like(t, 0.5)),
    "layered10": ("x27", "0.5*sin(omega*t)", lambda t, p: 0.5 * np.sin(p["omega"] * t)),
    "rate_network": ("x4", "0.3", lambda t, p: np.full_like(t, 0.3)),
}
#: Short runs keep the test fast; the figure is the same code at any length.
RUNS = {"layered10": dict(t_end=1.0, points=21)}
#: Problems trained on a data set (a ``[data]`` table) are not simulated.
TRAINED = {n for n, path in shipped_problems().items()
           if "data" in tomllib.loads(path.read_text(encoding="utf-8"))}
SIMULATED = [n for n in shipped_problems() if n not in TRAINED]


#: Energy problems (equilibrium propagation): output, target text, input values, all
#: copied from the file (the text is checked).
ENERGY = {"equilibrium_propagation": ("x7", "0.8", {"1": "0.5", "2": "-1.0"})}


def _check_energy_lines(name, wf, sim, lines):
    """A phase of the logistic Hopfield energy: the target line is the file's, ``E`` is
    S&B's eq. 1 written here with NumPy (``½Σx² - Σ w_ij ρ(u_i)ρ(u_j) - Σ b_i ρ(x_i)``,
    inputs clamped), ``C = ½(x_o - y_o)²``, ``max |dx/dt|`` the central differences of
    the plotted units (smooth relaxation: to 1e-3, seen 1.2e-4), and ``E`` never increases."""
    out, text, inputs = ENERGY[name]
    data = tomllib.loads(shipped_problems()[name].read_text())
    assert data["targets"][out.removeprefix("x")] == text and data["inputs"] == inputs
    assert data["energy"]["activation"] == "logistic" and data["energy"]["bias"] is True
    model = wf.spec.problem
    values = dict(zip(sim.system.parameters, sim.params))
    rho = lambda u: 1.0 / (1.0 + np.exp(-u))  # noqa: E731
    unit = {int(k): np.full_like(sim.times, float(v)) for k, v in inputs.items()}
    unit |= {int(str(x).removeprefix("x")): sim[str(x)] for x in model.neurons}
    E = sum(0.5 * sim[str(x)] ** 2 for x in model.neurons)
    for w, (a, b) in model.couplings.items():
        E = E - values[str(w)] * rho(unit[a]) * rho(unit[b])
    E = E - sum(values[f"b{i}"] * rho(unit[i]) for i in unit if i not in (1, 2))
    y = float(text)
    by_label = {ln["label"]: ln["y"] for ln in lines}
    np.testing.assert_allclose(by_label[f"target {out}"], y, rtol=0, atol=0)
    np.testing.assert_allclose(by_label["E"], E, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(by_label["C"], 0.5 * (sim[out] - y) ** 2, rtol=1e-12,
                               atol=1e-15)
    assert np.all(np.diff(by_label["E"]) <= 1e-12)  # the free phase descends E
    X = np.column_stack([sim[str(x)] for x in model.neurons])
    fd = np.max(np.abs(np.gradient(X, sim.times, axis=0)), axis=1)
    rate = by_label["max |dx/dt|"]
    np.testing.assert_allclose(rate[1:-1], fd[1:-1], rtol=1e-3, atol=0)


def _lines(fig) -> list[dict]:
    out = []
    for i, ax in enumerate(fig.axes):
        for line in ax.get_lines():
            out.append({"axes": i, "label": line.get_label(), "y": np.asarray(line.get_ydata()),
                        "x": np.asarray(line.get_xdata()), "color": line.get_color(),
                        "style": line.get_linestyle()})
    return out


def test_every_shipped_problem_is_covered():
    assert "digits" in TRAINED and "xor" in SIMULATED
    assert set(SIMULATED) | TRAINED == set(shipped_problems())
    assert set(TARGETS) <= set(SIMULATED)


@pytest.mark.parametrize("name", SIMULATED)
def test_the_plotted_series_are_the_simulated_ones(name):
    wf = workflow.load(name)
    sim = wf.simulate(**RUNS.get(name, dict(t_end=0.5, points=21)))
    problem = wf.spec.problem
    fig = simulation_figure(sim, problem, title=name)
    try:
        lines = _lines(fig)
        mults = sim.multipliers()
        seen = set()
        for ln in lines:
            np.testing.assert_array_equal(ln["x"], sim.times)
            label = ln["label"].removesuffix(" (input)")
            if label in sim.system.states:
                ref = sim[label]
            elif label in mults:
                ref = mults[label]
            elif label == "max |G|":
                ref = np.maximum(sim.drift, 1e-17)
            elif label in ("V", "E", "C", "max |dx/dt|") or label.startswith("target "):
                continue  # below, against hand-written references
            else:
                raise AssertionError(f"unexpected line {label!r}")
            np.testing.assert_allclose(ln["y"], ref, rtol=0, atol=0)
            seen.add(label)
        # what is drawn: every neuron/coordinate (or the capped selection), every
        # multiplier up to the cap, the drift
        network = getattr(problem, "network", None)  # an energy model has none
        n_coords = len(network.neurons) if network else len(sim.system.coordinates)
        assert sum(1 for s in seen if s in sim.system.coordinates) >= min(n_coords, 16)
        # an energy model's phase has no constraints, so no drift
        assert ("max |G|" in seen) == (sim.drift is not None)
        assert sum(1 for s in seen if s in mults) == min(len(mults), 16)
        # targets and loss against hand-written references
        if name in TARGETS:
            out, text, ref = TARGETS[name]
            data = tomllib.loads(shipped_problems()[name].read_text())
            assert data["targets"][out.removeprefix("x")] == text
            assert "loss" not in data.get("action", {})  # the squared error
            target = [ln for ln in lines if ln["label"] == f"target {out}"]
            assert len(target) == 1
            y = ref(sim.times, wf.spec.values)
            np.testing.assert_allclose(target[0]["y"], y, rtol=1e-12, atol=1e-14)
            loss = [ln for ln in lines if ln["label"] == "V"]
            np.testing.assert_allclose(loss[0]["y"], 0.5 * (sim[out] - y) ** 2,
                                       rtol=1e-10, atol=1e-15)
            # the target is drawn in its neuron's colour
            own = [ln for ln in lines if ln["label"] == out][0]
            assert own["color"] == target[0]["color"]
        if name in ENERGY:
            _check_energy_lines(name, wf, sim, lines)
        # no repeated colour within a panel (a target shares its neuron's on purpose)
        for i, ax in enumerate(fig.axes):
            colors = [matplotlib.colors.to_hex(ln["color"]) for ln in lines
                      if ln["axes"] == i and not ln["label"].startswith("target ")]
            assert len(colors) == len(set(colors)), (name, ax.get_title())
        # legends outside the data area: to the right of the axes
        fig.canvas.draw()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                lb = legend.get_window_extent()
                assert lb.x0 >= ax.get_window_extent().x1, (name, ax.get_title())
    finally:
        plt.close(fig)


def test_a_large_network_panel_says_what_it_leaves_out():
    wf = workflow.load("layered10")
    sim = wf.simulate(t_end=0.2, points=5)
    fig = simulation_figure(sim, wf.spec.problem, max_lines=5)
    try:
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert re.search(r"5 of 27 neurons", titles[0])
        assert re.search(r"5 of 72 weights", titles[1])
        # the output is always among the neurons shown
        assert "x27" in [ln.get_label() for ln in fig.axes[0].get_lines()]
    finally:
        plt.close(fig)


def test_a_figure_without_the_problem_draws_the_coordinates():
    wf = workflow.load("pendulum")
    sim = wf.simulate(t_end=0.3, points=11)
    fig = simulation_figure(sim)
    try:
        labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
        assert labels == ["q1", "q2"]
    finally:
        plt.close(fig)
