"""The example notebooks run: their code cells are executed in order in one namespace,
the way a kernel would (the value of a cell's last expression is displayed, so its
``_repr_html_`` / ``_repr_latex_`` is called), without Jupyter installed.

``examples/new_learning_law.ipynb`` declares a new law, derives, verifies, simulates
and plots it in a small setting (a few seconds).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
pytest.importorskip("xarray")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


def _display(value: Any) -> str:
    """What a notebook front end would render for a cell's value."""
    for method in ("_repr_html_", "_repr_latex_", "_repr_markdown_"):
        f = getattr(value, method, None)
        if f is not None:
            out = f()
            if out:
                return out
    return repr(value)


def run_notebook(path: Path, cwd: Path) -> tuple[dict[str, Any], list[str]]:
    """Execute the code cells of ``path``; return the namespace and what each cell
    displayed. Our own example's code, not untrusted input."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shown = []
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            source = "".join(cell["source"])
            tree = ast.parse(source, filename=f"{path.name}[{i}]")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) \
                else None
            exec(compile(tree, f"{path.name}[{i}]", "exec"), namespace)  # noqa: S102
            if last is not None:
                value = eval(compile(ast.Expression(last.value), f"{path.name}[{i}]",  # noqa: S307
                                     "eval"), namespace)
                shown.append(_display(value))
    finally:
        os.chdir(old)
    return namespace, shown


def test_there_is_an_example_notebook():
    assert [p.name for p in NOTEBOOKS] == ["new_learning_law.ipynb"]


def test_new_learning_law_notebook_runs(tmp_path):
    import matplotlib.pyplot as plt

    ns, shown = run_notebook(NOTEBOOKS[0], tmp_path)
    try:
        # derived, verified, simulated, plotted, labelled
        assert ns["verification"].passed
        assert "<table>" in ns["verification"]._repr_html_()
        assert any(s.startswith("$\\begin{aligned}") for s in shown)  # the derived system
        assert ns["sim"].max_drift < 1e-6
        fig = ns["fig"]
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert len(titles) == 5 and titles[3] == "loss V(t)"
        labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
        assert "target x5" in labels
        assert set(ns["ds"].coords) >= {"time", "neuron", "layer", "weight", "constraint"}
        fig.savefig(tmp_path / "notebook.png")
    finally:
        plt.close("all")
