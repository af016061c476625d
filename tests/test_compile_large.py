"""Whole integrations of the dense learning system (eq. 8-10) above the matrix-free limit.

Reference: SciPy's DOP853 at rtol 1e-11 on the hand-written NumPy right-hand side of
``benchmarks/bench_compile.py`` (written from the equations, independently of the
engine). The fast variant (20 neurons, 760 states) runs in the default suite; the
200-neuron one (79,600 states, the size at which CasADi's integrator construction used
to be out of reach) is marked slow. No times are asserted (benchmarks/bench_integrate.py
measures them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import casadi as ca
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import cognitive_action as ca_
from cognitive_action.compile import compile_system, simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_compile import N_IN, VALUES, dense_problem, numpy_rhs_factory  # noqa: E402


def consistent_state(n: int, seed: int = 0) -> np.ndarray:
    """``x = tanh(W x)`` on the hidden neurons, inputs fixed, every velocity 0."""
    rng = np.random.default_rng(seed)
    nh = n - N_IN
    W = np.zeros((n, n))
    W[N_IN:] = rng.normal(size=(nh, n)) * 0.5 / np.sqrt(n)
    x = np.zeros(n)
    x[:N_IN] = [VALUES["e0"], VALUES["e1"]]
    for _ in range(200):
        x[N_IN:] = np.tanh(W @ x)[N_IN:]
    return np.concatenate([x, W[N_IN:].ravel(), np.zeros(n), np.zeros(nh * n)])


@pytest.mark.parametrize("n", [20, pytest.param(200, marks=pytest.mark.slow)])
def test_large_dense_network_dopri_and_matrix_free_bdf(n):
    values = VALUES | {f"y{n - 1}": 0.25}
    y0 = consistent_state(n)
    grid = np.linspace(0.0, 2.0, 11)
    ref = solve_ivp(numpy_rhs_factory(n, values), (0, 2.0), y0, t_eval=grid,
                    method="DOP853", rtol=1e-11, atol=1e-12).y.T
    scale = np.abs(ref).max()
    assert np.abs(ref[-1] - ref[0]).max() > 0.1 * scale  # the weights and states do move
    system = compile_system(ca_.derive_network(dense_problem(n)[1]))
    assert system.n_states == 2 * (n + n * (n - N_IN)) > 300
    dp = simulate(system, grid, y0, values, method="dopri", rtol=1e-9, atol=1e-11)
    assert np.abs(dp.y - ref).max() / scale < 1e-7
    bdf = simulate(system, grid, y0, values, method="cvodes", rtol=1e-8, atol=1e-10)
    assert bdf.method == "cvodes (bdf, gmres)"
    assert np.abs(bdf.y - ref).max() / scale < 1e-5
    assert dp.max_drift < 1e-6 and bdf.max_drift < 1e-5
    if n <= 20:  # erk and Adams on the wrapper (above 300 states)
        for method in ("erk", "adams"):
            run = simulate(system, grid, y0, values, method=method, rtol=1e-9, atol=1e-11)
            assert np.abs(run.y - ref).max() / scale < 1e-6


def test_large_nets_solve_eq10_with_lapack_and_agree_with_numpy(tmp_path):
    """At 100 non-input neurons (the size of eq. (10)'s dense solve once the input
    constraints are eliminated) the network route solves eq. (10) with NumPy/SciPy's
    OpenBLAS (``dsyrk`` + Cholesky, faster than CasADi's LU and sparse LDLᵀ there); the
    right-hand side still equals the hand-written NumPy one,
    its forward-AD Jacobian-vector product (used by BDF/GMRES) equals central differences
    of it, and without BLAS (what generated C gets) the solver is LDLᵀ again."""
    n = 100 + N_IN
    values = VALUES | {f"y{n - 1}": 0.25}
    ns = ca_.derive_network(dense_problem(n)[1])
    system = compile_system(ns)
    assert system.linear_solver == "scipy_cholesky"
    assert compile_system(ca_.derive_network(dense_problem(20)[1])).linear_solver == "ldl"
    assert compile_system(ns, blas=False).linear_solver == "ldl"
    rng = np.random.default_rng(3)
    y = consistent_state(n) + 0.01 * rng.normal(size=system.n_states)
    p = system.parameter_vector({k: values[k] for k in system.parameters})
    f = np.asarray(system.rhs(0.3, y, p).full()).ravel()
    rhs_np = numpy_rhs_factory(n, values)
    f_np = rhs_np(0.3, y)
    assert np.abs(f - f_np).max() < 1e-12 * np.abs(f_np).max()
    v = rng.normal(size=system.n_states)
    yy, vv = ca.MX.sym("y", system.n_states), ca.MX.sym("v", system.n_states)
    jvp = ca.Function("jvp", [yy, vv], [ca.jtimes(system.rhs(0.3, yy, p), yy, vv)])
    Jv = np.asarray(jvp(y, v).full()).ravel()
    eps = 1e-6
    fd = (rhs_np(0.3, y + eps * v) - rhs_np(0.3, y - eps * v)) / (2 * eps)
    assert np.abs(Jv - fd).max() < 1e-6 * np.abs(fd).max()
    # generated C cannot call Python's kernel: the system is regenerated with LDLᵀ
    import shutil

    if shutil.which("cc") or shutil.which("gcc"):
        from cognitive_action.compile.codegen import codegen_system

        c = codegen_system(system, cache_dir=tmp_path)
        assert c.linear_solver == "ldl"
        assert np.abs(c.evaluate(0.3, y, p) - f_np).max() < 1e-12 * np.abs(f_np).max()
