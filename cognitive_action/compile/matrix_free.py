"""A right-hand side whose Jacobian sparsity CasADi does not have to compute.

Every CasADi ``integrator`` computes the Jacobian sparsity of its DAE when it is built.
For the finite-mass learning system (eq. 8-10) that pass propagates through eq. (10)'s
dense multiplier solve, an 80k × 80k dense pattern at n = 200 that does not finish
(docs/performance.md), although CVODES' Newton iterations with GMRES and no preconditioner never
form the Jacobian: they only need Jacobian-vector products, which forward AD of the MX
graph gives cheaply.

:class:`MatrixFreeRHS` wraps ``(t, y, p) → ẏ`` in a :class:`casadi.Callback` that

- evaluates the compiled function through its buffers (no conversion per call),
- gives forward derivatives by the wrapped function's own forward AD (exact
  Jacobian-vector products, evaluated natively),
- *declares* a diagonal Jacobian sparsity, so construction skips the sparsity pass.

The declared pattern is not the true one: use the wrapper only where no Jacobian matrix
is ever formed (CVODES with ``newton_scheme="gmres"`` and no preconditioner).
:func:`cognitive_action.compile.simulate` does so for ``newton="gmres"`` (the default
above 300 states).
"""

from __future__ import annotations

import threading

import casadi as ca
import numpy as np

__all__ = ["MatrixFreeRHS"]


class MatrixFreeRHS(ca.Callback):
    """``(t, y, p) → ẏ`` with a declared diagonal Jacobian sparsity (see the module).

    Parameters
    ----------
    rhs
        The compiled right-hand side, ``CompiledSystem.rhs``.

    Examples
    --------
    >>> import casadi as ca, numpy as np
    >>> t, y, p = ca.MX.sym("t"), ca.MX.sym("y", 2), ca.MX.sym("p", 1)
    >>> f = ca.Function("f", [t, y, p], [ca.vertcat(y[1], -p * y[0])])
    >>> g = MatrixFreeRHS(f)
    >>> np.asarray(g(0.0, [1.0, 2.0], 4.0)).ravel().tolist()
    [2.0, -4.0]
    >>> g.sparsity_jac(1, 0).nnz()  # declared, not computed
    2
    """

    def __init__(self, rhs: ca.Function) -> None:
        ca.Callback.__init__(self)
        self.rhs = rhs
        self._args = [np.zeros(rhs.nnz_in(i)) for i in range(rhs.n_in())]
        self._out = np.zeros(rhs.nnz_out(0))
        self._fb, self._evaluate = rhs.buffer()
        for i, a in enumerate(self._args):
            self._fb.set_arg(i, memoryview(a))
        self._fb.set_res(0, memoryview(self._out))
        self._lock = threading.Lock()  # one set of buffers: calls must not overlap
        self.construct(f"{rhs.name()}_matrix_free", {})

    def get_n_in(self) -> int:
        return self.rhs.n_in()

    def get_n_out(self) -> int:
        return 1

    def get_name_in(self, i: int) -> str:
        return self.rhs.name_in(i)

    def get_name_out(self, i: int) -> str:
        return self.rhs.name_out(i)

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        return self.rhs.sparsity_in(i)

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return self.rhs.sparsity_out(i)

    def has_eval_buffer(self) -> bool:
        return True

    def eval_buffer(self, arg, res) -> int:
        with self._lock:
            for a, m in zip(self._args, arg):
                a[:] = np.frombuffer(m, dtype=float, count=a.size)
            self._evaluate()
            np.frombuffer(res[0], dtype=float, count=self._out.size)[:] = self._out
        return 0

    def has_jac_sparsity(self, oind: int, iind: int) -> bool:
        return True

    def get_jac_sparsity(self, oind: int, iind: int, symmetric: bool) -> ca.Sparsity:
        n, m = self.rhs.nnz_out(oind), self.rhs.nnz_in(iind)
        return ca.Sparsity.diag(n) if n == m else ca.Sparsity(n, m)

    def has_forward(self, nfwd: int) -> bool:
        return True

    def get_forward(self, nfwd: int, name: str, inames, onames, opts) -> ca.Function:
        fwd = self.rhs.forward(nfwd)
        syms = [ca.MX.sym(fwd.name_in(i), fwd.sparsity_in(i)) for i in range(fwd.n_in())]
        return ca.Function(name, syms, fwd.call(syms), inames, onames, opts)
