"""Checks shared by the backend tests: two records of the same run hold the same numbers."""
from __future__ import annotations

import numpy as np

from pinnbench.store import RunRecord


def assert_same_results(a: RunRecord, b: RunRecord) -> None:
    """Bit-identical per-step scalars, trajectory points at every step both evaluated, and final values.

    Which steps a run evaluates depends partly on wall time (an evaluation at least every 1 % of the budget),
    so only the steps recorded by both are compared point by point.
    """
    for key in ("run_key", "status", "stop_reason", "steps", "hparams"):
        assert a.manifest[key] == b.manifest[key], key
    assert a.info_steps == b.info_steps and a.info.keys() == b.info.keys()
    for key in a.info:  # NaN is a legitimate recorded value (a scalar that does not apply): equal to itself here
        np.testing.assert_array_equal(np.asarray(a.info[key]), np.asarray(b.info[key]), err_msg=key)
    points = [{step: tuple(r.trajectory[c][i] for c in ("loss", "l2_abs", "l2_rel", "residual_evals",
                                                        "gradient_evals", "jacobian_evals"))
               for i, step in enumerate(r.trajectory["step"])} for r in (a, b)]
    common = points[0].keys() & points[1].keys()
    assert {0, a.manifest["steps"]} <= common
    assert all(points[0][step] == points[1][step] for step in common)
