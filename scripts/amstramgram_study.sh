#!/usr/bin/env bash
# Re-run the AMStraMGRAM study of docs/amstramgram.md (paper point sets, seeds 6865 8369 4785, 1 thread) and
# print its table. Usage: scripts/amstramgram_study.sh [RESULTS_DIR]   (default results/amstramgram)
# Each block is resumable: runs already in the results folder are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/amstramgram}
PY=${PYTHON:-python}
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
RUN=("$PY" -m pinnbench run --protocol protocols/amstramgram-study.toml --plugin scripts/amstramgram_nets.py
     --no-report)

# laplace2d: the study net [2,64,1], and the ANaGRAM net [2,32,1], up to the paper protocol's 2001 steps
"${RUN[@]}" -p laplace2d_w64 -o amstramgram anagram --steps 2001 --out "$OUT/laplace2d_w64"
"${RUN[@]}" -p laplace2d -o amstramgram anagram --steps 2001 --out "$OUT/laplace2d"
# heat: the study net [2,64,64,1] up to 300 steps (ANaGRAM's cost on it), and the ANaGRAM net [2,64,1] up to 2001
"${RUN[@]}" -p heat_w64x2 -o amstramgram anagram --steps 300 --out "$OUT/heat_w64x2"
"${RUN[@]}" -p heat -o amstramgram anagram --steps 2001 --out "$OUT/heat"
# laplace5d: the ANaGRAM net [5,64,1], equal steps for both optimizers (amstramgram's laplace5d defaults): 300, and
# the paper protocol's 1001
"${RUN[@]}" -p laplace5d -o amstramgram anagram --steps 300 --out "$OUT/laplace5d"
"${RUN[@]}" -p laplace5d -o amstramgram anagram --steps 1001 --out "$OUT/laplace5d1001"

"$PY" scripts/amstramgram_table.py "$OUT"
# the spectrum figure of docs/amstramgram.md and the README (laplace2d_w64, seed 6865)
"$PY" -m pinnbench plot spectrum "$OUT"/laplace2d_w64/laplace2d_w64__amstramgram__s6865__*.npz \
    --steps 1 40 70 90 105 --out "$OUT/amstramgram_laplace2d_spectrum"
