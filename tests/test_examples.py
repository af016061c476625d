"""Every example runs to completion (in its small default setting)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


#: Examples that train several laws (a minute or more): run with ``-m slow``.
SLOW = {"compare_laws"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW
                                  else p for p in EXAMPLES], ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    res = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip(), "an example should print what it shows"


def test_examples_exist():
    assert len(EXAMPLES) >= 2
