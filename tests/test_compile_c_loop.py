"""Dormand-Prince's step loop in generated C (``simulate(..., loop="c")``, issue 16).

References: the Python loop of ``integrate_dopri`` (the same steps: equal counts of
accepted and rejected steps and evaluations, the final state bit for bit, every output
point to 1e-12 relative); SciPy's DOP853 at rtol 1e-12 on the same right-hand side (an
independent integrator); the minimal-coordinate pendulum ``φ̈ = -(g/L) sin φ`` by DOP853;
the drift report against one evaluation of ``system.constraints`` per output point. Every
test compiles C, so it is skipped without a C compiler, as in test_compile_codegen.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from references import G_ACC, pendulum
from scipy.integrate import solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import SolverOptions, compile_system, simulate
from cognitive_action.compile.c_loop import c_loop_for
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.errors import CompileError, SimulationError

pytestmark = pytest.mark.skipif(
    not any(os.access(os.path.join(d, c), os.X_OK) for d in os.environ.get("PATH", "").split(":")
            for c in ("cc", "gcc", "clang")),
    reason="no C compiler")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_compile import VALUES, dense_problem  # noqa: E402
from bench_integrate import consistent_state  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    """A cache of this module's libraries (the user's cache is left alone)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COGNITIVE_ACTION_CACHE", str(tmp_path_factory.mktemp("c_loop")))
        yield


def dense_net(n: int, seed: int = 0, blas: bool = True):
    """bench_compile's dense recurrent net of ``n`` neurons (2 inputs), its compiled
    system, parameter values and bench_integrate's consistent state (``x = tanh(W x)``,
    at rest)."""
    system = compile_system(ca_.derive_network(dense_problem(n)[1]), blas=blas)
    return system, VALUES | {f"y{n - 1}": 0.25}, consistent_state(n, seed)


def _same_run(a, b, rtol: float = 1e-12, exact: bool = True) -> None:
    """The same steps; the final state (a step end) bit for bit if ``exact``; every
    output point to ``rtol`` of its component's scale."""
    for key in ("nsteps", "nreject", "nfevals"):
        assert a.stats[key] == b.stats[key], key
    if exact:
        assert np.array_equal(a.y[-1], b.y[-1])
    scale = np.abs(b.y).max(axis=0)
    assert np.all(np.abs(a.y - b.y) <= rtol * np.maximum(scale, 1e-300))


@pytest.mark.parametrize(("n", "seed", "blas"), [(10, 0, True), (10, 3, False),
                                                 (20, 1, True), (20, 1, False)])
def test_dense_net_same_steps_as_the_python_loop(n, seed, blas):
    """Without BLAS products the generated C does the VM's operations: the step ends
    bit for bit. With them the VM's BLAS plugin and the generated ``dgemm_`` calls sum
    in different orders (measured: 1.7e-16 on the right-hand side at n = 20)."""
    system, values, y0 = dense_net(n, seed, blas)
    grid = np.linspace(0.0, 10.0, 1000)
    kw = dict(method="dopri", rtol=1e-6, atol=1e-9)
    py = simulate(system, grid, y0, values, **kw)
    c = simulate(system, grid, y0, values, loop="c", **kw)
    _same_run(c, py, exact=not blas)
    # the drift report (G, Ġ in C) against one call of system.constraints per point
    pointwise = [system.constraints(t, y, c.params) for t, y in zip(grid, c.y)]
    G = np.array([np.asarray(g).ravel() for g, _ in pointwise])
    Gd = np.array([np.asarray(gd).ravel() for _, gd in pointwise])
    np.testing.assert_array_equal(c.constraint_values, G)
    np.testing.assert_array_equal(c.constraint_rates, Gd)
    assert c.max_drift == np.abs(G).max()
    # against SciPy's DOP853 at a tight tolerance on the same right-hand side
    p = c.params

    def f(t, y):
        return np.asarray(system.rhs(t, y, p)).ravel()

    tight = simulate(system, grid, y0, values, loop="c", method="dopri", rtol=1e-12,
                     atol=1e-14)
    ref = solve_ivp(f, (0, 10), y0, t_eval=grid[::50], method="DOP853", rtol=1e-12,
                    atol=1e-14).y.T
    scale = np.abs(ref).max()
    assert np.abs(tight.y[::50] - ref).max() / scale < 1e-9
    assert 1e-9 < np.abs(c.y[::50] - ref).max() / scale < 1e-4  # rtol 1e-6: that size


def test_dense_net_of_50_neurons_recompiled_with_ldl():
    """At 50 neurons eq. (10) is solved by a NumPy/SciPy kernel in the VM; the C loop
    recompiles the system with ``ldl``: the same steps, outputs equal to round-off."""
    system, values, y0 = dense_net(50, 2)
    _loop, target = c_loop_for(system)
    assert system.linear_solver != "ldl" and target.linear_solver == "ldl"
    grid = np.linspace(0.0, 10.0, 200)
    kw = dict(method="dopri", rtol=1e-6, atol=1e-9)
    py = simulate(system, grid, y0, values, **kw)
    c = simulate(system, grid, y0, values, loop="c", **kw)
    for key in ("nsteps", "nreject", "nfevals"):
        assert c.stats[key] == py.stats[key]
    np.testing.assert_allclose(c.y, py.y, rtol=0, atol=1e-12 * np.abs(py.y).max())
    np.testing.assert_allclose(c.constraint_values, py.constraint_values, rtol=0,
                               atol=1e-13)
    np.testing.assert_allclose(c.constraint_rates, py.constraint_rates, rtol=0, atol=1e-13)


@pytest.mark.parametrize(("phi0", "tol"), [(1.0, 1e-3), (2.5, 1e-6), (3.0, 1e-10)])
def test_pendulum_with_rejected_steps(phi0, tol):
    system = compile_system(pendulum())
    y0 = {"q1": np.cos(phi0), "q2": np.sin(phi0), "q1_dot": 0.0, "q2_dot": 0.0}
    params = {"m": 1.0, "g": G_ACC, "L": 1.0}
    kw = dict(method="dopri", rtol=tol, atol=tol * 1e-2, n_points=201)
    py = simulate(system, (0.0, 10.0), y0, params, **kw)
    c = simulate(system, (0.0, 10.0), y0, params, loop="c", **kw)
    assert c.stats["nreject"] > 0  # the step control rejected steps: same ones
    _same_run(c, py)
    if tol <= 1e-10:  # accurate: against minimal coordinates, as in test_compile_explicit
        ref = solve_ivp(lambda t, s: [s[1], -G_ACC * np.sin(s[0])], (0, 10), [phi0, 0.0],
                        t_eval=c.times, rtol=1e-12, atol=1e-12, method="DOP853")
        assert np.abs(c["q1"] - np.cos(ref.y[0])).max() < 1e-6
        assert np.abs(c["q2"] - np.sin(ref.y[0])).max() < 1e-6


def test_projection_and_progress_fall_back_or_agree():
    system = compile_system(pendulum())
    y0 = {"q1": np.cos(1.0), "q2": np.sin(1.0), "q1_dot": 0.0, "q2_dot": 0.0}
    params = {"m": 1.0, "g": G_ACC, "L": 1.0}
    kw = dict(method="dopri", rtol=1e-8, atol=1e-10, n_points=101)
    # projection: the Python loop runs (bit for bit its result)
    a = simulate(system, (0.0, 5.0), y0, params, stabilization="projection", **kw)
    b = simulate(system, (0.0, 5.0), y0, params, stabilization="projection", loop="c",
                 **kw)
    np.testing.assert_array_equal(a.y, b.y)
    # chunks (checkpoints, progress): each chunk in C, as the Python loop's chunks
    a = simulate(system, (0.0, 5.0), y0, params, chunks=4, **kw)
    seen = []
    b = simulate(system, (0.0, 5.0), y0, params, chunks=4, loop="c",
                 on_chunk=lambda cp: seen.append(cp.done), **kw)
    assert seen == [1, 2, 3, 4] and b.stats["chunks"] == 4
    _same_run(b, a, exact=False)  # an output point by the dense output: round-off


def test_progress_callback_is_called_while_the_c_loop_runs():
    from cognitive_action.compile.explicit import integrate_dopri

    system, values, y0 = dense_net(10)
    loop, _ = c_loop_for(system)
    p = system.parameter_vector(values)
    grid = np.linspace(0.0, 10.0, 500)
    reached = []
    res = integrate_dopri(None, system.rhs, grid, y0, p, rtol=1e-10, atol=1e-12,
                          c_loop=loop, on_output=reached.append)
    assert reached[0] == 1 and reached[-1] == grid.size
    assert reached == sorted(reached)
    plain = integrate_dopri(None, system.rhs, grid, y0, p, rtol=1e-10, atol=1e-12,
                            c_loop=loop)
    np.testing.assert_array_equal(res.y, plain.y)  # pausing changes nothing


def quartic():
    x, = S.coordinates("x")
    m, = S.parameters("m")
    return Problem(Action([x], masses=m, lagrangian=x**4), parameters=[m], name="quartic")


def test_blow_up_and_step_limit_are_the_same_errors():
    system = compile_system(quartic())
    errors = []
    for loop in ("python", "c"):
        with pytest.raises(SimulationError) as info:
            simulate(system, (0, 3), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0}, method="dopri",
                     loop=loop)
        errors.append(info.value)
    assert str(errors[0]) == str(errors[1])
    assert errors[0].time == errors[1].time and errors[0].state_norm == errors[1].state_norm
    assert errors[1].time == pytest.approx(0.92704, abs=1e-3)  # ∫_1^∞ dx / √(2(x⁴-1))
    errors = []
    for loop in ("python", "c"):
        with pytest.raises(SimulationError, match="max_steps") as info:
            simulate(system, (0, 0.5), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0},
                     method="dopri", rtol=1e-12, atol=1e-14, max_steps=20, loop=loop)
        errors.append(info.value)
    assert str(errors[0]) == str(errors[1]) and errors[0].time == errors[1].time
    assert 0.0 < errors[1].time < 0.5


def test_bad_loop_option_and_missing_compiler(monkeypatch):
    with pytest.raises(CompileError, match="loop"):
        SolverOptions(loop="fortran")
    system = compile_system(quartic())
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(CompileError, match="no C compiler") as info:
        simulate(system, (0, 0.5), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0}, method="dopri",
                 loop="c")
    assert "gcc" in info.value.fix


def test_a_pickled_loop_loads_its_library_again():
    import pickle

    system, values, y0 = dense_net(10)
    loop, _ = c_loop_for(system)
    p = system.parameter_vector(values)
    again = pickle.loads(pickle.dumps(loop))
    np.testing.assert_array_equal(again.rhs(0.3, y0, p),
                                  np.asarray(system.rhs(0.3, y0, p)).ravel())
