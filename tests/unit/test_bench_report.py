"""How a benchmark run is recorded in RESULTS.md."""

from __future__ import annotations

from bench.__main__ import recorded_command
from bench.harness import ROOT


def test_the_recorded_command_leaves_out_where_figures_were_written() -> None:
    argv = ["--only", "overhead", "--out", "/scratch/r.json", "--markdown=/scratch/R.md"]
    assert recorded_command(argv) == "python -m bench --only overhead"


def test_the_recorded_command_names_repository_paths_as_a_checkout_would() -> None:
    argv = ["--profile-dir", f"{ROOT}/bench/profiles", "--repeat", "1"]
    assert recorded_command(argv) == "python -m bench --profile-dir bench/profiles --repeat 1"
