"""Batched runs (:func:`simulate_batch`) against independent references.

References: serial :func:`simulate` runs of the same compiled system (the batch must
reproduce them to 1e-10, they share only the compiled right-hand side); the closed form
of the weighted oscillator ``m ẍ + θ m ẋ + k x = 0``; the blow-up time of ``m ẍ = a x³``
from its energy integral (``scipy.integrate.quad``) for the failing grid point; SciPy's
``solve_ivp`` on a hand-written right-hand side for a zipped table.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from references import oscillator_solution
from scipy.integrate import quad, solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate
from cognitive_action.compile.batch import OptionalDependencyError, simulate_batch
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.errors import (
    CompileError,
    InconsistentInitialConditionsError,
    SimulationError,
)


@pytest.fixture(scope="module")
def osc():
    x, = S.coordinates("x")
    m, k, theta = S.parameters("m k theta")
    w = sp.exp(theta * S.t)
    return compile_system(Problem(Action([x], masses=m, weight=w, lagrangian=-w * k * x**2 / 2),
                                  parameters=[m, k, theta], name="oscillator"))


THETAS = [0.0, 0.4, 1.3, 5.0]  # 5.0 is overdamped (k/m = 4 < θ²/4)


@pytest.mark.parametrize("method", ["cvodes", "rk"])
def test_oscillator_grid_against_closed_form(osc, method):
    b = simulate_batch(osc, (0.0, 10.0), {"x": 1.0, "x_dot": -0.5}, {"m": 1.5, "k": 6.0},
                       grid={"theta": THETAS}, method=method, rtol=1e-10, atol=1e-12,
                       n_points=41, steps=40, progress=False)
    assert b.dims == ("theta", "time", "state")
    assert b.values.shape == (4, 41, 2)
    assert not b.failed.any() and b.errors == {}
    for theta in THETAS:
        exact = oscillator_solution(b.times, 1.5, 6.0, theta, 1.0, -0.5)
        x = b.sel(theta=theta, state="x").values
        assert np.max(np.abs(x - exact)) < 1e-7  # cvodes at 1e-10, RK4 with h = 1/160


def test_batch_equals_serial_runs_on_a_two_axis_grid(osc):
    thetas, v0s = [0.0, 0.7, 3.0], [-0.5, 0.0, 0.8]
    b = simulate_batch(osc, (0.0, 5.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.5, "k": 6.0},
                       grid={"theta": thetas, "x_dot": v0s}, rtol=1e-10, atol=1e-12,
                       n_points=21, progress=False)
    assert b.dims == ("theta", "x_dot", "time", "state")
    for theta in thetas:
        for v0 in v0s:
            serial = simulate(osc, (0.0, 5.0), {"x": 1.0, "x_dot": v0},
                              {"m": 1.5, "k": 6.0, "theta": theta}, rtol=1e-10, atol=1e-12,
                              n_points=21)
            assert np.max(np.abs(b.sel(theta=theta, x_dot=v0).values - serial.y)) < 1e-10
            assert np.max(np.abs(b.run(theta=theta, x_dot=v0)["x_ddot"]
                                 - serial["x_ddot"])) < 1e-10
    # the initial states carry the grid's x_dot; the parameter vectors its θ
    np.testing.assert_array_equal(b.initial[1, 2], [1.0, 0.8])
    assert b.params[2, 0, osc.parameters.index("theta")] == 3.0


def test_one_and_two_threads_and_chunks_agree(osc):
    kw = dict(grid={"theta": np.linspace(0.0, 2.0, 7)}, rtol=1e-9, atol=1e-11, n_points=11,
              progress=False)
    base = ({"x": 1.0, "x_dot": 0.2}, {"m": 1.0, "k": 3.0})
    one = simulate_batch(osc, (0.0, 4.0), *base, n_threads=1, **kw)
    two = simulate_batch(osc, (0.0, 4.0), *base, n_threads=2, **kw)
    chunked = simulate_batch(osc, (0.0, 4.0), *base, n_threads=2, chunk_size=3, **kw)
    assert chunked.stats["n_chunks"] == 3 and chunked.stats["chunk_size"] == 3
    assert np.max(np.abs(one.values - two.values)) < 1e-12
    assert np.max(np.abs(one.values - chunked.values)) < 1e-12
    for theta, row in zip(one.coords["theta"], one.values):
        exact = oscillator_solution(one.times, 1.0, 3.0, theta, 1.0, 0.2)
        assert np.max(np.abs(row[:, 0] - exact)) < 1e-6


def test_zipped_table_against_solve_ivp(osc):
    ks, thetas = [1.0, 4.0, 9.0], [0.2, 0.0, 1.0]
    b = simulate_batch(osc, (0.0, 3.0), [0.5, 0.0], {"m": 2.0}, table={"k": ks, "theta": thetas},
                       table_axis="case", rtol=1e-10, atol=1e-12, n_points=16, progress=False)
    assert b.dims == ("case", "time", "state")
    assert b.point((1,)) == {"k": 4.0, "theta": 0.0}
    for k, theta in zip(ks, thetas):
        ref = solve_ivp(lambda t, s, k=k, theta=theta: [s[1], -theta * s[1] - k / 2.0 * s[0]],
                        (0.0, 3.0), [0.5, 0.0], t_eval=b.times, rtol=1e-12, atol=1e-13,
                        method="DOP853")
        got = b.sel(k=k)  # a table column selects on the table's axis
        assert got.dims == ("time", "state")
        assert np.max(np.abs(got.values.T - ref.y)) < 1e-7
    sub = b.sel(theta=[0.0, 1.0], state="x")
    assert sub.dims == ("case", "time") and sub.shape == (2, 16)
    np.testing.assert_array_equal(sub.aux["k"][1], [4.0, 9.0])


# -- failures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cubic():
    x, = S.coordinates("x")
    m, a = S.parameters("m a")
    return compile_system(Problem(Action([x], masses=m, lagrangian=a * x**4 / 4),
                                  parameters=[m, a], name="cubic"))


# m ẍ = a x³ from x = 1 at rest, a = 4 m: ½ẋ² = x⁴ - 1 blows up at ∫_1^∞ dx / √(2(x⁴-1))
BLOWUP_TIME = quad(lambda x: 1 / np.sqrt(2 * (x**4 - 1)), 1, np.inf)[0]


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_failing_grid_point_is_reported_and_others_survive(cubic, chunk_size):
    avals = [-4.0, 4.0, -1.0, 0.0, -2.0]
    b = simulate_batch(cubic, (0.0, 1.5), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0},
                       grid={"a": avals}, rtol=1e-10, atol=1e-12, n_points=16,
                       chunk_size=chunk_size, progress=False)
    np.testing.assert_array_equal(b.failed, [False, True, False, False, False])
    (point, err), = b.failures
    assert point == {"a": 4.0}
    assert isinstance(err, SimulationError)
    assert err.time == pytest.approx(BLOWUP_TIME, abs=1e-4)  # located, as simulate does
    assert np.all(np.isnan(b.values[1]))  # NaN only where flagged
    with pytest.raises(SimulationError, match=r"a = 4"):
        b.sel(a=4.0)
    with pytest.raises(SimulationError, match=r"a = 4"):
        b.sel(state="x")  # the selection includes the failed run
    assert np.isnan(b.sel(state="x", allow_failed=True).values[1]).all()
    with pytest.raises(SimulationError):
        b.run(a=4.0)
    for a in (-4.0, -1.0, 0.0, -2.0):
        serial = simulate(cubic, (0.0, 1.5), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "a": a},
                          rtol=1e-10, atol=1e-12, n_points=16)
        assert np.max(np.abs(b.sel(a=a).values - serial.y)) < 1e-10
    # a = 0: free motion from rest; x stays 1 exactly
    np.testing.assert_allclose(b.sel(a=0.0, state="x").values, 1.0, atol=1e-12)
    assert b.stats["n_failed"] == 1


def test_blow_up_on_the_output_grid_is_a_failure_not_nan(cubic):
    # fixed-step RK4 does not fail inside CasADi: the blow-up shows as huge or NaN output
    b = simulate_batch(cubic, (0.0, 3.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0},
                       grid={"a": [4.0, -4.0]}, method="rk", steps=5, n_points=31,
                       max_norm=1e6, progress=False)
    np.testing.assert_array_equal(b.failed, [True, False])
    assert isinstance(b.errors[(0,)], SimulationError)
    assert b.errors[(0,)].time < 3.0


# -- a derived network with constraints ---------------------------------------------------------
@pytest.fixture(scope="module")
def xor_batch_setup():
    net = ca_.xor()
    pr = net.problem(inputs={1: sp.sin(S.t), 2: sp.cos(2 * S.t)}, targets={5: 0.5})
    el = ca_.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    weights = {str(w): rng.normal() * 0.5 for w in net.weights}

    def initial(point):
        masses = {"m_x": 1.0, "m_W": 2.0} | point
        return ca_.complete_initial_conditions(el, weights | masses)

    return compile_system(pr), initial


@pytest.mark.parametrize("stabilization", [None, "projection"])
def test_xor_batch_over_masses_equals_serial(xor_batch_setup, stabilization):
    system, initial = xor_batch_setup
    mW = [0.5, 2.0, 8.0]
    b = simulate_batch(system, (0.0, 3.0), initial, grid={"m_W": mW}, rtol=1e-10,
                       atol=1e-12, n_points=16, stabilization=stabilization, progress=False)
    assert not b.failed.any()
    for v in mW:
        ic = initial({"m_W": v})
        serial = simulate(system, (0.0, 3.0), ic, rtol=1e-10, atol=1e-12, n_points=16,
                          stabilization=stabilization)
        assert np.max(np.abs(b.sel(m_W=v).values - serial.y)) < 1e-10
        np.testing.assert_allclose(b.drift[mW.index(v)], serial.drift, atol=1e-13)
    assert np.all(b.max_drift < (1e-12 if stabilization else 1e-5))


def test_inconsistent_grid_point_fails_alone(xor_batch_setup):
    system, initial = xor_batch_setup
    ic = initial({})
    # x3 is a hidden neuron: moving it breaks its constraint x3 = σ(a3) except at its value
    b = simulate_batch(system, (0.0, 1.0), ic, grid={"x3": [ic["x3"], ic["x3"] + 0.1]},
                       n_points=5, progress=False)
    np.testing.assert_array_equal(b.failed, [False, True])
    assert isinstance(b.errors[(1,)], InconsistentInitialConditionsError)
    assert "G3" in str(b.errors[(1,)])


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"grid": {"thetta": [0.0]}}, "did you mean 'theta'"),
    ({"grid": {"theta": []}}, "empty"),
    ({"grid": {"theta": [0.0, np.nan]}}, "non-finite"),
    ({"grid": {"theta": [0.0, np.inf]}}, "non-finite"),
    ({"grid": {"theta": [[0.0, 1.0]]}}, "one-dimensional"),
    ({"grid": {"theta": ["a"]}}, "not numbers"),
    ({"grid": {"theta": [1.0, 1.0]}}, "repeat"),
    ({"grid": {}}, "nothing to batch"),
    ({"table": {"theta": [0.0, 1.0], "k": [1.0]}}, "different lengths"),
    ({"grid": {"theta": [0.0]}, "table": {"theta": [1.0]}}, "both grid and table"),
    ({"table": {"theta": [0.0]}, "table_axis": "k"}, "collides"),
    ({"grid": [0.0, 1.0]}, "mapping"),
    ({"grid": {"theta": [0.0]}, "n_threads": 0}, "n_threads"),
    ({"grid": {"theta": [0.0]}, "chunk_size": 1.5}, "chunk_size"),
    ({"grid": {"theta": [0.0]}, "method": "euler"}, "unknown method"),
])
def test_bad_batches_raise_compile_errors(osc, kwargs, match):
    with pytest.raises(CompileError, match=match) as info:
        simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 1.0},
                       progress=False, **kwargs)
    assert info.value.fix


def test_missing_parameter_and_bad_selection(osc):
    with pytest.raises(CompileError, match="no value given for the parameter"):
        simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0},
                       grid={"theta": [0.0]}, progress=False)
    b = simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 1.0},
                       grid={"theta": [0.0, 1.0]}, n_points=3, progress=False)
    with pytest.raises(CompileError, match="not a coordinate"):
        b.sel(theta=0.5)
    with pytest.raises(CompileError, match="did you mean 'x_dot'"):
        b.sel(state="x_dott")
    with pytest.raises(CompileError, match="did you mean 'theta'"):
        b.sel(thetaa=0.0)
    with pytest.raises(CompileError, match="every batch axis"):
        b.run()


def test_to_xarray(osc):
    b = simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 1.0},
                       grid={"theta": [0.0, 1.0]}, n_points=3, progress=False)
    try:
        import xarray  # noqa: F401
    except ImportError:
        with pytest.raises(OptionalDependencyError, match="pip install xarray"):
            b.to_xarray()
        return
    da = b.to_xarray()
    assert da.dims == b.dims
    np.testing.assert_array_equal(da.sel(theta=1.0, state="x").values,
                                  b.sel(theta=1.0, state="x").values)


def test_progress_bar_steps_once_per_chunk(osc, capsys):
    b = simulate_batch(osc, (0.0, 1.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 1.0},
                       grid={"theta": np.linspace(0.0, 1.0, 8)}, n_points=3, progress=True)
    assert b.stats["n_chunks"] == 4 and b.stats["chunk_size"] == 2  # 8 runs, 2 threads
    assert "simulate_batch" in capsys.readouterr().err


def test_grid_and_table_together_and_isel(osc):
    b = simulate_batch(osc, (0.0, 2.0), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0},
                       grid={"theta": [0.0, 0.5]}, table={"k": [1.0, 4.0, 9.0],
                                                          "x": [1.0, 0.5, -1.0]},
                       rtol=1e-10, atol=1e-12, n_points=9, progress=False)
    assert b.dims == ("theta", "run", "time", "state")
    assert b.values.shape == (2, 3, 9, 2)
    for theta in (0.0, 0.5):
        for k, x0 in ((1.0, 1.0), (4.0, 0.5), (9.0, -1.0)):
            exact = oscillator_solution(b.times, 1.0, k, theta, x0, 0.0)
            got = b.sel(theta=theta, k=k, state="x").values
            assert np.max(np.abs(got - exact)) < 1e-7
    np.testing.assert_array_equal(b.data.isel(theta=1, run=2).values,
                                  b.sel(theta=0.5, x=-1.0).values)
    final = b.sel(time=2.0, state="x_dot")  # a time coordinate, to 1e-12 relative
    assert final.dims == ("theta", "run")
    np.testing.assert_array_equal(final.values, b.values[:, :, -1, 1])


@pytest.fixture(scope="module")
def vakonomic_chain():
    c = sp.Symbol("c", positive=True)
    pr = ca_.chain(3, speed=c).problem(targets={3: 0.5})
    el = ca_.euler_lagrange(pr)

    def initial(point):
        given = {"w2_1": 0.5, "w3_2": -0.3, "e1": 1.0, "e1_dot": 0.0, "m_x": 1.0,
                 "m_W": 1.0, "c": point["c"]}
        return ca_.complete_initial_conditions(el, given) | {"mu_G2": 0.0, "mu_G3": 0.0}

    return compile_system(el), initial


def _fd_jacobian(system, y, params, h=1e-6):
    cols = []
    for i in range(y.size):
        e = np.zeros(y.size)
        e[i] = h
        cols.append((system.evaluate(0.0, y + e, params) - system.evaluate(0.0, y - e, params))
                    / (2 * h))
    return np.column_stack(cols)


def test_anti_stable_grid_point_fails_alone(vakonomic_chain):
    system, initial = vakonomic_chain
    params = {"m_x": 1.0, "m_W": 1.0, "e1": 1.0}
    b = simulate_batch(system, (0.0, 2.0), initial, params, grid={"c": [0.5, 10.0]},
                       n_points=11, progress=False)
    np.testing.assert_array_equal(b.failed, [False, True])
    err = b.errors[(1,)]
    assert isinstance(err, ca_.errors.UnstableSystemError)
    # the predicted growth is 2 × the largest real eigenvalue of ∂f/∂y, here taken by
    # central differences of the right-hand side (eq. 20 is anti-stable at a rate ~ c)
    y0 = b.initial[1]
    lam = np.linalg.eigvals(_fd_jacobian(system, y0, params | {"c": 10.0})).real.max()
    assert lam > 5.0
    assert err.growth == pytest.approx(2.0 * lam, rel=1e-5)
    serial = simulate(system, (0.0, 2.0), initial({"c": 0.5}), params | {"c": 0.5},
                      n_points=11)
    assert np.max(np.abs(b.sel(c=0.5).values - serial.y)) < 1e-10


def test_dopri_is_refused_for_batches_with_a_fix():
    import cognitive_action as ca_
    from cognitive_action.compile import compile_system
    from cognitive_action.errors import CompileError as _CompileError

    p = ca_.chain(3).problem()
    with pytest.raises(_CompileError, match="cannot be mapped"):
        simulate_batch(compile_system(p), (0, 1), {}, grid={"m_x": [1.0, 2.0]},
                       method="dopri")
