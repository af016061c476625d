"""Dense symmetric positive definite solves of eq. (10) through NumPy's OpenBLAS/LAPACK.

The network route reduces eq. (10) to ``S δ_H = b_H`` with the Schur matrix
``S = c L Lᵀ + diag(d)``, ``L = diag(u) M + diag(v)`` (``M = W[H, H]``, ``u = g_a``,
``v = g_ξ`` on the non-input neurons ``H``, ``c = 1/m_x``, ``d = j_W[H]/m_W``;
:meth:`cognitive_action.compile.system._NetworkGraph.solve_multipliers`), symmetric
positive definite under Proposition 1. CasADi forms ``L Lᵀ`` with a general ``dgemm``
of the OpenBLAS in its wheel (a build for a generic core) and has no symmetric rank-k
product nor a dense Cholesky plugin; the OpenBLAS under NumPy/SciPy does the same work
as ``dsyrk`` (half the flops), ``dpotrf`` and ``dpotrs`` several times faster at a few
hundred neurons (``benchmarks/bench_rhs_kernel.py``, docs/compile.md).

:func:`spd_solve` inserts that kernel into an MX graph as a :class:`casadi.Callback` on
CasADi's copy-free buffer interface (``has_eval_buffer``). Its derivatives are MX
expressions of the same solve (forward: ``Ẋ = S⁻¹(Ḃ − Ṡ X)``; reverse: ``B̄ = S⁻¹ X̄``,
``S̄ = −B̄ Xᵀ``) that call the kernel again with the directions as columns, so CasADi's
forward and reverse AD (CVODES' GMRES products, adjoints, Jacobians, Hessians) are
exact and stay on the fast path at every order. A Callback runs Python, so it cannot be
generated as C: :func:`~cognitive_action.compile.codegen.codegen_system` recompiles
with a CasADi ``Linsol`` plugin. Kernels are shared per shape and kept for the life of
the process (a Callback must outlive every Function that calls it).

Should ``S`` not be positive definite (negative masses, say), the kernel falls back to
LAPACK's LU of the symmetric matrix (``dgesv``): the answer is the solve either way;
a singular ``S`` gives NaN.

Examples
--------
>>> import casadi as ca, numpy as np
>>> rng = np.random.default_rng(0)
>>> M, d, b = rng.normal(size=(4, 4)), rng.uniform(1, 2, 4), rng.normal(size=4)
>>> u, v = rng.normal(size=4), np.ones(4)
>>> Ms, us, vs = ca.MX.sym("M", 4, 4), ca.MX.sym("u", 4), ca.MX.sym("v", 4)
>>> ds, cs, bs = ca.MX.sym("d", 4), ca.MX.sym("c"), ca.MX.sym("b", 4)
>>> f = ca.Function("f", [Ms, us, vs, ds, cs, bs], [spd_solve(Ms, us, vs, ds, cs, bs)])
>>> x = np.asarray(f(M, u, v, d, 0.5, b)).ravel()
>>> L = np.diag(u) @ M + np.diag(v)
>>> bool(np.allclose((0.5 * L @ L.T + np.diag(d)) @ x, b, rtol=1e-13, atol=1e-13))
True
"""

from __future__ import annotations

import threading

import casadi as ca
import numpy as np
from scipy.linalg import blas, lapack

__all__ = ["SPD_KERNEL", "SPDSolve", "reference_spd_solve", "schur_factor", "solve_dense",
           "spd_solve"]

#: The name under which the network route's ``linear_solver=`` selects this kernel.
SPD_KERNEL = "scipy_cholesky"

_LOCK = threading.Lock()
#: One kernel per shape ``(n, k)``, kept for the life of the process: a CasADi Callback
#: must outlive every Function that calls it (the graphs hold only the C++ side).
_KERNELS: dict[tuple, SPDSolve] = {}


class SPDSolve(ca.Callback):
    """``X = (c L Lᵀ + diag(d))⁻¹ B`` with ``L = diag(u) M + diag(v)``, for dense ``M``
    (n × n), vectors ``u``, ``v``, ``d`` (n), a scalar ``c`` and ``B`` (n × k), through
    ``dsyrk`` + ``dpotrf`` + ``dpotrs``.

    ``L`` is formed inside (NumPy: one pass over ``M``) because forming it in CasADi's
    graph costs as much again (``diag(g_a) W + diag(g_ξ)`` of eq. 10 is the network
    route's ``J_x``). ``transposed``: ``M`` is given as ``Mᵀ``; ``rows = (r0, m)``: the
    input is ``m × n`` and its rows ``r0 … r0 + n − 1`` are the (given) square matrix (the
    network route passes a whole block of weights this way, uncopied). Use
    :func:`spd_solve` (it shares one kernel per shape); inputs ``M, u, v, d, c, B``,
    output ``X``.
    """

    def __init__(self, n: int, k: int, transposed: bool = False,
                 rows: tuple[int, int] | None = None) -> None:
        ca.Callback.__init__(self)
        self.n, self.k, self.transposed = int(n), int(k), bool(transposed)
        self.r0, self.m = (0, self.n) if rows is None else (int(rows[0]), int(rows[1]))
        if not 0 <= self.r0 <= self.m - self.n:
            raise ValueError(f"rows {rows} do not hold an {n} x {n} block")
        tag = ("_t" if transposed else "") + (f"_r{self.r0}of{self.m}" if rows else "")
        self.construct(f"spd_solve_{n}x{k}{tag}", {})

    def _square(self, M):
        """The square block of the ``M`` input (a view in NumPy, a slice in MX)."""
        return M if self.m == self.n else M[self.r0:self.r0 + self.n, :]

    # -- shape --------------------------------------------------------------------------
    def get_n_in(self) -> int:
        return 6

    def get_n_out(self) -> int:
        return 1

    def get_name_in(self, i: int) -> str:
        return _NAMES[i]

    def get_name_out(self, i: int) -> str:
        return "X"

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        n = self.n
        vec = ca.Sparsity.dense(n, 1)
        return (ca.Sparsity.dense(self.m, n), vec, vec, vec, ca.Sparsity.dense(1, 1),
                ca.Sparsity.dense(n, self.k))[i]

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(self.n, self.k)

    # -- evaluation ---------------------------------------------------------------------
    def has_eval_buffer(self) -> bool:
        return True

    def eval_buffer(self, arg, res) -> int:
        n, k = self.n, self.k
        M = self._square(np.frombuffer(arg[0], dtype=np.float64).reshape(self.m, n, order="F"))
        u, v, d = (np.frombuffer(arg[i], dtype=np.float64) for i in (1, 2, 3))
        c = float(np.frombuffer(arg[4], dtype=np.float64)[0])
        B = np.frombuffer(arg[5], dtype=np.float64).reshape(n, k, order="F")
        X = np.frombuffer(res[0], dtype=np.float64).reshape(n, k, order="F")
        X[...] = solve_dense(schur_factor(M, u, v, self.transposed), d, c, B,
                             trans=self.transposed)
        return 0

    def eval(self, arg):  # safe: casadi.Callback.eval (the DM interface), not Python eval
        M, u, v, d, c, B = (np.asarray(ca.DM(a).full(), dtype=float) for a in arg)
        F = schur_factor(np.asfortranarray(self._square(M)), u.ravel(), v.ravel(),
                         self.transposed)
        return [ca.DM(solve_dense(F, d.ravel(), float(c.ravel()[0]), np.asfortranarray(B),
                                  trans=self.transposed))]

    # -- derivatives (MX expressions that call the kernel again) -------------------------
    def _symbols(self):
        n, k = self.n, self.k
        ins = [ca.MX.sym(nm, self.sparsity_in(i)) for i, nm in enumerate(_NAMES)]
        M, u, v = self._square(ins[0]), ins[1], ins[2]
        L = ca.repmat(u, 1, n) * (M.T if self.transposed else M) + ca.diag(v)
        return ins, L, ca.MX.sym("X", n, k)

    def has_forward(self, nfwd: int) -> bool:
        return True

    def get_forward(self, nfwd: int, name: str, inames, onames, opts) -> ca.Function:
        n, k = self.n, self.k
        ins, L, X = self._symbols()
        M, u, v, d, c, B = ins
        tr, rows = self.transposed, (self.r0, self.m) if self.m != self.n else None
        Mm = self._square(M).T if tr else self._square(M)
        dM, du, dv = (ca.MX.sym("dM", self.m, n * nfwd), ca.MX.sym("du", n, nfwd),
                      ca.MX.sym("dv", n, nfwd))
        dd, dc, dB = ca.MX.sym("dd", n, nfwd), ca.MX.sym("dc", 1, nfwd), \
            ca.MX.sym("dB", n, k * nfwd)
        LtX = ca.mtimes(L.T, X)
        LLtX = ca.mtimes(L, LtX)
        U = ca.repmat(u, 1, n)
        rhs = []
        for j in range(nfwd):
            # Ẋ = S⁻¹ (Ḃ − Ṡ X),  Ṡ = ċ L Lᵀ + c (L̇ Lᵀ + L L̇ᵀ) + diag(ḋ)
            dMj = self._square(dM[:, j * n:(j + 1) * n])
            dL = ca.repmat(du[:, j], 1, n) * Mm + U * (dMj.T if tr else dMj) + ca.diag(dv[:, j])
            dSX = (c * (ca.mtimes(dL, LtX) + ca.mtimes(L, ca.mtimes(dL.T, X)))
                   + dc[j] * LLtX + ca.repmat(dd[:, j], 1, k) * X)
            rhs.append(dB[:, j * k:(j + 1) * k] - dSX)
        dX = spd_solve(M, u, v, d, c, ca.horzcat(*rhs), transposed=tr, rows=rows)
        return ca.Function(name, [*ins, X, dM, du, dv, dd, dc, dB], [dX], inames, onames,
                           opts)

    def has_reverse(self, nadj: int) -> bool:
        return True

    def get_reverse(self, nadj: int, name: str, inames, onames, opts) -> ca.Function:
        n, k = self.n, self.k
        ins, L, X = self._symbols()
        M, u, v, d, c, B = ins
        tr, rows = self.transposed, (self.r0, self.m) if self.m != self.n else None
        Mm = self._square(M).T if tr else self._square(M)
        Xbar = ca.MX.sym("Xbar", n, k * nadj)
        Bbar = spd_solve(M, u, v, d, c, Xbar, transposed=tr, rows=rows)  # S⁻ᵀ = S⁻¹
        LtX = ca.mtimes(L.T, X)
        U = ca.repmat(u, 1, n)
        out = [[] for _ in range(5)]
        for j in range(nadj):
            Bj = Bbar[:, j * k:(j + 1) * k]
            LtB = ca.mtimes(L.T, Bj)
            # S̄ = −B̄ Xᵀ:  L̄ = c (S̄ + S̄ᵀ) L,  d̄ = diag(S̄),  c̄ = ⟨S̄, L Lᵀ⟩;
            # L = diag(u) M + diag(v):  M̄ = diag(u) L̄,  ū = rowsums(L̄ ∘ M),  v̄ = diag(L̄)
            Lbar = -c * (ca.mtimes(Bj, LtX.T) + ca.mtimes(X, LtB.T))
            Mbar = (U * Lbar).T if tr else U * Lbar
            if rows is not None:  # zero outside the square block
                Mbar = ca.vertcat(ca.MX.zeros(self.r0, n), Mbar,
                                  ca.MX.zeros(self.m - self.r0 - n, n))
            out[0].append(Mbar)
            out[1].append(ca.sum2(Lbar * Mm))
            out[2].append(ca.diag(Lbar))
            out[3].append(-ca.sum2(Bj * X))
            out[4].append(-ca.sum1(ca.sum2(LtB * LtX)))
        return ca.Function(name, [*ins, X, Xbar], [ca.horzcat(*o) for o in out] + [Bbar],
                           inames, onames, opts)


_NAMES = ("M", "u", "v", "d", "c", "B")


def schur_factor(M: np.ndarray, u: np.ndarray, v: np.ndarray, transposed: bool = False
                 ) -> np.ndarray:
    """``L = diag(u) M + diag(v)``, or its transpose ``Lᵀ = Mᵀ diag(u) + diag(v)`` from
    ``Mᵀ`` (``transposed``), in ``M``'s memory order (Fortran from CasADi: no copy but
    the result).

    Examples
    --------
    >>> M, u, v = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2.0, 3.0]), np.ones(2)
    >>> schur_factor(M, u, v).tolist()
    [[3.0, 4.0], [9.0, 13.0]]
    >>> schur_factor(M.T, u, v, transposed=True).T.tolist()
    [[3.0, 4.0], [9.0, 13.0]]
    """
    F = np.multiply(M, u[None, :] if transposed else u[:, None], order="F")
    F.reshape(-1, order="F")[::F.shape[0] + 1] += v  # the diagonal (a view: F-ordered)
    return F


def solve_dense(L: np.ndarray, d: np.ndarray, c: float, B: np.ndarray, *, trans: bool = False
                ) -> np.ndarray:
    """``(c L Lᵀ + diag(d))⁻¹ B`` in NumPy/SciPy: ``dsyrk`` (lower triangle), Cholesky
    (``dpotrf``, ``dpotrs``); LU (``dgesv``) if ``S`` is not positive definite. With
    ``trans``, ``L`` holds ``Lᵀ`` (``S = c Lᵀᵀ Lᵀ + diag(d)``).

    ``L`` is best Fortran-ordered (no copy into BLAS).

    Examples
    --------
    >>> L = np.array([[1.0, 0.0], [2.0, 1.0]]); d = np.array([1.0, 1.0])
    >>> solve_dense(L, d, 1.0, np.array([[4.0], [8.0]])).ravel().round(12).tolist()
    [1.0, 1.0]
    """
    n = L.shape[0]
    S = blas.dsyrk(c, L, trans=int(trans), lower=1)  # c L Lᵀ: lower triangle, Fortran
    S.reshape(-1, order="F")[::n + 1] += d  # the diagonal (a view: S is F-ordered)
    _chol, X, info = lapack.dposv(S, B, lower=1, overwrite_a=1)  # dpotrf + dpotrs
    if info == 0:
        return X
    # not positive definite: LU of the full symmetric matrix
    S = c * (L.T @ L if trans else L @ L.T)
    S[np.diag_indices(n)] += d
    _lu, _piv, X, info = lapack.dgesv(S, B)
    if info != 0:
        X = np.full(B.shape, np.nan)  # singular: NaN, as CasADi's solvers report
    return X


def spd_solve(M: ca.MX, u: ca.MX, v: ca.MX, d: ca.MX, c: ca.MX, B: ca.MX, *,
              transposed: bool = False, rows: tuple[int, int] | None = None) -> ca.MX:
    """``(c L Lᵀ + diag(d))⁻¹ B`` with ``L = diag(u) M + diag(v)``, as one kernel call in
    an MX graph (one shared kernel per shape; see the module's notes).

    ``transposed``: ``M`` is given as ``Mᵀ`` (the network route holds ``Wᵀ``);
    ``rows = (r0, m)``: ``M`` is ``m × n`` and its rows ``r0 … r0 + n − 1`` are the square
    matrix (as given, before the transposition).
    """
    n, k = int(M.size2()), int(B.size2())
    rows = None if rows is None or (rows[0] == 0 and rows[1] == n) else \
        (int(rows[0]), int(rows[1]))
    key = (n, k, bool(transposed), rows)
    with _LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = SPDSolve(n, k, transposed, rows)
    return kernel(ca.densify(M), u, v, d, c, ca.densify(B))


def reference_spd_solve(M: ca.MX, u: ca.MX, v: ca.MX, d: ca.MX, c: ca.MX, B: ca.MX,
                        solver: str = "ldl", *, transposed: bool = False,
                        rows: tuple[int, int] | None = None) -> ca.MX:
    """The same solve in pure CasADi (``mtimes`` and a ``Linsol`` plugin)."""
    n = int(M.size2())
    if rows is not None:
        M = M[rows[0]:rows[0] + n, :]
    L = ca.mtimes(ca.diag(u), M.T if transposed else M) + ca.diag(v)
    return ca.solve(c * ca.mtimes(L, L.T) + ca.diag(d), B, solver)
