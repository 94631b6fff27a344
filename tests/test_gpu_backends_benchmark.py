"""benchmarks/gpu_backends.py: its arithmetic and its table of the committed H200 results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_backends  # noqa: E402  (a script, not a package)


def test_the_flop_count_is_the_papers_direct_convolution_count():
    # per input voxel: 15² taps x (40 + 40·40/4 + 40/4) multiply-adds, x 2 (apply_speed's count)
    assert gpu_backends.direct_flops_per_voxel() == 2 * 225 * (40 + 400 + 10)


def test_the_committed_h200_results_print_as_one_table(capsys):
    report = json.loads((ROOT / "benchmarks" / "results" / "gpu" / "gpu_backends_calls.json").read_text())
    gpu_backends.print_table(report)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(report["configs"])            # header + one row per backend
    assert all(row.count("|") == rows[0].count("|") for row in rows)
    assert all("NVIDIA H200" in row for row in rows[1:])
