"""Sweeps on a real ``distributed.LocalCluster`` of worker processes (cognitive_action.sweeps).

One cluster per module (two worker processes, one thread each), passed to ``run_sweep`` as
a client; one test lets ``run_sweep`` start and close its own cluster. References: serial
``simulate`` calls in this process and the closed form of the weighted oscillator.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")

from references import oscillator, oscillator_solution  # noqa: E402

from cognitive_action.compile.options import SolverOptions  # noqa: E402
from cognitive_action.compile.simulate import simulate  # noqa: E402
from cognitive_action.compile.system import compile_system  # noqa: E402
from cognitive_action.errors import SimulationError, SweepError  # noqa: E402
from cognitive_action.sweeps import (  # noqa: E402
    Convergence,
    SweepSpec,
    engine,  # noqa: E402
    load_sweep,
    register_task,
    run_sweep,
)

VALUES = {"m": 1.0, "k": 4.0, "theta": 0.3}
INITIAL = {"x": 1.0, "x_dot": 0.0}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


def _spec(**kw):
    base = dict(problem=oscillator(), axes={"theta": [0.0, 0.5, 1.0], "k": [1.0, 4.0, 9.0]},
                values=VALUES, initial=INITIAL, times=(0.0, 1.0), n_points=5)
    base.update(kw)
    return SweepSpec(**base)


def test_sweep_equals_serial_simulate_and_closed_form(client, tmp_path):
    """On the cluster (the command's test lets run_sweep start and close its own)."""
    spec = _spec()
    ds = run_sweep(spec, tmp_path / "store", scheduler=client)
    assert ds.attrs["points_run"] == 9 and (ds.status == "ok").all()
    system = compile_system(oscillator())
    times = spec.output_times()
    for theta in spec.axes["theta"]:
        for k in spec.axes["k"]:
            ref = simulate(system, times, INITIAL, {**VALUES, "theta": theta, "k": k})
            got = ds.x.sel(theta=theta, k=k).values
            np.testing.assert_allclose(got, ref["x"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(ds.x_dot.sel(theta=theta, k=k).values, ref["x_dot"],
                                       rtol=0, atol=1e-12)
            closed = oscillator_solution(times, 1.0, k, theta, 1.0, 0.0)
            np.testing.assert_allclose(got, closed, atol=1e-6)
    # the store opens directly with xarray, axes as named coordinates
    opened = load_sweep(tmp_path / "store")
    assert opened.identical(ds.drop_attrs().assign_attrs(opened.attrs))
    assert list(opened.x.dims) == ["theta", "k", "time"]


def test_zip_sweep_over_initial_states_compiles_once_per_worker(client, tmp_path):
    spec = _spec(axes={"x": [0.5, 1.0, 2.0, 3.0], "theta": [0.1, 0.2, 0.3, 0.4]},
                 mode="zip", outputs=("x",))
    ds = run_sweep(spec, tmp_path / "s", scheduler=client)
    assert ds.x.dims == ("point", "time") and "x_dot" not in ds
    for i, (x0, theta) in enumerate(zip(spec.axes["x"], spec.axes["theta"])):
        closed = oscillator_solution(spec.output_times(), 1.0, 4.0, theta, x0, 0.0)
        np.testing.assert_allclose(ds.x.isel(point=i).values, closed, atol=1e-6)
        assert float(ds.theta[i]) == theta and float(ds.x_initial[i]) == x0
    builds = client.run(lambda: engine.BUILDS["count"])
    assert all(n <= 1 for n in builds.values()), builds  # once per process, not per point
    assert sum(builds.values()) >= 1


def test_killed_worker_loses_no_point(client, tmp_path):
    marker = tmp_path / "killed"

    def kill_once(ctx, point):
        if point["k"] == 4.0 and not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-sweep
        return {"y": 2.0 * ctx.values["k"] + ctx.values["theta"]}

    register_task("kill_once", kill_once)
    spec = _spec(task="kill_once")
    ds = run_sweep(spec, tmp_path / "s", scheduler=client)
    assert marker.exists()
    assert (ds.status == "ok").all() and ds.attrs["points_run"] == 9
    expect = 2.0 * ds.k + ds.theta
    np.testing.assert_array_equal(ds.y.values, expect.transpose("theta", "k").values)


def test_failing_point_is_recorded_and_the_rest_complete(client, tmp_path):
    def fails_at_k9(ctx, point):
        if point["k"] == 9.0 and point["theta"] == 0.5:
            raise SimulationError("blew up", fix="lower k")
        return {"y": ctx.values["k"]}

    register_task("fails_at_k9", fails_at_k9)
    ds = run_sweep(_spec(task="fails_at_k9"), tmp_path / "s", scheduler=client)
    bad = ds.sel(theta=0.5, k=9.0)
    assert str(bad.status.values) == "failed"
    assert str(bad.error.values).startswith("SimulationError: blew up")
    assert np.isnan(float(bad.y))
    assert int((ds.status == "ok").sum()) == 8 and ds.attrs["points_failed"] == 1
    assert float(ds.y.sel(theta=0.0, k=9.0)) == 9.0


class _StopError(Exception):
    pass


def test_interrupted_sweep_resumes_only_missing_points_bit_identical(client, tmp_path):
    spec = _spec()
    full = run_sweep(spec, tmp_path / "full", scheduler=client)

    def stop_after_3(done, failed, remaining):
        if done == 3:
            raise _StopError

    with pytest.raises(_StopError):
        run_sweep(spec, tmp_path / "cut", scheduler=client, progress=stop_after_3)
    stored = len(list((tmp_path / "cut" / "points").glob("*.npz")))
    assert stored == 3
    resumed = run_sweep(spec, tmp_path / "cut", scheduler=client)
    assert resumed.attrs["points_run"] == 9 - stored
    assert run_sweep(spec, tmp_path / "cut", scheduler=client).attrs["points_run"] == 0
    a, b = load_sweep(tmp_path / "full"), load_sweep(tmp_path / "cut")
    assert a.identical(b)
    for name in ("x", "x_dot"):
        assert a[name].values.tobytes() == b[name].values.tobytes()
    assert full.x.values.tobytes() == resumed.x.values.tobytes()


def test_store_refuses_another_sweep(tmp_path):
    spec = _spec(axes={"k": [1.0]})
    engine._open_store(spec, tmp_path / "s", spec.fingerprint())
    other = _spec(axes={"k": [2.0]})
    with pytest.raises(SweepError, match="another sweep"):  # before any point runs
        run_sweep(other, tmp_path / "s", scheduler="tcp://127.0.0.1:9")


@pytest.mark.parametrize(("axes", "match"), [
    ({"mu": [1.0]}, "axes.mu: 'mu' is neither"),
    ({"k": []}, "axes.k: the axis is empty"),
    ({"k": "1.0"}, "axes.k: values of type str"),
    ({"k": [1.0, "2"]}, "axes.k: value '2'"),
    ({"k": [True]}, "axes.k: value True"),
    ({"seed": [1.5]}, "axes.seed: value 1.5"),
    ({"k": [1.0, 1.0]}, "repeats"),
    ({}, "at least one axis"),
])
def test_malformed_spec_fails_on_construction(axes, match):
    with pytest.raises(SweepError, match=match) as info:
        _spec(axes=axes)
    assert info.value.fix


def test_malformed_spec_other_fields():
    with pytest.raises(SweepError, match="zipped axes"):
        _spec(mode="zip", axes={"k": [1.0, 2.0], "theta": [0.1]})
    with pytest.raises(SweepError, match="unknown task"):
        _spec(task="train_everything")
    with pytest.raises(SweepError, match="unknown outputs"):
        _spec(outputs=("y",))
    with pytest.raises(SweepError, match="convergence axis"):
        _spec(convergence=("mu", "x"))
    with pytest.raises(SweepError, match="other axes have several values"):
        _spec(convergence=("k", "x"))


def test_unanswering_scheduler_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "SCHEDULER_TIMEOUT", 1.0)
    calls = []
    register_task("count_calls", lambda ctx, point: calls.append(point) or {"y": 1.0})
    with pytest.raises(SweepError, match="no Dask scheduler answers") as info:
        run_sweep(_spec(task="count_calls"), tmp_path / "s", scheduler="tcp://127.0.0.1:9")
    assert info.value.field == "scheduler" and not calls
    assert not list((tmp_path / "s" / "points").glob("*.npz"))


def test_problem_by_shipped_name():
    spec = SweepSpec("pendulum", axes={"L": [1.0, 2.0], "q1_dot": [0.0]})
    assert spec.values["g"] == 9.81 and spec.initial["q2"] == 1.0
    with pytest.raises(SweepError, match="'k' is neither"):
        SweepSpec("pendulum", axes={"k": [1.0]})


@pytest.mark.slow
def test_convergence_fit_and_figure(client, tmp_path):
    def power_law(ctx, point):
        return {"err": 3.0 * ctx.values["k"] ** 2}

    register_task("power_law", power_law)
    spec = _spec(axes={"k": [0.1, 0.2, 0.4, 0.8], "theta": [0.3]}, task="power_law",
                 convergence=Convergence("k", "err"))
    ds = run_sweep(spec, tmp_path / "s", scheduler=client)
    assert ds.attrs["convergence_order"] == pytest.approx(2.0, abs=1e-10)
    lo, hi = ds.attrs["convergence_ci"]
    assert lo <= 2.0 <= hi
    assert ds.attrs["convergence_constant"] == pytest.approx(3.0, rel=1e-10)
    png = tmp_path / "s" / "convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_points_in_c_order_grid_and_zip():
    spec = _spec(axes={"theta": [0.0, 0.5], "k": [1.0, 4.0, 9.0], "seed": [3, 4]})
    pts = spec.points()
    assert spec.shape == (2, 3, 2) and len(pts) == spec.size == 12
    assert pts[0] == {"theta": 0.0, "k": 1.0, "seed": 3}
    assert pts[7] == {"theta": 0.5, "k": 1.0, "seed": 4}
    assert [spec.point(i) for i in range(12)] == pts
    zipped = _spec(axes={"k": [1.0, 2.0], "x": [0.1, 0.2]}, mode="zip")
    assert zipped.dims == ("point",) and zipped.point(1) == {"k": 2.0, "x": 0.2}
    with pytest.raises(SweepError, match="point 2"):
        zipped.point(2)


# -- inside a worker: chunks, batches, the built-in tasks (in this process, no cluster) ----
def _serial(spec, point):
    system = compile_system(oscillator())
    values = {**spec.values, **{k: v for k, v in point.items() if k not in ("x", "x_dot")}}
    initial = {**spec.initial, **{k: v for k, v in point.items() if k in ("x", "x_dot")}}
    return simulate(system, spec.output_times(), initial, values, options=spec.options)


@pytest.mark.parametrize("method", ["cvodes", "rk", "dopri"])
def test_chunk_equals_serial_simulate_bit_for_bit_whatever_the_grouping(method):
    """cvodes and rk chunks go through simulate_batch (CasADi map), dopri point by point:
    every point has the bits of a serial simulate call, in any chunk (resume relies on
    it)."""
    spec = _spec(axes={"theta": [0.0, 0.5, 1.0], "x": [0.5, 1.0, 2.0]},
                 options=SolverOptions(method=method))
    payload = engine.payload_of(spec)
    whole = engine.run_chunk(payload, list(range(spec.size)))
    parts = [r for chunk in engine.chunks_of(list(range(spec.size)), 2, 2)
             for r in engine.run_chunk(payload, chunk)]
    assert [i for i, _, _ in whole] == list(range(spec.size))
    for (i, res, err), (j, res2, err2) in zip(whole, parts):
        assert i == j and err == err2 == ""
        ref = _serial(spec, spec.point(i))
        for name in ("x", "x_dot"):
            assert np.array_equal(res[name], np.asarray(ref[name]))
            assert np.array_equal(res2[name], res[name])


def test_failing_point_inside_a_batched_chunk_keeps_its_typed_error():
    spec = _spec(axes={"k": [4.0, -400.0, 9.0]}, times=(0.0, 2.0))
    with pytest.raises(SimulationError):  # what a serial call does at k = -400
        _serial(spec, {"k": -400.0})
    got = engine.run_chunk(engine.payload_of(spec), [0, 1, 2])
    assert got[1][1] is None and got[1][2].startswith("SimulationError")
    for i in (0, 2):
        assert got[i][2] == ""
        ref = _serial(spec, spec.point(i))
        assert np.array_equal(got[i][1]["x"], np.asarray(ref["x"]))


def test_convergence_task_distance_to_the_reference_run():
    spec = _spec(axes={"theta": [0.08, 0.04, 0.02]}, task="convergence", outputs=("x",),
                 convergence=Convergence("theta", reference=0.0), times=(0.0, 3.0),
                 n_points=31, options=SolverOptions(rtol=1e-11, atol=1e-13))
    t = spec.output_times()
    base = oscillator_solution(t, 1.0, 4.0, 0.0, 1.0, 0.0)
    for i, res, err in engine.run_chunk(engine.payload_of(spec), [0, 1, 2]):
        theta = spec.point(i)["theta"]
        closed = oscillator_solution(t, 1.0, 4.0, theta, 1.0, 0.0)
        assert err == ""
        assert float(res["distance"]) == pytest.approx(np.max(np.abs(closed - base)),
                                                       rel=1e-7)
    with pytest.raises(SweepError, match="needs a convergence axis"):
        _spec(task="convergence")
    with pytest.raises(SweepError, match="is a value of the axis"):
        _spec(axes={"theta": [0.1, 0.2, 0.3]}, task="convergence",
              convergence=Convergence("theta", reference=0.2))


def _tiny_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, labels


def test_train_task_seeds_laws_learning_rates():
    """Every point equals a direct learn.train / sgd_baseline call; the derived law's
    limit and hand-written NumPy SGD give the same curves (independent reference)."""
    from cognitive_action.declare.network import layered
    from cognitive_action.learn import sgd_baseline, train

    problem = layered([4, 5, 3]).problem()
    data = (_tiny_data(40, 0), _tiny_data(20, 1))
    spec = SweepSpec(problem, axes={"seed": [0, 1], "law": ["limit", "sgd"],
                                    "learning_rate": [0.05, 0.2]},
                     task="train", epochs=2, data=data)
    got = {i: (res, err) for i, res, err in engine.run_chunk(engine.payload_of(spec),
                                                              list(range(spec.size)))}
    assert spec.shape == (2, 2, 2) and all(err == "" for _, err in got.values())
    for i, (res, _) in got.items():
        p = spec.point(i)
        fn = train if p["law"] == "limit" else sgd_baseline
        ref = fn(problem, *data, epochs=2, learning_rate=p["learning_rate"], seed=p["seed"])
        assert np.array_equal(res["train_loss"], ref.train_loss)
        assert np.array_equal(res["test_accuracy"], ref.test_accuracy)
        assert float(res["final_test_loss"]) == ref.test_loss[-1]
    for seed in (0, 1):
        for lr in (0.05, 0.2):
            limit = got[spec.points().index({"seed": seed, "law": "limit",
                                             "learning_rate": lr})][0]
            sgd = got[spec.points().index({"seed": seed, "law": "sgd",
                                           "learning_rate": lr})][0]
            np.testing.assert_allclose(limit["train_loss"], sgd["train_loss"], rtol=1e-9)
    # seeds and rates change the runs
    assert not np.array_equal(got[0][0]["train_loss"], got[4][0]["train_loss"])
    assert not np.array_equal(got[0][0]["train_loss"], got[1][0]["train_loss"])


def test_train_sweep_on_the_cluster_has_an_epoch_axis(client, tmp_path):
    from cognitive_action.declare.network import layered

    spec = SweepSpec(layered([4, 5, 3]).problem(), axes={"seed": [0, 1, 2]}, task="train",
                     epochs=2, data=(_tiny_data(30, 0), _tiny_data(10, 1)))
    ds = run_sweep(spec, tmp_path / "s", scheduler=client, chunk_size=1)
    assert ds.train_loss.dims == ("seed", "epoch") and list(ds.epoch.values) == [0, 1, 2]
    assert (ds.status == "ok").all() and ds.attrs["points_run"] == 3


# -- the driver killed for real (a separate process), then the same call again ----------------
_DRIVER = '''
import sys, time
sys.path.insert(0, {tests!r})
from references import oscillator
from cognitive_action.sweeps import SweepSpec, register_task, run_sweep

def slow_square(ctx, point):
    time.sleep(0.25)
    return {{"y": ctx.values["k"] ** 2 + ctx.values["theta"]}}

register_task("slow_square", slow_square)
if __name__ == "__main__":  # the local cluster's worker processes import this module
    spec = SweepSpec(oscillator(), axes={{"k": [float(k) for k in range(1, 17)]}},
                     values={{"m": 1.0, "theta": 0.3}}, task="slow_square")
    ds = run_sweep(spec, sys.argv[1], n_workers=1, chunk_size=1)
    print("points_run", ds.attrs["points_run"])
'''


@pytest.mark.slow
def test_killed_driver_rerun_runs_only_missing_points(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(tests=str(os.path.dirname(__file__))), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(store, **kw):
        return subprocess.Popen([sys.executable, str(script), str(store)], env=env,
                                stdout=subprocess.PIPE, text=True, **kw)

    proc = run(tmp_path / "cut", start_new_session=True)
    points = tmp_path / "cut" / "points"
    deadline = time.monotonic() + 120
    while len(list(points.glob("*.npz"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its cluster, mid-sweep
    proc.wait()
    # the workers die a moment after the driver: count the stored points only once no
    # process of the group is left (a worker finishing a point after the count made the
    # rerun's number differ by one, now and then)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    stored = len(list(points.glob("*.npz")))
    assert 3 <= stored < 16
    out = run(tmp_path / "cut").communicate(timeout=300)[0]
    assert f"points_run {16 - stored}" in out
    full = run(tmp_path / "full").communicate(timeout=300)[0]
    assert "points_run 16" in full
    a, b = load_sweep(tmp_path / "full"), load_sweep(tmp_path / "cut")
    assert a.identical(b) and a.y.values.tobytes() == b.y.values.tobytes()
    np.testing.assert_array_equal(a.y.values, a.k.values ** 2 + 0.3)
