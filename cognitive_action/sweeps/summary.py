"""Convergence summary of a sweep: the fitted order with its interval and a log-log figure.

Examples
--------
>>> import numpy as np, xarray as xr
>>> h = np.array([0.1, 0.05, 0.025, 0.0125])
>>> ds = xr.Dataset({"err": ("h", 3.0 * h**2)}, coords={"h": h})
>>> fit = fit_order(ds, "h", "err")
>>> round(fit.order, 10), fit.n
(2.0, 4)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cognitive_action.errors import SweepError
from cognitive_action.verify.metrics import OrderFit, convergence_order

__all__ = ["fit_order", "convergence_summary", "plot_convergence"]


def _curve(ds: Any, axis: str, variable: str) -> tuple[np.ndarray, np.ndarray]:
    if variable not in ds:
        raise SweepError(f"no result variable {variable!r}", field="convergence",
                         fix=f"name one of {', '.join(map(str, ds.data_vars))}")
    da = ds[variable]
    extra = [d for d in da.dims if d != axis]
    if any(da.sizes[d] > 1 for d in extra):
        raise SweepError(f"{variable!r} is not one number per value of {axis!r}",
                         field="convergence", fix="fit a scalar result over a single axis")
    da = da.squeeze(extra, drop=True) if extra else da
    x = np.asarray(ds[axis].values, dtype=float)
    y = np.asarray(da.values, dtype=float)
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


def fit_order(ds: Any, axis: str, variable: str, *, confidence: float = 0.95) -> OrderFit:
    """Fit ``log(variable)`` against ``log(axis)`` over the points that succeeded.

    Points that failed (NaN) or are exactly zero are left out; at least three must
    remain (:func:`~cognitive_action.verify.metrics.convergence_order` raises otherwise).
    """
    x, y = _curve(ds, axis, variable)
    return convergence_order(x, y, confidence=confidence)


def plot_convergence(ds: Any, axis: str, variable: str, fit: OrderFit,
                     path: str | os.PathLike[str], *, ylabel: str | None = None) -> None:
    """Write a log-log figure of ``variable`` against ``axis`` with the fitted line (PNG);
    ``ylabel`` names the y axis (default: ``variable``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    x, y = _curve(ds, axis, variable)
    grid = np.geomspace(x.min(), x.max(), 50)
    fig, ax = plt.subplots(figsize=(5, 4))
    try:
        ax.loglog(x, y, "o", label=f"{variable} (sweep points)")
        lo, hi = fit.ci
        ax.loglog(grid, fit.constant * grid**fit.order, "-",
                  label=f"fit: order {fit.order:.3f} [{lo:.3f}, {hi:.3f}] "
                        f"({100 * fit.confidence:g}% CI)")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
        ax.set_xticks(x, [f"{v:.3g}" for v in x])
        ax.set_xlabel(axis)
        ax.set_ylabel(ylabel or variable)
        ax.set_title(f"{ds.attrs.get('problem', '')}: {variable} against {axis}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        tmp = f"{os.fspath(path)}.tmp.png"
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)


def convergence_summary(ds: Any, spec: Any, figure: str | os.PathLike[str] | None
                        ) -> dict[str, Any]:
    """Attributes of a convergence sweep (``convergence_order``, its CI, ...) and the figure.

    A fit that cannot be made (fewer than three successful positive errors) is reported
    in ``convergence_error`` instead of failing the sweep. The figure needs matplotlib.
    """
    conv = spec.convergence
    attrs: dict[str, Any] = {"convergence_axis": conv.axis, "convergence_variable": conv.variable}
    try:
        axis = spec.coord_name(conv.axis)
        fit = fit_order(ds, axis, conv.variable, confidence=conv.confidence)
    except Exception as exc:  # noqa: BLE001 - recorded, the points stay
        attrs["convergence_error"] = f"{type(exc).__name__}: {exc}"
        return attrs
    attrs.update({"convergence_order": fit.order, "convergence_ci": list(fit.ci),
                  "convergence_confidence": fit.confidence,
                  "convergence_stderr": fit.stderr, "convergence_constant": fit.constant,
                  "convergence_r_squared": fit.r_squared, "convergence_n": fit.n})
    if figure is not None:
        try:
            label = None
            if spec.task == "convergence":
                names = ", ".join(spec.outputs or ("y",))
                label = (f"distance: max over t of |{names} - ({names} at "
                         f"{conv.axis} = {conv.reference:g})|")
            plot_convergence(ds, axis, conv.variable, fit, figure, ylabel=label)
        except ImportError:
            attrs["convergence_figure"] = "not drawn: matplotlib is not installed"
    return attrs
