"""Named checks and the report the verifier returns (table, JSON, exit code).

Examples
--------
>>> r = Report("demo", [Check("rank", "pass", 3, 3, "G_xi has rank 3 of 3"),
...                     Check("backprop.numeric", "fail", 2.0e-3, 1e-9, "too far")])
>>> r.passed, r.exit_code
(False, 1)
>>> print(r)  # doctest: +NORMALIZE_WHITESPACE
verify demo: 1 passed, 1 failed, 0 skipped
check             status  value     tolerance  message
rank              pass    3         3          G_xi has rank 3 of 3
backprop.numeric  FAIL    0.002     1e-09      too far
>>> import json
>>> json.loads(r.to_json())["checks"][1]["passed"]
False
>>> print(r.to_markdown())
**verify demo**: 1 passed, 1 failed, 0 skipped
<BLANKLINE>
| check | status | value | tolerance | message |
|---|---|---|---|---|
| `rank` | pass | 3 | 3 | G_xi has rank 3 of 3 |
| `backprop.numeric` | FAIL | 0.002 | 1e-09 | too far |
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Check", "Report", "STATUSES", "html_table", "markdown_table"]

#: Possible statuses of a check (``inconclusive``: measured, but no verdict could be
#: taken, e.g. a convergence order that never stabilised; it does not fail).
STATUSES = ("pass", "fail", "skip", "inconclusive")


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, complex):
        return {"re": v.real, "im": v.imag}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(head: str, rows: list[tuple[str, ...]],
                   columns: tuple[str, ...]) -> str:
    """A Markdown table under a bold first line (the reports' ``to_markdown``); the first
    column is set as code."""
    lines = [head, "", "| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join([f"`{r[0]}`"] + [_md(x) or "-" for x in r[1:]]) + " |"
              for r in rows]
    return "\n".join(lines)


_COLUMNS = ("check", "status", "value", "tolerance", "message")
_STATUS_COLOURS = {"pass": "#1a7f37", "FAIL": "#cf222e", "fail": "#cf222e",
                   "expected-fail": "#9a6700", "UNEXPECTED-PASS": "#cf222e",
                   "skip": "#57606a", "inconclusive": "#9a6700"}


def html_table(head: str, rows: list[tuple[str, ...]], columns: tuple[str, ...],
               status_column: int = 1) -> str:
    """An HTML table (escaped) under a heading line, statuses coloured (notebooks)."""
    out = [f"<p><b>{html.escape(head)}</b></p>", "<table>",
           "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
           + "</tr></thead>", "<tbody>"]
    for r in rows:
        cells = []
        for i, x in enumerate(r):
            text = html.escape(x)
            if i == 0:
                text = f"<code>{text}</code>"
            elif i == status_column and x in _STATUS_COLOURS:
                text = f'<span style="color:{_STATUS_COLOURS[x]}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3g}"
    return str(v)


@dataclass
class Check:
    """One named check.

    Attributes
    ----------
    name
        Dotted name (``rank``, ``backprop.numeric.multipliers``, …).
    status
        ``"pass"``, ``"fail"``, ``"skip"`` (not applicable to this problem) or
        ``"inconclusive"`` (measured without a verdict).
    value, tolerance
        The measured number (or short text) and what it was compared with.
    message
        One line for the table: what was measured, and on failure what to do.
    details
        JSON-able extra data (per-layer metrics, eigenvalues, differences).
    """

    name: str
    status: str
    value: Any = None
    tolerance: Any = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check does not fail)."""
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"name": self.name, "status": self.status, "passed": self.passed,
                          "value": self.value, "tolerance": self.tolerance,
                          "message": self.message, "details": self.details})


@dataclass
class Report:
    """The checks of one :func:`~cognitive_action.verify.checks.verify` call.

    ``str(report)`` is a table; :meth:`to_json` the machine-readable form;
    :attr:`exit_code` is 0 when every check passes (or is skipped), 1 otherwise.
    """

    problem: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when all checks pass, 1 when one fails (bad input raises instead: exit 2)."""
        return 0 if self.passed else 1

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "passed": self.passed, "exit_code": self.exit_code,
                "counts": self.counts(), "checks": [c.to_dict() for c in self.checks]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def headline(self) -> str:
        """``verify <problem>: N passed, N failed, N skipped``."""
        n = self.counts()
        head = (f"verify {self.problem}: {n['pass']} passed, {n['fail']} failed, "
                f"{n['skip']} skipped")
        if n.get("inconclusive"):
            head += f", {n['inconclusive']} inconclusive"
        return head

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """One row per check: name, status (``FAIL`` upper-case), value, tolerance,
        message, as the table prints them."""
        return [(c.name, "FAIL" if c.status == "fail" else c.status, _fmt(c.value),
                 _fmt(c.tolerance), c.message) for c in self.checks]

    def to_markdown(self) -> str:
        """The report as a Markdown table (for pages and issues)."""
        head = self.headline().split(": ", 1)
        return markdown_table(f"**{head[0]}**: {head[1]}", self.rows(), _COLUMNS)

    def to_html(self) -> str:
        """The report as an HTML table, statuses coloured."""
        return html_table(self.headline(), self.rows(), _COLUMNS)

    def _repr_html_(self) -> str:  # notebooks
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        head = self.headline()
        rows = [_COLUMNS]
        rows += self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [head] + ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4]
                          for r in rows]
        return "\n".join(line.rstrip() for line in lines)
