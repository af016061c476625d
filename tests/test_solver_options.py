"""One solver-options object for simulate, simulate_batch and adjoint_sweep.

References: the closed form of the weighted oscillator ``m ẍ + θ m ẋ + k x = 0``
(tests/references.py) for the forward and batched runs; for the adjoint sweep the closed
form of the linear multiplier equation (20) of a three-neuron chain with x at its fixed
point and frozen weights, ``μ(t) = μ* + expm(cA(t - T))(μ_T - μ*)`` (scipy.linalg.expm).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from references import oscillator, oscillator_solution
from scipy.linalg import expm

import cognitive_action as cog
from cognitive_action.compile import (
    SolverOptions,
    adjoint_sweep,
    compile_system,
    simulate,
    simulate_batch,
)
from cognitive_action.compile.adjoint import ADJOINT_DEFAULTS
from cognitive_action.declare import symbols as S
from cognitive_action.errors import CompileError

OSC = {"m": 1.5, "k": 6.0, "theta": 0.4}
X0, V0 = 1.0, -0.5


@pytest.fixture(scope="module")
def osc():
    return compile_system(oscillator())


@pytest.mark.parametrize("field, value", [
    ("method", "euler"), ("rtol", -1e-8), ("rtol", math.nan), ("atol", 0.0),
    ("atol", "1e-10"), ("multistep", "gear"), ("newton", "broyden"), ("steps", 0),
    ("steps", 2.5), ("max_steps", -1), ("stabilization", "magic"),
    ("baumgarte", (1.0,)), ("baumgarte", (1.0, math.inf)), ("project_every", 0),
    ("stability", "maybe"), ("max_norm", -1.0), ("check_initial", "yes"),
    ("initial_tol", -1e-6), ("progress", "always"), ("integrator_options", [("a", 1)]),
])
def test_each_bad_value_is_refused_naming_the_field(field, value):
    with pytest.raises(CompileError, match=rf"SolverOptions\.{field} = ") as err:
        SolverOptions(**{field: value})
    assert err.value.fix
    good = SolverOptions()  # replace() validates as the constructor does
    with pytest.raises(CompileError, match=rf"SolverOptions\.{field} = "):
        dataclasses.replace(good, **{field: value})


def test_options_are_frozen_and_replace_friendly():
    opts = SolverOptions(method="dopri", integrator_options={"max_order": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.rtol = 1.0
    extra = {"max_order": 3}
    opts = SolverOptions(integrator_options=extra)
    extra["max_order"] = 5  # a copy is kept
    assert opts.integrator_options["max_order"] == 3
    new = dataclasses.replace(opts, rtol=1e-9)
    assert (new.rtol, new.integrator_options["max_order"], opts.rtol) == (1e-9, 3, 1e-8)
    assert new.changed() == ("rtol", "integrator_options")
    same = SolverOptions(integrator_options={"max_order": 3})
    assert same == opts and hash(same) == hash(opts)  # usable as a cache key
    assert len({opts, same, new}) == 2
    flags = SolverOptions(check_initial=np.bool_(False), progress=np.bool_(True))
    assert (flags.check_initial, flags.progress) == (False, True)
    assert type(flags.check_initial) is bool and type(flags.progress) is bool


def test_unknown_keywords_and_wrong_options_are_refused(osc):
    with pytest.raises(TypeError, match="'rtl'.*did you mean 'rtol'.*method, rtol, atol"):
        simulate(osc, (0.0, 1.0), [X0, V0], OSC, rtl=1e-9)
    with pytest.raises(TypeError, match="simulate_batch.*'n_thread'"):
        simulate_batch(osc, (0.0, 1.0), [X0, V0], OSC, grid={"k": [1.0]}, n_thread=1)
    with pytest.raises(TypeError, match="adjoint_sweep.*'iteration'"):
        adjoint_sweep(osc, (0.0, 1.0), [X0, V0], OSC, iteration=3)
    with pytest.raises(CompileError, match="takes a SolverOptions, got dict") as err:
        simulate(osc, (0.0, 1.0), [X0, V0], OSC, options={"rtol": 1e-9})
    assert "integrator_options" in err.value.fix


def test_options_object_and_keywords_give_identical_trajectories(osc):
    times = np.linspace(0.0, 10.0, 41)
    by_object = simulate(osc, times, [X0, V0], OSC,
                         options=SolverOptions(method="dopri", rtol=1e-8))
    by_keywords = simulate(osc, times, [X0, V0], OSC, method="dopri", rtol=1e-8)
    np.testing.assert_array_equal(by_object.y, by_keywords.y)
    assert by_object.method == by_keywords.method
    # keywords override the object's fields
    tighter = simulate(osc, times, [X0, V0], OSC, options=SolverOptions(method="dopri"),
                       rtol=1e-11, atol=1e-13)
    exact = oscillator_solution(times, OSC["m"], OSC["k"], OSC["theta"], X0, V0)
    err_8 = np.max(np.abs(by_object["x"] - exact))
    err_11 = np.max(np.abs(tighter["x"] - exact))
    assert err_8 < 1e-6 and err_11 < 1e-9 and err_11 < err_8


@pytest.mark.parametrize("method", ["cvodes", "rk", "collocation"])
def test_oscillator_through_the_options_path_matches_its_closed_form(osc, method):
    opts = SolverOptions(method=method, rtol=1e-10, atol=1e-12, steps=40)
    times = np.linspace(0.0, 10.0, 41)
    run = simulate(osc, times, {"x": X0, "x_dot": V0}, OSC, options=opts)
    exact = oscillator_solution(times, OSC["m"], OSC["k"], OSC["theta"], X0, V0)
    assert np.max(np.abs(run["x"] - exact)) < 1e-7


def test_batch_takes_the_same_options_object(osc):
    opts = SolverOptions(method="cvodes", rtol=1e-10, atol=1e-12, progress=False)
    thetas = [0.0, 0.4, 5.0]  # 5.0 is overdamped
    batch = simulate_batch(osc, (0.0, 10.0), [X0, V0], {"m": OSC["m"], "k": OSC["k"]},
                           grid={"theta": thetas}, n_points=41, options=opts)
    for theta in thetas:
        serial = simulate(osc, (0.0, 10.0), [X0, V0], OSC | {"theta": theta}, n_points=41,
                          options=opts)
        x = batch.sel(theta=theta, state="x").values
        np.testing.assert_allclose(x, serial["x"], rtol=0, atol=1e-10)
        exact = oscillator_solution(batch.times, OSC["m"], OSC["k"], theta, X0, V0)
        assert np.max(np.abs(x - exact)) < 1e-7
    with pytest.raises(CompileError, match="dopri"):
        simulate_batch(osc, (0.0, 1.0), [X0, V0], OSC, grid={"k": [1.0]},
                       options=dataclasses.replace(opts, method="dopri"))


def _dsig(a):
    return 1.0 - np.tanh(a) ** 2


@pytest.fixture(scope="module")
def chain():
    """Chain 1 -> 2 -> 3 (tanh) with speed c, constant input 0.7, target 0.5."""
    c, = S.parameters("c")
    net = cog.chain(3, speed=c)
    problem = net.problem(inputs={1: 0.7}, targets={3: 0.5}, parameters=[c])
    return compile_system(cog.euler_lagrange(problem))


def test_adjoint_sweep_takes_the_same_options_object(chain):
    """x at its fixed point, frozen weights: eq. (20) is linear, μ̇ = c(A μ + b),
    A = I - (σ'W)ᵀ, b = V_x, solved backward from μ(T) = μ_T in closed form."""
    w21, w32, speed, T = 0.8, -1.1, 10.0, 1.0
    x2 = np.tanh(w21 * 0.7)
    x3 = np.tanh(w32 * x2)
    y0 = {"x1": 0.7, "x2": x2, "x3": x3, "w2_1": w21, "w3_2": w32, "x1_dot": 0.0,
          "x2_dot": 0.0, "x3_dot": 0.0, "w2_1_dot": 0.0, "w3_2_dot": 0.0,
          "mu_G2": 0.0, "mu_G3": 0.0}
    values = {"c": speed, "m_x": 1e-3, "m_W": 1e12}
    mu_T = np.array([0.3, -0.2])
    final = {"mu_G2": mu_T[0], "mu_G3": mu_T[1]}
    opts = SolverOptions(method="cvodes", rtol=1e-10, atol=1e-12, progress=None)
    run = adjoint_sweep(chain, (0.0, T), y0, values, n_points=11, final=final, options=opts)
    A = np.array([[1.0, -w32 * _dsig(w32 * x2)], [0.0, 1.0]])
    b = np.array([0.0, x3 - 0.5])
    mu_star = -np.linalg.solve(A, b)
    want = np.array([mu_star + expm(speed * A * (t - T)) @ (mu_T - mu_star)
                     for t in run.times])
    np.testing.assert_allclose(np.c_[run["mu_G2"], run["mu_G3"]], want, atol=1e-6, rtol=0)
    # the same run by keywords; its defaults are ADJOINT_DEFAULTS (the same tolerances)
    assert (ADJOINT_DEFAULTS.rtol, ADJOINT_DEFAULTS.atol) == (opts.rtol, opts.atol)
    by_keywords = adjoint_sweep(chain, (0.0, T), y0, values, n_points=11, final=final)
    np.testing.assert_array_equal(run.y, by_keywords.y)
    # fixed-step RK through the options: steps is honoured (more steps, smaller error)
    errors = []
    for steps in (1, 4):
        rk = adjoint_sweep(chain, (0.0, T), y0, values, n_points=11, final=final,
                           substeps=2, options=dataclasses.replace(opts, method="rk",
                                                                   steps=steps))
        errors.append(np.max(np.abs(np.c_[rk["mu_G2"], rk["mu_G3"]] - want)))
    assert errors[1] < errors[0] / 50
    # options without meaning for a sweep are refused, naming them
    for field, value in (("stabilization", "baumgarte"), ("newton", "gmres"),
                         ("progress", True)):
        with pytest.raises(CompileError, match=rf"{field}=.*do not apply to the adjoint"):
            adjoint_sweep(chain, (0.0, T), y0, values, options=opts, **{field: value})
    with pytest.raises(CompileError, match="unknown method 'dopri' for the adjoint sweep"):
        adjoint_sweep(chain, (0.0, T), y0, values, options=opts, method="dopri")
