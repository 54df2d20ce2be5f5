"""Bench and release gate: every format of a bundle against the PyTorch reference (may import torch)."""
from edgesam.bench.config import BenchConfig
from edgesam.bench.floors import check_floors
from edgesam.bench.report import format_table, write_report
from edgesam.bench.run import run_bench

__all__ = ["BenchConfig", "check_floors", "format_table", "run_bench", "write_report"]
