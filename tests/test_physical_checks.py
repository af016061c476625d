"""Physical checks before a run (issue 17): masses and mass matrices positive definite at
the initial state, also when they are parameters; NaN initial values refused; failure
hints that match the method in use. ``verify`` never passes what ``simulate`` refuses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import cognitive_action as ca
from cognitive_action import workflow
from cognitive_action.cli import main
from cognitive_action.declare import symbols as S
from cognitive_action.declare.problem import Action, Problem
from cognitive_action.derive import complete_initial_conditions, validate_initial_conditions
from cognitive_action.derive.physical import check_masses
from cognitive_action.errors import (
    DeclarationError,
    InconsistentInitialConditionsError,
    PhysicalError,
    SimulationError,
)

_SPRING = """name = "spring"
kind = "mechanical"
coordinates = ["q"]
parameters = {{ m = {m}, k = 2.0 }}

[action]
masses = "m"
lagrangian = "-k*q**2/2"

[initial]
values = {{ q = 1.0, q_dot = 0.0 }}
"""

_MATRIX = """name = "two"
kind = "mechanical"
coordinates = ["q1", "q2"]
parameters = {{ k = 2.0, a = {a} }}

[action]
mass_matrix = {matrix}
lagrangian = "-k*q1**2/2 - k*q2**2/2"

[initial]
values = {{ q1 = 1.0, q2 = 0.0 }}
"""


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _both(path, out):
    """verify's and simulate's exit codes and outputs on one file."""
    v = _cli("verify", str(path))
    s = _cli("simulate", str(path), "--out", str(out), "--t-end", "0.2", "--points", "5")
    return v, s


# -- masses ------------------------------------------------------------------------------
@pytest.mark.parametrize("m", ["-1.0", "0.0"])
def test_a_non_positive_mass_parameter_is_refused_by_verify_and_simulate(tmp_path, m):
    """The literal -1 is refused by the declaration; the same number given as the value
    of the parameter m was accepted and simulated (a spring with negative mass runs
    away as cosh). Now both commands refuse it, naming the parameter."""
    path = tmp_path / "spring.toml"
    path.write_text(_SPRING.format(m=m))
    v, s = _both(path, tmp_path / "out")
    assert v.exit_code == 1 and "masses" in v.output and "FAIL" in v.output, v.output
    assert s.exit_code == 2, s.output
    assert "parameters.m:" in s.output and "give m a positive value" in s.output
    assert "cvodes" not in s.output and "Traceback" not in s.output
    with pytest.raises(DeclarationError, match="negative"):
        q, = S.coordinates("q")
        Problem(Action([q], masses=-1))


def test_a_positive_mass_passes_both(tmp_path):
    path = tmp_path / "spring.toml"
    path.write_text(_SPRING.format(m="0.5"))
    v = _cli("verify", str(path))
    assert v.exit_code == 0, v.output
    # the run (the command line's, through the library) is the harmonic oscillator
    # m q'' = -k q: q = cos(sqrt(k/m) t), independent of the engine
    sim = workflow.load(path).simulate(t_end=1.0, points=11)
    np.testing.assert_allclose(sim["q"], np.cos(2.0 * sim.times), atol=1e-5)


@pytest.mark.parametrize("matrix, a, ok", [
    ("[[1, 1], [1, 1]]", 0.0, False),        # singular: q1 - q2 has no kinetic energy
    ('[[1, "a"], ["a", 1]]', 1.0, False),    # the same, through a parameter
    ('[[1, "a"], ["a", 1]]', 2.0, False),    # indefinite: eigenvalues -1, 3
    ('[[2, "a"], ["a", 2]]', 1.0, True),     # eigenvalues 1, 3
])
def test_mass_matrices_must_be_positive_definite(tmp_path, matrix, a, ok):
    path = tmp_path / "two.toml"
    path.write_text(_MATRIX.format(matrix=matrix, a=a))
    if ok:
        v = _cli("verify", str(path))
        assert v.exit_code == 0, v.output
        sim = workflow.load(path).simulate(t_end=0.2, points=5)
        assert np.all(np.isfinite(sim.y))
        return
    v, s = _both(path, tmp_path / "out")
    assert v.exit_code == 1 and "not positive definite" in v.output, v.output
    assert s.exit_code == 2 and "not positive definite" in s.output, s.output
    assert "RHSFUNC" not in s.output
    assert ("parameters.a" if '"a"' in matrix else "action.mass_matrix") in s.output


def test_the_smallest_eigenvalue_against_the_closed_form():
    """2x2 symmetric matrices at random: accepted exactly when the closed-form smallest
    eigenvalue (a+c)/2 - sqrt(((a-c)/2)^2 + b^2) is positive, and reported as it."""
    q1, q2 = S.coordinates("q1 q2")
    rng = np.random.default_rng(0)
    seen = {True: 0, False: 0}
    for _ in range(40):
        a, b, c = rng.uniform(-1, 2, size=3)
        low = (a + c) / 2 - math.sqrt(((a - c) / 2) ** 2 + b * b)
        p = Problem(Action([q1, q2], mass_matrix=[[a, b], [b, c]]))
        if low > 1e-9:
            assert check_masses(p, {}).smallest == pytest.approx(low, rel=1e-12)
        else:
            with pytest.raises(PhysicalError, match="not positive definite"):
                check_masses(p, {})
        seen[low > 1e-9] += 1
    assert min(seen.values()) >= 5


def test_a_mass_matrix_of_the_coordinates_is_checked_at_the_initial_state():
    """M(q) = [[1, q2], [q2, 1]] is positive definite for |q2| < 1 only."""
    q1, q2 = S.coordinates("q1 q2")
    p = Problem(Action([q1, q2], mass_matrix=[[1, q2], [q2, 1]]))
    assert check_masses(p, {"q1": 0.0, "q2": 0.5}).smallest == pytest.approx(0.5)
    with pytest.raises(PhysicalError, match="indefinite"):
        check_masses(p, {"q1": 0.0, "q2": 1.5})
    assert check_masses(p, {}).unevaluated == ("q2",)  # no state: nothing to evaluate


def test_xor_with_a_massless_weight_fails_verify_and_simulate(tmp_path):
    """m_W = 0: eq. (10) needs M⁻¹. verify passed it (the backprop checks take their own
    masses) and simulate then failed in CVODES; now verify fails its masses check and
    simulate refuses before compiling, naming m_W."""
    from cognitive_action.problem_files.loader import shipped_problems

    src = shipped_problems()["xor"].read_text(encoding="utf-8").replace("m_W = 1.0",
                                                                      "m_W = 0.0")
    path = tmp_path / "xor0.toml"
    path.write_text(src.replace('name = "xor"', 'name = "xor0"'))
    v, s = _both(path, tmp_path / "out")
    assert v.exit_code == 1 and "m_W = 0" in v.output, v.output
    assert s.exit_code == 2 and "parameters.m_W" in s.output, s.output


def test_compile_simulate_refuses_a_singular_system_before_integrating():
    """Through the Python API: m_W = 0 on XOR is named (the declared masses are checked
    at the initial state); a coordinate without kinetic term that no constraint fixes
    makes eq. (8)-(10) singular: a typed error at t = 0 that says why, not an
    integrator flag."""
    from cognitive_action.compile import compile_system, simulate

    pr = ca.xor().problem(inputs={1: 1, 2: 0}, targets={5: 1})
    el = ca.euler_lagrange(pr)
    rng = np.random.default_rng(1)
    given = {str(w): rng.normal() * 0.5 for w in ca.xor().weights} | {"m_x": 1.0,
                                                                       "m_W": 0.0}
    y0 = complete_initial_conditions(el, given)
    with pytest.raises(PhysicalError, match="m_W = 0"):
        simulate(compile_system(el), (0, 1), y0, {"m_x": 1.0, "m_W": 0.0})
    q1, q2 = S.coordinates("q1 q2")
    m, = S.parameters("m")
    p = Problem(Action([q1, q2], masses={q1: m}, lagrangian=-(q1**2 + q2**2) / 2),
                parameters=[m])
    with pytest.raises(SimulationError, match="not finite at t = 0") as info:
        simulate(p, (0, 1), {"q1": 1.0, "q2": 0.5, "q1_dot": 0.0, "q2_dot": 0.0},
                 {"m": 1.0}, n_points=3)
    assert info.value.time == 0.0 and "mass" in info.value.fix


def test_compile_simulate_refuses_a_negative_mass_parameter():
    """From Python too: m = -1 as a parameter value (the literal is refused by the
    declaration); the run of m = 1 is the cosine of the closed form."""
    from cognitive_action.compile import simulate

    x, = S.coordinates("x")
    m, k = S.parameters("m k")
    osc = Problem(Action([x], masses=m, lagrangian=-k * x**2 / 2), parameters=[m, k])
    run = simulate(osc, (0, 1), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 4.0},
                   n_points=5)
    np.testing.assert_allclose(run["x"], np.cos(2 * run.times), atol=1e-6)
    with pytest.raises(PhysicalError, match="m = -1"):
        simulate(osc, (0, 1), {"x": 1.0, "x_dot": 0.0}, {"m": -1.0, "k": 4.0}, n_points=5)


def test_the_mass_check_of_a_compiled_system_is_redone_for_new_values():
    """simulate remembers the values whose masses passed, on the compiled system; a
    parameter or coordinate value that makes them non-physical must still be refused
    after runs that passed, every time (M(q) = [[1, q2], [q2, 1]] is positive definite
    for |q2| < 1 only, m = -1 is negative)."""
    from cognitive_action.compile import compile_system, simulate

    x, = S.coordinates("x")
    m, k = S.parameters("m k")
    osc = compile_system(Problem(Action([x], masses=m, lagrangian=-k * x**2 / 2),
                                 parameters=[m, k]))
    for _ in range(2):
        run = simulate(osc, (0, 1), {"x": 1.0, "x_dot": 0.0}, {"m": 1.0, "k": 4.0},
                       n_points=5, method="dopri", rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(run["x"], np.cos(2 * run.times), atol=1e-8)
        with pytest.raises(PhysicalError, match="m = -1"):
            simulate(osc, (0, 1), {"x": 1.0, "x_dot": 0.0}, {"m": -1.0, "k": 4.0},
                     n_points=5)
    q1, q2 = S.coordinates("q1 q2")
    free = compile_system(Problem(Action([q1, q2], mass_matrix=[[1, q2], [q2, 1]])))
    at = {"q1": 0.0, "q2_dot": 0.0, "q1_dot": 0.0}
    for _ in range(2):
        simulate(free, (0, 0.1), at | {"q2": 0.5}, {}, n_points=3, method="dopri")
        with pytest.raises(PhysicalError, match="indefinite"):
            simulate(free, (0, 0.1), at | {"q2": 1.5}, {}, n_points=3, method="dopri")


# -- NaN initial values ----------------------------------------------------------------
def test_nan_initial_values_are_refused():
    """complete_initial_conditions with q1 = nan returned q2 = 0.0 (NaN compares false
    with every tolerance)."""
    el = workflow.load("pendulum").derived
    params = {"m": 1.0, "g": 9.81, "L": 1.0}
    with pytest.raises(InconsistentInitialConditionsError, match="q1 = nan"):
        complete_initial_conditions(el, params | {"q1": float("nan")})
    with pytest.raises(InconsistentInitialConditionsError, match="not finite"):
        complete_initial_conditions(el, params | {"q1": 0.6, "q1_dot": float("inf")})
    q2 = el.coordinates[1]
    ok = complete_initial_conditions(el, params | {"q1": 0.6, "q2": 0.5}, free=[q2])
    assert ok["q2"] == pytest.approx(0.8)  # q1² + q2² = L²
    with pytest.raises(InconsistentInitialConditionsError) as info:
        validate_initial_conditions(el, params | {"q1": float("nan"), "q2": 0.0,
                                                  "q1_dot": 0.0, "q2_dot": 0.0})
    assert "rod" in info.value.violated


def test_nan_network_inputs_are_refused():
    from cognitive_action.derive.initial import complete_network_initial_conditions

    pr = ca.xor().problem(inputs={1: 1, 2: 0}, targets={5: 1})
    given = {str(w): 0.1 for w in ca.xor().weights} | {"m_x": 1.0, "m_W": 1.0}
    with pytest.raises(InconsistentInitialConditionsError, match="w3_1 = nan"):
        complete_network_initial_conditions(pr, given | {"w3_1": float("nan")})


# -- hints that match the method ---------------------------------------------------------
def test_too_much_work_does_not_advise_the_method_already_running():
    """CV_TOO_MUCH_WORK with cvodes BDF advised "use cvodes BDF"; it now names the step
    limit. With Adams (explicit-like, non-stiff) the BDF advice stays."""
    wf = workflow.load("pendulum")
    with pytest.raises(SimulationError, match="TOO_MUCH_WORK") as bdf:
        wf.simulate(method="cvodes", max_steps=20, t_end=10.0, progress=False)
    assert "cvodes BDF" not in bdf.value.fix and "max_steps = 20" in bdf.value.fix
    with pytest.raises(SimulationError, match="TOO_MUCH_WORK") as adams:
        wf.simulate(method="adams", max_steps=2, t_end=10.0, points=3, progress=False)
    assert "implicit method (cvodes BDF)" in adams.value.fix


def test_blow_up_hint_matches_the_method():
    from cognitive_action.compile.integration import check_finite

    Y = np.array([[1.0, 0.0], [np.nan, 0.0]])
    grid = np.array([0.0, 1.0])
    with pytest.raises(SimulationError) as bdf:
        check_finite(Y, grid, 1e9, "cvodes (bdf, direct)")
    assert "cvodes BDF" not in bdf.value.fix
    with pytest.raises(SimulationError) as erk:
        check_finite(Y, grid, 1e9, "erk")
    assert "cvodes BDF" in erk.value.fix


_ = sp  # sympy imported for readers who extend the cases
