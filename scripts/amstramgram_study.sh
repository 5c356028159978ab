#!/usr/bin/env bash
# Re-run the AMStraMGRAM study (issue #12, docs/amstramgram.md) and print its tables.
# Usage: scripts/amstramgram_study.sh [RESULTS_DIR]   (default results/amstramgram-study; venv active)
# Two isolated runs at a time, one thread each (--jobs 2 on a 2-core machine). Every block is resumable: runs
# already in the results folder are skipped, so an interrupted study goes on where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/amstramgram-study}
export OMP_NUM_THREADS=1
run() { pinnbench run --jobs 2 --no-report --out "$OUT" "$@"; }

# 1. The `amstramgram` preset (paper point sets, 1 thread; laplace2d and heat on the machine-precision nets,
#    precision 1e-14; per-problem budgets; laplace5d at 100 equal steps): the first paper table.
run --protocol amstramgram -p laplace2d heat -o amstramgram anagram ssbroyden
run --protocol amstramgram -p laplace5d -o amstramgram anagram
# 2. The ANaGRAM paper's nets ([2,32,1], [2,64,1]), paper points, 300 equal steps for both optimizers.
run --protocol protocols/paper-1thread.toml --seeds 6865 8369 4785 --steps 300 -p laplace2d heat \
    -o amstramgram anagram
# 3. The second table's problems under the preset (one seed: 300 s per run), ANaGRAM on allen_cahn (first
#    table) and SSBroyden on laplace5d.
run --protocol amstramgram --seeds 6865 -p allen_cahn burgers nonlinear_poisson -o amstramgram ssbroyden
run --protocol amstramgram --seeds 6865 -p allen_cahn -o anagram
run --protocol amstramgram --seeds 6865 -p laplace5d -o ssbroyden

pinnbench report "$OUT" --format md html latex
python scripts/amstramgram_table.py "$OUT"
