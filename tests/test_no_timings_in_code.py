"""Measured times live in docs/performance.md and benchmarks/, not in code comments.

A timing in a comment or docstring goes stale silently; the code keeps the reason for
a choice and points to the docs for the numbers (issue 11).
"""

from __future__ import annotations

import ast
import io
import pathlib
import re
import tokenize

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cognitive_action"
#: a number followed by a unit of time, or the words for small units of time
TIMING = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:s|ms|µs|us|min)\b(?!-)"
                    r"|millisecond|microsecond")


def _comments_and_docstrings(src: str) -> list[tuple[int, str]]:
    out = [(tok.start[0], tok.string)
           for tok in tokenize.generate_tokens(io.StringIO(src).readline)
           if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    return out


def test_the_pattern_finds_timings():
    src = '"""Built in 0.3 s."""\nx = 1  # about 30 µs\ny = 2  # lapacklu 1.5 ms\n'
    assert len([m for _, t in _comments_and_docstrings(src) for m in TIMING.finditer(t)]) == 3
    assert not TIMING.search("eq. 10 s-wave, order 2, 5 states, m_s")


def test_no_timings_in_comments_or_docstrings():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _comments_and_docstrings(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            hits += [f"{where}: ...{text[max(0, m.start() - 40):m.end()]}"
                     for m in TIMING.finditer(text)]
    assert not hits, "move these timings to docs/performance.md:\n" + "\n".join(hits)
