"""Layers point down: every import inside the package goes to a lower (or the same) layer.

errors, interrupts < declare < derive, problem_files < compile, data < verify < learn,
diffusion, results < sweeps, workflow < cli. Imports are read from the source (AST),
including imports inside functions and under ``TYPE_CHECKING``: a lazy import that runs
upward is still a cycle waiting to happen.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cognitive_action"

RANK = {"errors": 0, "lazy_exports": 0, "interrupts": 0, "declare": 1, "derive": 2,
        "problem_files": 2, "compile": 3, "data": 3, "verify": 4, "learn": 5, "diffusion": 5,
        "results": 5, "sweeps": 6, "workflow": 6, "cli": 7}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "cognitive_action" and len(parts) > 1 else None


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "cognitive_action":  # from cognitive_action import verify
                out += [(node.lineno, f"cognitive_action.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def upward_imports() -> list[str]:
    """``file:line: layer imports layer`` for every import that runs up."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        me = parts[0]
        if me == "__init__" or me == "__main__":
            continue  # the package facade re-exports every layer
        if me not in RANK:
            found.append(f"{path.relative_to(PACKAGE.parent)}: no layer (add it to RANK)")
            continue
        for line, module in _imports(path):
            other = _layer(module)
            if other is not None and other in RANK and RANK[other] > RANK[me]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {me} imports "
                             f"{module}")
            elif other is not None and other not in RANK and other != "__init__":
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports "
                             f"{module}, which has no layer")
    return found


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The reader catches a lazy import inside a function (the kind that hid the
    compile -> verify cycle)."""
    fake = tmp_path / "cognitive_action"
    (fake / "compile").mkdir(parents=True)
    (fake / "compile" / "bad.py").write_text(
        "def f():\n    from cognitive_action.verify.limits import reduce\n    return reduce\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert upward_imports() == [
        "cognitive_action/compile/bad.py:2: compile imports cognitive_action.verify.limits"]
