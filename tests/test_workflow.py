"""The library workflow (cognitive_action.workflow) against the CLI, and its initial
state against the constraints it must satisfy (eq. 11)."""

import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from cognitive_action import workflow
from cognitive_action.cli import main
from cognitive_action.declare.symbols import dot, t
from cognitive_action.errors import CompileError, ProblemFileError

# A network that is not shipped: inputs 1, 2 (one time-varying), hidden 3, 4, output 5,
# logistic units, weights drawn by a non-default initialiser.
OWN_PROBLEM = """
name = "own_net"
description = "a 2-2-1 logistic net written for the workflow tests"
parameters = { m_x = 0.01, m_W = 1.0, theta = 2.0 }

[network]
edges = [[1, 3], [2, 3], [1, 4], [2, 4], [3, 5], [4, 5]]
inputs = [1, 2]
activation = "logistic"

[action]
mass_x = "m_x"
mass_W = "m_W"
weight = "exp(theta*t)"

[inputs]
1 = "cos(t)"
2 = "0.5"

[targets]
5 = "0.25"

[initial]
seed = 7
weight_scale = 0.8
init = "uniform_fan_in"

[simulate]
t_end = 1.0
points = 21
"""


@pytest.fixture(scope="module")
def own_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "own_net.toml"
    path.write_text(OWN_PROBLEM, encoding="utf-8")
    return path


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("problem, sim_args", [
    ("pendulum", ["--t-end", "0.7", "--points", "15"]),
    ("OWN", []),
])
def test_library_and_cli_agree(problem, sim_args, own_file, tmp_path):
    source = str(own_file) if problem == "OWN" else problem
    wf = workflow.load(source)
    # the verifier: same outcome per check, same verdict and exit code
    res = _cli("verify", source, "--json")
    data = json.loads(res.output)
    result = wf.verify()
    assert data["outcome"] == result.outcome
    assert data["passed"] == result.passed and res.exit_code == (0 if result.passed else 1)
    assert [c["status"] for c in data["checks"]] == [c.status for c in result.report.checks]
    # the simulation: the npz the CLI writes against the library's run
    res = _cli("simulate", source, "--out", str(tmp_path), *sim_args)
    assert res.exit_code == 0, res.output
    saved = np.load(tmp_path / f"{wf.name}_trajectory.npz")
    opts = dict(zip(sim_args[::2], sim_args[1::2]))
    sim = wf.simulate(t_end=float(opts["--t-end"]) if "--t-end" in opts else None,
                      points=int(opts["--points"]) if "--points" in opts else None)
    np.testing.assert_allclose(saved["t"], sim.times, rtol=0, atol=1e-12)
    assert set(sim.states) | {"t", "drift"} == set(saved.files)
    for name, values in sim.states.items():
        np.testing.assert_allclose(saved[name], values, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(saved["drift"], sim.drift, rtol=0, atol=1e-12)
    # functional API = object API
    spec = workflow.as_spec(source)
    el = workflow.derive_spec(spec)
    y0 = workflow.initial_state(spec, el)
    again = workflow.simulate_spec(spec, el, y0, wf.settings(t_end=sim.times[-1],
                                                            points=len(sim.times)))
    np.testing.assert_allclose(again.y, sim.y, rtol=0, atol=1e-12)


def _constraint_residuals(spec, y0):
    """``G`` and ``dG/dt = ∂G/∂t + Σ ∂G/∂q q̇`` of every holonomic constraint at
    ``t = 0``, straight from the declared expressions (not from the derived system)."""
    p = spec.problem
    subs = {s: y0[str(s)] for s in p.coordinates}
    subs |= {dot(q): y0[str(dot(q))] for q in p.coordinates}
    subs |= {sp.Symbol(k, real=True): v for k, v in spec.values.items()}
    subs[t] = 0.0
    G, Gd = [], []
    for c in p.holonomic:
        e = c.expr
        rate = sp.diff(e, t) + sum(sp.diff(e, q) * dot(q) for q in p.coordinates)
        G.append(float(e.subs(subs)))
        Gd.append(float(rate.subs(subs)))
    return np.array(G), np.array(Gd)


@pytest.mark.parametrize("problem", ["chain3", "xor", "pendulum", "OWN"])
def test_initial_state_satisfies_the_constraints(problem, own_file):
    spec = workflow.as_spec(str(own_file) if problem == "OWN" else problem)
    y0 = workflow.initial_state(spec, workflow.derive_spec(spec))
    G, Gd = _constraint_residuals(spec, y0)
    assert len(G) == len(spec.problem.holonomic) > 0
    np.testing.assert_allclose(G, 0.0, atol=1e-10)
    np.testing.assert_allclose(Gd, 0.0, atol=1e-10)
    if spec.network is not None:  # the weights are drawn, not left at zero
        weights = [y0[str(w)] for w in spec.network.weights]
        assert all(w != 0.0 for w in weights)
        assert all(y0[str(dot(w))] == 0.0 for w in spec.network.weights)


def test_initial_weights_follow_the_files_initialiser(own_file):
    """The own file asks for uniform_fan_in, scale 0.8, seed 7: each weight lies in
    ±0.8·sqrt(3/fan_in), and a different seed draws different weights."""
    spec = workflow.as_spec(own_file)
    y0 = workflow.initial_state(spec, workflow.derive_spec(spec))
    net = spec.network
    for (j, _k), w in net.w.items():
        bound = 0.8 * np.sqrt(3 / max(1, net.graph.in_degree(j)))
        assert 0 < abs(y0[str(w)]) <= bound
    other = workflow.as_spec(own_file)
    other.initial["seed"] = 8
    y1 = workflow.initial_state(other, workflow.derive_spec(other))
    assert all(y0[str(w)] != y1[str(w)] for w in net.weights)


def test_a_declared_problem_runs_without_a_file():
    import cognitive_action as ca

    m_x, m_W, theta = ca.parameters("m_x m_W theta")
    net = ca.chain(3)
    problem = net.problem(mass_x=m_x, mass_W=m_W, weight=sp.exp(theta * t),
                          inputs={net.inputs[0]: sp.sin(t)},
                          targets={net.outputs[0]: sp.Rational(1, 2)},
                          parameters=[m_x, m_W, theta], name="declared_chain")
    values = {"m_x": 0.001, "m_W": 1.0, "theta": 10.0}
    wf = workflow.load(problem, values=values)
    assert wf.name == "declared_chain" and wf.spec.network is net
    assert wf.spec.values == values
    G, Gd = _constraint_residuals(wf.spec, wf.initial)
    np.testing.assert_allclose(np.r_[G, Gd], 0.0, atol=1e-10)
    sim = wf.simulate(t_end=0.2, points=5)
    assert sim.max_drift < 1e-6


def test_bad_settings_are_typed_errors():
    wf = workflow.load("pendulum")
    with pytest.raises(CompileError, match="unknown simulation setting 't_final'"):
        wf.settings(t_final=1.0)
    with pytest.raises(CompileError, match="--method cvodes"):
        wf.settings(variant="adjoint", method="dopri").check()
    with pytest.raises(CompileError, match="stabilization"):
        wf.simulate(variant="adjoint", stabilization="baumgarte")
    with pytest.raises(ProblemFileError, match="simulate.variant"):
        workflow.compiled(wf.spec, wf.derived, wf.initial, "backward")
    with pytest.raises(ProblemFileError, match="cannot load a problem from a int"):
        workflow.load(3)


def test_paper_problem_records_derive_verify_and_simulation(tmp_path):
    spec = workflow.as_spec("pendulum")
    spec.simulate.update(t_end=0.5, points=11)
    entry = workflow.paper_problem(spec, tmp_path)
    assert entry["passed"] and entry["coordinates"] == 2
    assert entry["outcome"] == workflow.verify_spec(spec).outcome
    assert entry["simulation"]["status"].startswith("ok (forward), max |G| = ")
    assert (tmp_path / "pendulum_equations.tex").read_text(encoding="utf-8").strip()
    assert (tmp_path / "pendulum_trajectory.png").stat().st_size > 0
    # the verifier's full table goes to files, as Markdown and (with xarray) netCDF
    md = (tmp_path / "pendulum_verify.md").read_text(encoding="utf-8")
    assert all(f"| `{name}` | {o} |" in md for name, o in entry["outcome"].items())
    if workflow._has_xarray():
        from cognitive_action.results.labelled import load_dataset

        ds = load_dataset(tmp_path / "pendulum_verify.nc")
        assert list(ds["check"].values) == list(entry["outcome"])
        assert (tmp_path / "pendulum_trajectory.nc").is_file()


def test_paper_simulation_records_a_documented_instability(tmp_path):
    """rate_network lists stability.multipliers in expect_fail: run forward (eq. 20 is
    anti-stable), the main job records it instead of failing; without the listing the
    error propagates."""
    from cognitive_action.errors import UnstableSystemError

    spec = workflow.as_spec("rate_network")
    spec.simulate["variant"] = "forward"
    el = workflow.derive_spec(spec)
    got = workflow.paper_simulation(spec, el, tmp_path)
    assert got["status"].startswith("not run: anti-stable multipliers")
    spec.verify["expect_fail"] = []
    with pytest.raises(UnstableSystemError):
        workflow.paper_simulation(spec, el, tmp_path)


def test_a_loss_naming_a_weight_derives_by_the_generic_route(tmp_path):
    """A weight-decay term in a network file's loss: the per-neuron templates do not fit
    (F depends on a weight), so ``derive`` falls back to the generic derivation instead
    of exiting 2. Reference: the weight's residual of eq. (8) must carry
    ``+∂F/∂w = -∂(loss)/∂w``, differentiated here by SymPy from the loss text."""
    path = tmp_path / "wd.toml"
    path.write_text('name = "wd"\nparameters = { m_x = 0.001, m_W = 1.0, theta = 10.0 }\n'
                    '[network]\nlayers = [2, 2, 1]\n[action]\nmass_x = "m_x"\n'
                    'mass_W = "m_W"\nweight = "exp(theta*t)"\n'
                    'loss = "0.5*(x5 - y5)**2 + 0.01*w5_3**2"\n'
                    '[inputs]\n1 = "1.0"\n2 = "0.5"\n[targets]\n5 = "0.8"\n')
    spec = workflow.as_spec(str(path))
    el = workflow.derive_spec(spec)
    w = sp.Symbol("w5_3", real=True)
    row = el.residuals[list(map(str, el.coordinates)).index("w5_3")]
    # the only w-dependence outside tanh(...) is the decay: -d/dw (0.01 w^2) = -0.02 w
    tanh_free = row.subs(sp.Symbol("delta_G5", real=True), 0)
    assert sp.simplify(sp.diff(tanh_free, w) + sp.Rational(2, 100)) == 0
    result = CliRunner().invoke(main, ["derive", str(path)])
    assert result.exit_code == 0, result.output
    assert "w5_3" in result.output
