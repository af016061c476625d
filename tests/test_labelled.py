"""Labelled results: trajectories, training histories and verifier numbers as xarray
Datasets, saved and loaded back equal (to 1e-15; in fact bit for bit) with the expected
coordinate names."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from cognitive_action import workflow  # noqa: E402
from cognitive_action.errors import OptionalDependencyError  # noqa: E402
from cognitive_action.learn.train import TrainingHistory  # noqa: E402
from cognitive_action.results.labelled import (  # noqa: E402
    history_dataset,
    load_dataset,
    report_dataset,
    save_dataset,
    trajectory_dataset,
)
from cognitive_action.verify.report import Check, Report  # noqa: E402

NETWORK_COORDS = {"time", "neuron", "layer", "weight", "target", "source", "constraint",
                  "multiplier_name", "output"}
MECHANICAL_COORDS = {"time", "coordinate", "constraint", "multiplier_name"}


def _states_from(ds, sim) -> np.ndarray:
    """Every state of the run, rebuilt from the Dataset by its labels."""
    cols = []
    for s in sim.system.states:
        if "neuron" in ds.dims and s in ds["neuron"].values:
            cols.append(ds["x"].sel(neuron=s).values)
        elif "neuron" in ds.dims and s.removesuffix("_dot") in ds["neuron"].values:
            cols.append(ds["x_dot"].sel(neuron=s.removesuffix("_dot")).values)
        elif "weight" in ds.dims and s in ds["weight"].values:
            cols.append(ds["w"].sel(weight=s).values)
        elif "weight" in ds.dims and s.removesuffix("_dot") in ds["weight"].values:
            cols.append(ds["w_dot"].sel(weight=s.removesuffix("_dot")).values)
        elif "coordinate" in ds.dims and s in ds["coordinate"].values:
            cols.append(ds["q"].sel(coordinate=s).values)
        elif "coordinate" in ds.dims and s.removesuffix("_dot") in ds["coordinate"].values:
            cols.append(ds["q_dot"].sel(coordinate=s.removesuffix("_dot")).values)
        elif "constraint" in ds.dims and s in ds["multiplier_name"].values:
            i = list(ds["multiplier_name"].values).index(s)
            cols.append(ds["multiplier"].values[:, i])
        else:
            cols.append(ds[f"state_{s}"].values)
    return np.column_stack(cols)


@pytest.mark.parametrize("name, fmt", [("xor", "netcdf"), ("rate_network", "netcdf"),
                                       ("pendulum", "netcdf"), ("chain3", "zarr")])
def test_trajectory_round_trip_equals_the_simulation(name, fmt, tmp_path):
    wf = workflow.load(name)
    sim = wf.simulate(t_end=0.4, points=9)
    ds = trajectory_dataset(sim, wf.spec.problem, name=name)
    suffix = ".zarr" if fmt == "zarr" else ".nc"
    path = save_dataset(ds, tmp_path / f"{name}{suffix}")
    back = load_dataset(path)
    expected = NETWORK_COORDS if wf.spec.network is not None else MECHANICAL_COORDS
    assert set(back.coords) == expected
    np.testing.assert_allclose(back["time"].values, sim.times, rtol=0, atol=1e-15)
    np.testing.assert_allclose(_states_from(back, sim), sim.y, rtol=0, atol=1e-15)
    mults = sim.multipliers()
    for c, m in zip(back["constraint"].values, back["multiplier_name"].values):
        np.testing.assert_allclose(back["multiplier"].sel(constraint=c).values, mults[m],
                                   rtol=0, atol=1e-15)
    np.testing.assert_allclose(back["constraint_value"].values, sim.constraint_values,
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(back["drift"].values, sim.drift, rtol=0, atol=1e-15)
    assert list(back["constraint"].values) == list(sim.system.constraint_names)
    assert back.attrs["problem"] == name and back.attrs["method"] == sim.method
    if wf.spec.network is not None:
        net = wf.spec.network
        # weights labelled by the neurons they connect: w<j>_<k> from k to j
        for w, tgt, src in zip(back["weight"].values, back["target"].values,
                               back["source"].values):
            j, k = w[1:].split("_")
            assert (tgt, src) == (f"x{j}", f"x{k}")
        # the loss as written in the file (squared error) against the stored outputs
        out = str(net.x[net.outputs[0]])
        y = back["output_target"].sel(output=out).values
        np.testing.assert_allclose(back["loss"].values,
                                   0.5 * (back["x"].sel(neuron=out).values - y) ** 2,
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_an_energy_phase_round_trips_with_its_units_weights_and_energy(fmt, tmp_path):
    """Equilibrium propagation's free phase (``simulate`` crashed here: an energy model
    has no ``network``): the units on ``neuron`` with their layers of the file's
    ``layers = [2, 4, 1]``, ``x_dot`` against central differences of the stored units,
    the learnable values on ``learnable`` equal to the run's parameters, ``cost`` the
    file's squared distance to the target 0.8, ``energy`` non-increasing."""
    wf = workflow.load("equilibrium_propagation")
    sim = wf.simulate(t_end=0.5, points=41)
    ds = trajectory_dataset(sim, wf.spec.problem, name="ep")
    back = load_dataset(save_dataset(ds, tmp_path / ("ep.zarr" if fmt == "zarr"
                                                     else "ep.nc")))
    assert set(back.coords) == {"time", "neuron", "layer", "learnable", "group", "output"}
    np.testing.assert_allclose(_states_from(back, sim), sim.y, rtol=0, atol=1e-15)
    assert list(back["neuron"].values) == ["x3", "x4", "x5", "x6", "x7"]
    assert list(back["layer"].values) == [1, 1, 1, 1, 2]
    params = dict(zip(sim.system.parameters, sim.params))
    for w, g in zip(back["learnable"].values, back["group"].values):
        assert back["w"].sel(learnable=w).item() == params[w]
        assert g == ("W1" if w.startswith(("w1_", "w2_")) else "W2" if w.startswith("w")
                     else "b2" if w == "b7" else "b1")
    fd = np.gradient(back["x"].values, back["time"].values, axis=0)
    np.testing.assert_allclose(back["x_dot"].values[1:-1], fd[1:-1], rtol=0,
                               atol=2e-3 * np.abs(fd).max())
    x7 = back["x"].sel(neuron="x7").values
    np.testing.assert_allclose(back["output_target"].sel(output="x7").values, 0.8,
                               rtol=0, atol=0)
    np.testing.assert_allclose(back["cost"].values, 0.5 * (x7 - 0.8) ** 2, rtol=1e-12,
                               atol=1e-15)
    assert np.all(np.diff(back["energy"].values) <= 1e-12)
    # the command line writes it beside the .npz and the figure
    paths = wf.save(sim, tmp_path / "cli")
    assert sorted(p.suffix for p in paths) == [".nc", ".npz", ".png"]


def test_layers_of_a_layered_net_and_of_a_cyclic_one():
    wf = workflow.load("layered10")  # sizes [2, 3, 3, 3, 3, 3, 3, 3, 3, 1]
    sim = wf.simulate(t_end=0.1, points=3)
    ds = trajectory_dataset(sim, wf.spec.problem)
    sizes = [2] + [3] * 8 + [1]
    expected = [layer for layer, n in enumerate(sizes) for _ in range(n)]
    assert list(ds["layer"].values) == expected
    assert ds["x"].dims == ("time", "neuron") and ds["w"].dims == ("time", "weight")
    rate = workflow.load("rate_network")  # a 2-3-4 loop
    ds = trajectory_dataset(rate.simulate(t_end=0.1, points=3), rate.spec.problem)
    assert set(ds["layer"].values) == {-1}


def test_training_histories_round_trip(tmp_path):
    limit = TrainingHistory("limit", train_loss=[0.5, 0.3, 0.2], test_loss=[0.6, 0.4, 0.3],
                            train_accuracy=[0.1, 0.5, 0.7], test_accuracy=[0.1, 0.4, 0.6])
    sgd = TrainingHistory("sgd", train_loss=[0.5, 0.31], test_loss=[0.6, 0.41])
    ds = history_dataset({"limit": limit, "sgd": sgd})
    back = load_dataset(save_dataset(ds, tmp_path / "training.nc"))
    assert set(back.coords) == {"run", "epoch"}
    assert list(back["epoch"].values) == [0, 1, 2]
    np.testing.assert_array_equal(back["train_loss"].sel(run="limit").values,
                                  limit.train_loss)
    np.testing.assert_array_equal(back["test_loss"].sel(run="sgd").values[:2],
                                  sgd.test_loss)
    assert np.isnan(back["test_loss"].sel(run="sgd").values[2])
    assert np.isnan(back["train_accuracy"].sel(run="sgd").values).all()


def test_dynamics_histories_keep_switch_residuals_times_and_settings(tmp_path):
    """A run in time (``DynamicsHistory``) adds one value per trained epoch: epoch 0
    (before training) is NaN, epochs 1.. are the run's lists, round-tripped exactly."""
    from cognitive_action.learn.runners import DynamicsHistory

    dyn = DynamicsHistory("dynamics", train_loss=[0.5, 0.3, 0.2], test_loss=[0.6, 0.4, 0.3],
                          settings={"tau": 1.0, "theta": 50.0, "scheme": "etd"},
                          switch_residuals=[[1e-12, 2e-11], [3e-13, 4e-12]],
                          seconds=[0.25, 0.5], cpu_seconds=[0.2, 0.4])
    sgd = TrainingHistory("sgd", train_loss=[0.5, 0.31, 0.25], test_loss=[0.6, 0.41, 0.3])
    back = load_dataset(save_dataset(history_dataset({"dynamics": dyn, "sgd": sgd}),
                                     tmp_path / "training.nc"))
    g = back["switch_max_G"].sel(run="dynamics").values
    assert np.isnan(g[0]) and g[1:].tolist() == [1e-12, 3e-13]
    assert back["switch_max_G_dot"].sel(run="dynamics").values[1:].tolist() == [2e-11, 4e-12]
    assert back["seconds"].sel(run="dynamics").values[1:].tolist() == [0.25, 0.5]
    assert back["cpu_seconds"].sel(run="dynamics").values[1:].tolist() == [0.2, 0.4]
    assert np.isnan(back["switch_max_G"].sel(run="sgd").values).all()
    assert json.loads(back.attrs["settings_dynamics"]) == dyn.settings
    assert "settings_sgd" not in back.attrs
    # a limit-law history alone has none of these variables
    assert "switch_max_G" not in history_dataset(sgd)


def test_verifier_numbers_round_trip(tmp_path):
    r = Report("demo", [Check("rank", "pass", 3, 3, "rank 3 ≈ full → ok"),
                        Check("backprop.numeric", "fail", 2.5e-3, 1e-9, "too far"),
                        Check("stability.multipliers", "skip", None, None, "n/a")])
    back = load_dataset(save_dataset(report_dataset(r, {"backprop.numeric": "expected-fail"}),
                                     tmp_path / "v.nc"))
    assert list(back["check"].values) == ["rank", "backprop.numeric",
                                          "stability.multipliers"]
    np.testing.assert_array_equal(back["value"].values[:2], [3.0, 2.5e-3])
    assert np.isnan(back["value"].values[2]) and np.isnan(back["tolerance"].values[2])
    assert list(back["outcome"].values) == ["pass", "expected-fail", "skip"]
    assert back["message"].values[0] == "rank 3 ≈ full → ok"
    assert back.attrs["problem"] == "demo" and back.attrs["passed"] == 0


def test_workflow_save_writes_the_labelled_trajectory(tmp_path):
    wf = workflow.load("chain3")
    sim = wf.simulate(t_end=0.2, points=5)
    paths = wf.save(sim, tmp_path, plot=False)
    assert [p.name for p in paths] == ["chain3_trajectory.npz", "chain3_trajectory.nc"]
    back = load_dataset(paths[1])
    npz = np.load(paths[0])
    np.testing.assert_array_equal(back["x"].sel(neuron="x3").values, npz["x3"])


def test_without_xarray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)
    wf = workflow.load("pendulum")
    sim = wf.simulate(t_end=0.1, points=3)
    with pytest.raises(OptionalDependencyError) as info:
        trajectory_dataset(sim)
    assert "cognitive_action[results]" in info.value.fix


def test_paper_table_lists_every_problem():
    summary = {"problems": {
        "xor": {"coordinates": 11, "derive_seconds": 0.1, "verify_seconds": 1.0,
                "outcome": {"rank": "pass", "simulated": "skip"}, "files": {
                    "verify": "out/xor_verify.md"},
                "simulation": {"status": "ok (forward), max |G| = 1e-8",
                               "plot": "out/xor_trajectory.png"}},
        "digits": {"training": {"limit_test_accuracy": 0.9, "sgd_test_accuracy": 0.91}}},
        "waves": ["out/fig1.png"]}
    text = workflow.paper_table(summary)
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["xor", "digits"]
    assert "1 pass, 1 skip" in rows[0] and "`xor_verify.md`" in rows[0]
    assert rows[0].replace("\\|", "").count("|") == 8  # 7 cells: "|G|" is escaped
    assert "0.9000 (limit law)" in rows[1]

