#!/usr/bin/env bash
# Re-measure every number the README quotes, on the current machine (run from the repository root, venv active).
# THREADS=2 (default 1) and PROTOCOL_SUFFIX="" measure with two threads on a quiet machine; with one thread the
# numbers are robust to other load on the machine (the README says which was used).
# Writes docs/measurements/*.txt and the committed quick-protocol report under docs/quick-report/.
set -euo pipefail
threads=${THREADS:-1}
suffix=${PROTOCOL_SUFFIX--1thread}
mkdir -p docs/measurements
# Issue 7: the performance probe at the paper sizes.
clock=$([ "$threads" = 1 ] && echo cpu || echo wall)
pinnbench bench --no-scaling --threads "$threads" --clock "$clock" --repeat 3 -p laplace2d heat allen_cahn \
  > docs/measurements/probe.txt
# Issue 2: ANaGRAM on laplace2d with the paper protocol, seed 6865.
paper=$([ -n "$suffix" ] && echo "protocols/paper$suffix.toml" || echo paper)
pinnbench run -p laplace2d -o anagram --protocol "$paper" --seeds 6865 --out results/paper-laplace2d-anagram \
  --no-resume --no-report > docs/measurements/paper-laplace2d-anagram.txt
# Issues 6, 14: the main job, every problem x the six mission optimizers under quick (which pins one thread per
# run and runs one per core), with its report.
start=$(date +%s)
pinnbench run --all --out results/quick --no-resume > docs/measurements/quick-all.txt
echo "wall time of 'pinnbench run --all': $(( $(date +%s) - start )) s" >> docs/measurements/quick-all.txt
rm -rf docs/quick-report && cp -r results/quick/report docs/quick-report
# Issue 12: the AMStraMGRAM study (the amstramgram preset and the paper nets), its tables, report and figures.
bash scripts/amstramgram_study.sh results/amstramgram-study > docs/measurements/amstramgram-study.txt
rm -rf docs/amstramgram-report && cp -r results/amstramgram-study/report docs/amstramgram-report
for problem in allen_cahn burgers nonlinear_poisson; do
  pinnbench plot spectrum results/amstramgram-study/${problem}__amstramgram__s6865__*.npz \
    --out docs/figures/amstramgram-$problem-spectrum
done
pinnbench plot spectrum "results/amstramgram-study/laplace2d_net=2-32-32-1___amstramgram__s6865__"*.npz \
  --out docs/figures/amstramgram_laplace2d_spectrum
