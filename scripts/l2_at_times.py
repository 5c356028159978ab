"""The L2 error each run of a results folder had reached at given optimizer times (from its stored trajectory).

    python scripts/l2_at_times.py RESULTS_DIR [SECONDS ...]     (default: 5 10 20 30 40)

One line per run: problem, optimizer, L2 at the start, then L2@step at each time (the last evaluation at or
before it), the run's time and why it stopped. This is how the quick protocol's budgets were chosen
(docs/quick-protocol.md): the smallest budget at which the papers' ordering holds, with a margin.
"""
from __future__ import annotations

import sys

import numpy as np

from pinnbench.store import records


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    times = [float(t) for t in argv[1:]] or [5.0, 10.0, 20.0, 30.0, 40.0]
    rows = []
    for _, record in records(argv[0]):
        m, trajectory = record.manifest, record.trajectory
        t, l2, step = (np.asarray(trajectory[k]) for k in ("time", "l2_abs", "step"))
        cells = [f"{l2[i]:.1e}@{int(step[i])}" for i in (np.searchsorted(t, times, side="right") - 1)]
        rows.append([m["problem"], m["optimizer"], f"{l2[0]:.2e}", *cells, f"{m['time']:.0f} s", str(m.get("stop_reason"))])
    header = ["problem", "optimizer", "start", *(f"L2@step at {t:g} s" for t in times), "time", "stopped by"]
    print(" | ".join(header))
    for row in sorted(rows):
        print(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
