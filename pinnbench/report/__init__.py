"""Reports of a results set: comparison tables, published numbers, error curves, time to target, profiles.

Entry points: :func:`write_report` (a results folder, through :mod:`pinnbench.store`) and :func:`build_report`
(runs and trajectory DataFrames in the store's schema). The modules below are usable on their own.
"""
from .build import build_report, write_report
from .curves import seed_bands
from .frames import partitions
from .published import PUBLISHED, published_table
from .status import status_counts
from .tables import PAPER_COMPARISONS, Comparison, comparison_table, full_table, summarize
from .targets import DEFAULT_TARGETS, performance_ratios, time_to_target

__all__ = [
    "DEFAULT_TARGETS", "PAPER_COMPARISONS", "PUBLISHED", "Comparison", "build_report", "comparison_table",
    "full_table", "partitions", "performance_ratios", "published_table", "seed_bands", "status_counts",
    "summarize", "time_to_target", "write_report",
]
