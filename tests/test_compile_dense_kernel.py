"""Eq. (10)'s Schur solve through NumPy/SciPy's OpenBLAS (compile/dense_kernels.py).

References, independent of the kernel:

- the kernel alone against ``np.linalg.solve`` of the matrix formed in NumPy, and its
  forward, reverse and second-order AD against CasADi's AD of the same solve written in
  pure CasADi (``mtimes`` + LU) and against central differences;
- the network route's right-hand side with the kernel against the hand-written NumPy
  right-hand side of ``benchmarks/bench_compile.py`` (dense nets) and against the generic
  route (the mass-matrix form compiled entry by entry: random recurrent graphs with
  inputs), and against the CasADi-only solve (``ldl``/``lapacklu``) on random states;
- its forward-AD Jacobian-vector products (CVODES' GMRES) against central differences of
  the NumPy right-hand side and against the CasADi-only path's AD.
"""

from __future__ import annotations

import sys
from pathlib import Path

import casadi as ca
import networkx as nx
import numpy as np
import pytest

import cognitive_action as ca_
from cognitive_action.compile import compile_system
from cognitive_action.compile.dense_kernels import (
    SPD_KERNEL,
    reference_spd_solve,
    solve_dense,
    spd_solve,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_compile import N_IN, VALUES, dense_problem, numpy_rhs_factory  # noqa: E402

TOL = 1e-12


def _kernel_inputs(n: int, k: int, rng, m: int) -> tuple:
    M = rng.normal(size=(m, n)) / np.sqrt(n)
    u, v = rng.normal(size=n), rng.uniform(0.5, 1.5, n)
    d, c = rng.uniform(0.1, 1.0, n), float(rng.uniform(0.3, 2.0))
    return M, u, v, d, c, rng.normal(size=(n, k))


@pytest.mark.parametrize("block", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_solves_and_differentiates_like_the_formed_matrix(seed, transposed, block):
    """``block``: the matrix is rows ``r0 … r0 + n − 1`` of a taller input."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(3, 9)), int(rng.integers(1, 3))
    r0, m = (2, n + 3) if block else (0, n)
    rows = (r0, m) if block else None
    M, u, v, d, c, B = _kernel_inputs(n, k, rng, m)
    Msq = M[r0:r0 + n]
    Mm = Msq.T if transposed else Msq
    L = np.diag(u) @ Mm + np.diag(v)
    X_np = np.linalg.solve(c * L @ L.T + np.diag(d), B)
    sym = [ca.MX.sym(nm, *shape) for nm, shape in
           (("M", (m, n)), ("u", (n, 1)), ("v", (n, 1)), ("d", (n, 1)), ("c", (1, 1)),
            ("B", (n, k)))]
    z = ca.vertcat(*(ca.vec(s) for s in sym))
    zv = np.concatenate([M.ravel(order="F"), u, v, d, [c], B.ravel(order="F")])
    X1 = ca.vec(spd_solve(*sym, transposed=transposed, rows=rows))
    X2 = ca.vec(reference_spd_solve(*sym, "lapacklu", transposed=transposed, rows=rows))
    val = ca.Function("val", [z], [X1])
    np.testing.assert_allclose(np.asarray(val(zv)).ravel(), X_np.ravel(order="F"),
                               rtol=0, atol=TOL * np.abs(X_np).max())
    # forward (Jacobian), reverse (vector-Jacobian) and second order against pure CasADi
    w = ca.MX.sym("w", X1.numel())
    wv = rng.normal(size=X1.numel())
    fns = ca.Function("ad", [z, w], [ca.jacobian(X1, z), ca.jtimes(X1, z, w, True),
                                     ca.hessian(ca.dot(X1, X1), z)[0]])
    refs = ca.Function("ad_ref", [z, w], [ca.jacobian(X2, z), ca.jtimes(X2, z, w, True),
                                          ca.hessian(ca.dot(X2, X2), z)[0]])
    for got, ref in zip(fns(zv, wv), refs(zv, wv)):
        got, ref = np.asarray(ca.densify(got)), np.asarray(ca.densify(ref))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * max(1.0, np.abs(ref).max()))
    # and the Jacobian against central differences of the NumPy solve
    dz = rng.normal(size=zv.size)

    def solve_np(zz):
        o = m * n
        Mz = zz[:o].reshape(m, n, order="F")[r0:r0 + n]
        uz, vz, dz_ = zz[o:o + n], zz[o + n:o + 2 * n], zz[o + 2 * n:o + 3 * n]
        cz, Bz = zz[o + 3 * n], zz[o + 3 * n + 1:].reshape(n, k, order="F")
        Lz = np.diag(uz) @ (Mz.T if transposed else Mz) + np.diag(vz)
        return np.linalg.solve(cz * Lz @ Lz.T + np.diag(dz_), Bz).ravel(order="F")

    eps = 1e-6
    fd = (solve_np(zv + eps * dz) - solve_np(zv - eps * dz)) / (2 * eps)
    Jdz = np.asarray(ca.densify(fns(zv, wv)[0])) @ dz
    np.testing.assert_allclose(Jdz, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_kernel_falls_back_to_lu_when_not_positive_definite():
    """A negative ``c`` (a negative mass, say) makes ``S`` indefinite: Cholesky fails and
    LAPACK's LU answers; singular: NaN, as CasADi's solvers report."""
    rng = np.random.default_rng(5)
    L = np.asfortranarray(rng.normal(size=(6, 6)))
    d, B = rng.uniform(0.1, 1.0, 6), rng.normal(size=(6, 2))
    X = solve_dense(L, d, -0.8, B)
    np.testing.assert_allclose((-0.8 * L @ L.T + np.diag(d)) @ X, B, atol=1e-10)
    assert np.isnan(solve_dense(np.zeros((3, 3)), np.zeros(3), 1.0, np.ones((3, 1)))).all()


# -- the network route --------------------------------------------------------------------------
def _state(system, n: int, rng, scale: float = 0.3) -> np.ndarray:
    return rng.normal(scale=scale, size=system.n_states)


def _rhs_and_jvp(system, y, p, v, reverse=None):
    yy, vv = ca.MX.sym("y", system.n_states), ca.MX.sym("v", system.n_states)
    f = system.rhs(0.3, yy, p)
    outs = [f, ca.jtimes(f, yy, vv)]
    if reverse is not None:
        outs.append(ca.jtimes(f, yy, vv, True))
    fn = ca.Function("f", [yy, vv], outs)
    return [np.asarray(o).ravel() for o in fn(y, v)]


@pytest.mark.parametrize("n", [10, 50, 120, pytest.param(200, marks=pytest.mark.slow)])
def test_dense_nets_with_the_kernel_equal_numpy_and_the_casadi_solve(n):
    values = VALUES | {f"y{n - 1}": 0.25}
    ns = ca_.derive_network(dense_problem(n)[1])
    kern = compile_system(ns, linear_solver=SPD_KERNEL)
    old = compile_system(ns, linear_solver="lapacklu" if n - N_IN >= 100 else "ldl")
    assert kern.linear_solver == SPD_KERNEL
    p = kern.parameter_vector({k: values[k] for k in kern.parameters})
    f_np = numpy_rhs_factory(n, values)
    rng = np.random.default_rng(n)
    for _ in range(2):
        y = _state(kern, n, rng)
        v = rng.normal(size=kern.n_states)
        fk, jk, rk = _rhs_and_jvp(kern, y, p, v, reverse=True)
        fo, jo, ro = _rhs_and_jvp(old, y, p, v, reverse=True)
        ref = f_np(0.3, y)
        scale = np.abs(ref).max()
        assert np.abs(fk - ref).max() <= TOL * scale
        assert np.abs(fk - fo).max() <= TOL * scale
        assert np.abs(jk - jo).max() <= 1e-10 * np.abs(jo).max()
        assert np.abs(rk - ro).max() <= 1e-10 * np.abs(ro).max()
        eps = 1e-6
        fd = (f_np(0.3, y + eps * v) - f_np(0.3, y - eps * v)) / (2 * eps)
        assert np.abs(jk - fd).max() <= 1e-6 * np.abs(fd).max()


def _random_graph(seed: int, n: int = 9, n_in: int = 2) -> ca_.Network:
    """A random recurrent digraph (self-loops and cycles allowed) with ``n_in`` inputs;
    arcs added in random order (the weights' sources are then not sorted)."""
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for j in range(n_in, n):
        preds = [k for k in range(n) if rng.random() < 0.45] or [int(rng.integers(0, n))]
        g.add_edges_from((k, j) for k in rng.permutation(preds).tolist())
    act = ["tanh", "logistic", "softplus"][seed % 3]
    return ca_.Network(g, list(range(n_in)), act, outputs=[n - 1])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_graphs_with_the_kernel_equal_the_generic_route(seed):
    """The generic route (mass-matrix form, entry by entry, QR) is independent of the
    network route's matrices; random recurrent graphs, random states and parameters."""
    net = _random_graph(seed, n_in=1 + seed % 3)
    pr = net.problem()
    kern = compile_system(pr, route="network", linear_solver=SPD_KERNEL)
    old = compile_system(pr, route="network", linear_solver="ldl")
    gen = compile_system(pr, route="generic")
    assert kern.states == gen.states and kern.parameters == gen.parameters
    rng = np.random.default_rng(100 + seed)
    for _ in range(3):
        vals = {k: float(rng.uniform(0.5, 1.5)) for k in kern.parameters}
        p = kern.parameter_vector(vals)
        y = rng.normal(scale=0.5, size=kern.n_states)
        v = rng.normal(size=kern.n_states)
        fk, jk = _rhs_and_jvp(kern, y, p, v)
        fo, jo = _rhs_and_jvp(old, y, p, v)
        fg, jg = _rhs_and_jvp(gen, y, p, v)
        scale = max(1.0, np.abs(fg).max())
        assert np.abs(fk - fg).max() <= 1e-11 * scale
        assert np.abs(fk - fo).max() <= TOL * scale
        assert np.abs(jk - jg).max() <= 1e-10 * max(1.0, np.abs(jg).max())


def test_kernel_is_the_default_from_45_hidden_neurons_in_the_vm():
    """Overridable by ``linear_solver=``; never with ``blas=False`` (generated C)."""
    from cognitive_action.compile.system import _KERNEL_FROM

    assert _KERNEL_FROM == 45
    ns = ca_.derive_network(dense_problem(45 + N_IN)[1])
    assert compile_system(ns).linear_solver == SPD_KERNEL
    assert compile_system(ns, blas=False).linear_solver == "ldl"
    assert compile_system(ns, linear_solver="lapacklu").linear_solver == "lapacklu"
    small = ca_.derive_network(dense_problem(44 + N_IN)[1])
    assert compile_system(small).linear_solver == "ldl"
    assert compile_system(small, linear_solver=SPD_KERNEL).linear_solver == SPD_KERNEL


def test_projection_of_a_kernel_system_lands_on_the_constraints():
    """The projection forms eq. (10)'s whole matrix and solves it with a CasADi plugin."""
    n = 12
    values = VALUES | {f"y{n - 1}": 0.25}
    system = compile_system(ca_.derive_network(dense_problem(n)[1]), linear_solver=SPD_KERNEL)
    p = system.parameter_vector({k: values[k] for k in system.parameters})
    y = np.random.default_rng(0).normal(scale=0.3, size=system.n_states)
    yp = np.asarray(system.projection(0.3, y, p)).ravel()
    g, gd = system.evaluate_constraints(0.3, yp, p)
    assert max(np.abs(g).max(), np.abs(gd).max()) < 1e-10
