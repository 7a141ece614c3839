#!/usr/bin/env bash
# The IWLS 2020 suite side by side, in one run on one machine: kiln bench-iwls (default options),
# a scikit-learn decision tree with its depth chosen on validation, and difflogic at the same AND
# budget; ABC's &mltest judges kiln's written .aig files. Results go to out/iwls/.
# Peers: python3 -m venv /tmp/peers && /tmp/peers/bin/pip install torch scikit-learn numpy
# (difflogic's source build needs CUDA; scripts/iwls_baselines.py documents the CPU workaround).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/iwls2020}
timeout=${TIMEOUT:-60}
py=${PY:-/tmp/peers/bin/python}
mkdir -p out/iwls
cargo build --release -p kiln-cli
lscpu | grep -E "Model name|^CPU\(s\)" | tee out/iwls/machine.txt
target/release/kiln bench-iwls "$data" --timeout "$timeout" --aig-dir out/iwls/aig --out out/iwls/kiln.md | tee out/iwls/kiln.txt
KILN=target/release/kiln scripts/iwls_mltest.sh out/iwls/aig "$data" | tee out/iwls/mltest.txt
"$py" scripts/iwls_baselines.py --method tree --data "$data" --out out/iwls/tree.md
"$py" scripts/iwls_baselines.py --method difflogic --data "$data" --timeout "${DL_TIMEOUT:-25}" --out out/iwls/difflogic.md
