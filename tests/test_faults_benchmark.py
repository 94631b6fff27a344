"""The fault matrix (benchmarks/faults.py) runs whole, and no fault loses data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.tensorflow
def test_every_fault_of_the_matrix_loses_nothing_and_says_what_to_do(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("tensorflow")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "faults.py"), "--out",
                             str(tmp_path / "faults.md")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = (tmp_path / "faults.md").read_text().splitlines()[2:]
    assert len(rows) >= 19
    for row in rows:
        fault, outcome, lost, _seconds = row.strip("| ").split(" | ")
        assert lost == "none", row
        assert "TRACEBACK" not in outcome and "BENCHMARK ERROR" not in outcome, row
