#!/usr/bin/env bash
# Re-measure every number the README quotes, on the current machine (run from the repository root, venv active).
# Writes docs/measurements/*.txt and the committed quick-protocol report under docs/quick-report/.
set -euo pipefail
mkdir -p docs/measurements
# Issue 7: the performance probe at the paper sizes (2 threads, best of 7).
pinnbench bench --no-scaling > docs/measurements/probe.txt
# Issue 2: ANaGRAM on laplace2d with the paper protocol, seed 6865.
pinnbench run -p laplace2d -o anagram --protocol paper --seeds 6865 --out results/paper-laplace2d-anagram \
  --no-resume --no-report > docs/measurements/paper-laplace2d-anagram.txt
# Issue 6: the main job, every problem x every optimizer under the quick protocol, with its report.
start=$(date +%s)
pinnbench run --all --out results/quick --no-resume > docs/measurements/quick-all.txt
echo "wall time of 'pinnbench run --all': $(( $(date +%s) - start )) s" >> docs/measurements/quick-all.txt
rm -rf docs/quick-report && cp -r results/quick/report docs/quick-report
