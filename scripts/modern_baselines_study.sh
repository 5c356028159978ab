#!/usr/bin/env bash
# Re-run the 3-seed comparison of issue #16 (docs/modern-baselines.md): lm, engd_woodbury, nncg beside ANaGRAM on
# laplace2d, heat and laplace5d, under the paper protocol (30 s per run) and the quick protocol, one thread per
# run, and write both reports. Usage: scripts/modern_baselines_study.sh [RESULTS_DIR] (default results/modern)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/modern}
export OMP_NUM_THREADS=1
common=(--seeds 6865 8369 4785 -p laplace2d heat laplace5d -o lm engd_woodbury nncg anagram --no-report)
pinnbench run --protocol protocols/paper-1thread.toml --budget 30s "${common[@]}" --out "$OUT/paper"
pinnbench run --protocol protocols/quick-1thread.toml "${common[@]}" --out "$OUT/quick"
pinnbench report "$OUT/paper"
pinnbench report "$OUT/quick"
