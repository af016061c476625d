"""Generate ``docs/problem_files.md``, the problem-file reference, from the loader's schema.

The page lists every section and key a problem file may hold (type, default, allowed
values, kinds, description, an example), rendered by
:func:`cognitive_action.problem_files.schema.markdown` from the same
:data:`~cognitive_action.problem_files.schema.SCHEMA` the loader takes its allowed keys
from. Run it from the repository root after changing the schema::

    python docs/generate_reference.py

``tests/test_problem_file_reference.py`` fails when the committed page differs from the
schema, when a documented example does not load, or when the loader accepts a key the
page does not document.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "problem_files.md"


def main() -> None:
    from cognitive_action.problem_files.schema import markdown

    PAGE.write_text(markdown(), encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
