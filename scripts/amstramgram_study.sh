#!/usr/bin/env bash
# Re-run the AMStraMGRAM study of docs/amstramgram.md (paper point sets, seeds 6865 8369 4785, 1 thread).
# Usage: scripts/amstramgram_study.sh [RESULTS_DIR]   (default results/amstramgram)
# Each block is resumable: runs already in the results folder are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/amstramgram}
PY=${PYTHON:-python}
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
RUN=("$PY" -m pinnbench run --protocol benchmarks/amstramgram/study.toml
     --plugin benchmarks/amstramgram/nets.py --no-report)

# laplace2d: the study net [2,64,1] and the ANaGRAM net [2,32,1]
"${RUN[@]}" -p laplace2d_w64 -o amstramgram anagram --steps 500 --out "$OUT/laplace2d_w64"
"${RUN[@]}" -p laplace2d -o amstramgram anagram --steps 500 --out "$OUT/laplace2d"
# heat: the study net [2,64,64,1] (ANaGRAM capped at 300 steps to bound the cost), and the ANaGRAM net [2,64,1]
"${RUN[@]}" -p heat_w64x2 -o amstramgram anagram --steps 300 --out "$OUT/heat_w64x2"
"${RUN[@]}" -p heat -o amstramgram anagram --steps 500 --out "$OUT/heat"
# laplace5d: the ANaGRAM net [5,64,1], equal steps for both optimizers
"${RUN[@]}" -p laplace5d -o amstramgram amstramgram:precision_start=1e-06 anagram --steps 300 --out "$OUT/laplace5d"

# the spectrum figure of docs/amstramgram.md (laplace2d_w64, seed 6865)
"$PY" - "$OUT" <<'PYEOF'
import glob, sys
from pinnbench.plot_spectrum import plot_spectrum
run = glob.glob(f"{sys.argv[1]}/laplace2d_w64/laplace2d_w64__amstramgram__s6865__*.npz")[0]
print(plot_spectrum(run, steps=[1, 40, 65, 80, 100], out=f"{sys.argv[1]}/amstramgram_laplace2d_spectrum"))
PYEOF
