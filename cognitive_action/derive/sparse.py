"""Sparse symbolic matrices and linear-time tree utilities for large derivations.

``SparseRows`` keeps a matrix of SymPy expressions as one ``{column: entry}`` dict per
row, with row and column labels. A neuron constraint touches only its neuron, its
in-neighbours and their weights, so the constraint Jacobian of a dense 200-neuron
network has 80,000 nonzeros, not 200 × 40,200 entries; nothing here expands it.

``depends`` and ``zero_out`` are memoized tree walks: SymPy's ``free_symbols`` and
``xreplace`` walk a whole expression at each call, which is quadratic when the same
large net input appears under many entries.

Examples
--------
>>> import sympy as sp
>>> a, b, c = sp.symbols("a b c")
>>> J = SparseRows(["G1", "G2"], [a, b, c], [{a: 1, b: c}, {c: 2}])
>>> J.to_matrix()
Matrix([
[1, c, 0],
[0, 0, 2]])
>>> J.nnz
3
>>> Walker([a]).zero_out(a * b + c)
c
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import sympy as sp

__all__ = ["SparseRows", "Walker"]


class SparseRows:
    """A sparse matrix of SymPy expressions stored by rows.

    Parameters
    ----------
    row_labels
        One label per row (constraint names, coordinates).
    columns
        Column labels (symbols), in order.
    rows
        One ``{column: entry}`` dict per row; zero entries omitted.
    """

    def __init__(self, row_labels: Sequence[Hashable], columns: Sequence[sp.Symbol],
                 rows: Sequence[dict[sp.Symbol, sp.Expr]]) -> None:
        self.row_labels = tuple(row_labels)
        self.columns = tuple(columns)
        self.rows = [dict(r) for r in rows]
        self._col_index = {c: i for i, c in enumerate(self.columns)}

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)

    @property
    def nnz(self) -> int:
        """Number of stored (structurally nonzero) entries."""
        return sum(len(r) for r in self.rows)

    def __getitem__(self, key: tuple[int, sp.Symbol]) -> sp.Expr:
        i, col = key
        return self.rows[i].get(col, sp.S.Zero)

    def column_index(self, col: sp.Symbol) -> int:
        return self._col_index[col]

    def to_matrix(self) -> sp.Matrix:
        """A dense ``sympy.Matrix`` (for small systems and tests)."""
        M = sp.zeros(*self.shape)
        for i, r in enumerate(self.rows):
            for c, v in r.items():
                M[i, self._col_index[c]] = v
        return M

    def restrict(self, columns: Sequence[sp.Symbol]) -> SparseRows:
        """The submatrix of the given columns."""
        keep = set(columns)
        return SparseRows(self.row_labels, columns,
                          [{c: v for c, v in r.items() if c in keep} for r in self.rows])

    def transpose_rows(self) -> dict[sp.Symbol, list[tuple[int, sp.Expr]]]:
        """Column-wise view ``{column: [(row, entry), ...]}``."""
        out: dict[sp.Symbol, list[tuple[int, sp.Expr]]] = {}
        for i, r in enumerate(self.rows):
            for c, v in r.items():
                out.setdefault(c, []).append((i, v))
        return out

    def __repr__(self) -> str:
        return f"SparseRows({self.shape[0]}x{self.shape[1]}, nnz={self.nnz})"


class Walker:
    """Memoized dependency test and substitution of a set of symbols by zero.

    Parameters
    ----------
    symbols
        The symbols of interest.
    """

    def __init__(self, symbols: Iterable[sp.Symbol]) -> None:
        self.symbols = frozenset(symbols)
        self._dep: dict[sp.Basic, bool] = {}
        self._zero: dict[sp.Basic, sp.Basic] = {}

    def depends(self, e: sp.Basic) -> bool:
        """Whether ``e`` contains one of the symbols."""
        hit = self._dep.get(e)
        if hit is None:
            if e.is_Symbol:
                hit = e in self.symbols
            elif not e.args:
                hit = False
            else:
                hit = any(self.depends(a) for a in e.args)
            self._dep[e] = hit
        return hit

    def zero_out(self, e: sp.Basic) -> sp.Basic:
        """``e`` with the symbols set to zero."""
        if not self.depends(e):
            return e
        hit = self._zero.get(e)
        if hit is None:
            hit = sp.S.Zero if e.is_Symbol else e.func(*(self.zero_out(a) for a in e.args))
            self._zero[e] = hit
        return hit
