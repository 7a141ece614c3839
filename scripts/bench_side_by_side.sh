#!/usr/bin/env bash
# Side-by-side benchmark: kiln (target/release/kiln-bench) vs the Python peers in /work/shared/bench,
# in the same run, with the same thread/pinning conventions as /work/shared/bench/run_all.sh:
#   1 thread  = framework set to 1 thread AND process pinned with `taskset -c $PIN_CPU` (default CPU 1)
#   2 threads = framework set to 2 threads, unpinned
# Every program prints lines "workload framework threads metric value" ('#' lines are notes).
# Raw lines go to $OUT/<run>.txt (stderr to <run>.err); the comparison table to $OUT/table.md and stdout.
#
# Usage: scripts/bench_side_by_side.sh [options] [w1 w2 ... w6]      (default workloads: w1 w2 w3)
#   --only-kiln        run kiln only (no peers); the table then shows peers only if --peers-from is given
#   --peers-from DIR   also read peer lines from DIR/*.txt (e.g. an earlier bench-out run); repeatable
#   --no-build         do not run `cargo build --release -p kiln-bench` first
#   --threads "1 2"    thread counts for the multi-threaded workloads w3..w6 (w1, w2 are 1-thread only)
#   -h | --help
# Environment:
#   PY        Python with torch/jax/numpy/scikit-learn   (default /tmp/peers/bin/python)
#   PEER_DIR  the peer benchmark folder                   (default /work/shared/bench)
#   PEERS     peer families to run: any of "torch jax numpy" (default "torch jax numpy")
#   KILN_BIN  kiln-bench binary                           (default target/release/kiln-bench)
#   OUT       output folder                               (default bench-out/<UTC date-time>)
#   PIN_CPU   CPU for 1-thread runs                       (default 1)
#   W3_SIZES  matrix sizes for w3, kiln and peers         (default: each program's own list)
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-/tmp/peers/bin/python}
PEER_DIR=${PEER_DIR:-/work/shared/bench}
PEERS=${PEERS:-torch jax numpy}
KILN_BIN=${KILN_BIN:-target/release/kiln-bench}
PIN_CPU=${PIN_CPU:-1}
OUT=${OUT:-bench-out/$(date -u +%Y%m%d-%H%M%S)}
ONLY_KILN=0
BUILD=1
THREADS="1 2"
PEERS_FROM=()
WORKLOADS=()

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --only-kiln) ONLY_KILN=1 ;;
    --no-build) BUILD=0 ;;
    --peers-from) shift; PEERS_FROM+=("${1:?--peers-from needs a folder}") ;;
    --peers-from=*) PEERS_FROM+=("${1#*=}") ;;
    --threads) shift; THREADS=${1:?--threads needs a list} ;;
    --threads=*) THREADS=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    w[1-6]) WORKLOADS+=("$1") ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(w1 w2 w3)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
KILN_ABS=$(cd "$(dirname "$KILN_BIN")" 2>/dev/null && pwd)/$(basename "$KILN_BIN")
PIN1="taskset -c $PIN_CPU"
if ! command -v taskset >/dev/null; then echo "# taskset not found: 1-thread runs are NOT pinned" >&2; PIN1=""; fi

{
  echo "date_utc $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kiln_rev $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '-dirty')"
  echo "host $(uname -srm), $(nproc) cpus, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "workloads ${WORKLOADS[*]}; threads $THREADS; peers ${PEERS}; only_kiln $ONLY_KILN"
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

FAILED=()
run() {  # run <name> <cmd...>: stdout -> $OUT/<name>.txt (and our stdout), stderr -> $OUT/<name>.err
  local name=$1; shift
  echo "# $(date -u +%H:%M:%S) $name: $*" >&2
  if ! "$@" 2> "$OUT/$name.err" | tee "$OUT/$name.txt"; then
    echo "# FAILED: $name (see $OUT/$name.err)" >&2
    FAILED+=("$name")
  fi
}
peer() {  # peer <family>: is this peer family selected?
  case " $PEERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}
threads_for() {  # w1/w2 are defined as 1-thread workloads
  case "$1" in w1|w2) echo 1 ;; *) echo "$THREADS" ;; esac
}
pin_for() { [ "$1" = 1 ] && echo "$PIN1"; }

# ------------------------------------------------------------------ kiln
if [ $BUILD = 1 ]; then
  echo "# cargo build --release -p kiln-bench" >&2
  cargo build --release -p kiln-bench >&2 || { echo "# cargo build failed" >&2; exit 1; }
fi
if [ ! -x "$KILN_ABS" ]; then
  echo "# kiln-bench binary not found at $KILN_BIN" >&2; exit 1
fi
# The physical limit first, in the same run: f32 FMA throughput from registers, per ISA the CPU
# has, at every thread count used below (`kiln-bench peak`). The table quotes GFLOP/s against it.
for t in 1 $THREADS; do
  [ -f "$OUT/peak_$t.txt" ] && continue
  run "peak_$t" $(pin_for "$t") "$KILN_ABS" peak --threads "$t"
done
grep -h '^# isa' "$OUT"/peak_*.txt 2>/dev/null | head -1 | sed 's/^# //' >> "$OUT/meta.txt"
for w in "${WORKLOADS[@]}"; do
  for t in $(threads_for "$w"); do
    ksizes=()
    [ "$w" = w3 ] && [ -n "${W3_SIZES:-}" ] && ksizes=(--sizes "$W3_SIZES")
    run "kiln_${w}_${t}" $(pin_for "$t") "$KILN_ABS" "$w" --threads "$t" "${ksizes[@]}"
  done
done

# ------------------------------------------------------------------ peers (same invocation as run_all.sh)
if [ $ONLY_KILN = 0 ]; then
  [ -x "$PY" ] || { echo "# PY=$PY is not executable (set PY or use --only-kiln)" >&2; exit 1; }
  [ -d "$PEER_DIR" ] || { echo "# PEER_DIR=$PEER_DIR not found" >&2; exit 1; }
  pushd "$PEER_DIR" >/dev/null
  for w in "${WORKLOADS[@]}"; do
    case "$w" in
      w1)
        if peer torch; then
          for fw in torch torch-raw; do run "${w}_$fw" $PIN1 "$PY" w1_xor.py --fw=$fw; done
          run "w1bce_torch" $PIN1 "$PY" w1_xor.py --fw=torch --loss=bce
        fi
        if peer jax; then
          run "${w}_jax" $PIN1 "$PY" w1_xor.py --fw=jax
          run "w1bce_jax" $PIN1 "$PY" w1_xor.py --fw=jax --loss=bce
        fi ;;
      w2)
        peer torch && run "${w}_torch" $PIN1 "$PY" w2_chain.py --fw=torch
        peer jax && run "${w}_jax-jit" $PIN1 "$PY" w2_chain.py --fw=jax-jit ;;
      w3)
        sizes=()
        [ -n "${W3_SIZES:-}" ] && sizes=(--sizes="$W3_SIZES")
        for fw in torch numpy jax; do
          peer "$fw" || continue
          for t in $(threads_for "$w"); do
            run "${w}_${fw}_$t" $(pin_for "$t") "$PY" w3_matmul.py --fw=$fw --threads=$t "${sizes[@]}"
          done
        done ;;
      w4|w5|w6)
        script=$(ls ${w}_*.py)
        for fw in torch jax; do
          peer "$fw" || continue
          for t in $(threads_for "$w"); do
            run "${w}_${fw}_$t" $(pin_for "$t") "$PY" "$script" --fw=$fw --threads=$t
          done
        done ;;
    esac
  done
  popd >/dev/null
fi

# ------------------------------------------------------------------ table
PEER_DIRS=("$OUT")
[ ${#PEERS_FROM[@]} -gt 0 ] && PEER_DIRS+=("${PEERS_FROM[@]}")
python3 - "$OUT" "${PEER_DIRS[@]}" <<'PYEOF' | tee "$OUT/table.md"
import glob, os, sys

out_dir, dirs = sys.argv[1], sys.argv[2:]
kiln, peers = {}, {}  # (workload, threads, metric) -> value ; peers: key -> {framework: value}
seen = set()
for d in dirs:
    for path in sorted(glob.glob(os.path.join(d, "*.txt"))):
        if os.path.basename(path) in ("meta.txt",) or os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        for line in open(path):
            parts = line.split()
            if not parts or parts[0].startswith("#") or len(parts) != 5:
                continue
            wl, fw, t, metric, val = parts
            try:
                v = float(val)
            except ValueError:
                continue
            key = (wl, t, metric)
            if fw == "kiln" or fw.startswith("kiln-"):
                if d == out_dir:  # kiln figures only from this run
                    kiln.setdefault(key, {})[fw] = v
            else:
                peers.setdefault(key, {}).setdefault(fw, v)  # first seen wins (this run before --peers-from)

def direction(metric):
    """+1: higher is better (ratio kiln/peer); -1: lower is better (ratio peer/kiln); 0: not a speed figure."""
    if metric.startswith("us_per_") or metric.startswith("ms_per_") or metric.startswith("s_per_"):
        return -1
    if metric.endswith("_per_s") or "_per_s_" in metric or metric == "gflops":
        return 1
    return 0

def fmt(v, digits=4):
    if digits > 4:
        return f"{v:.{digits}g}"
    if v == 0 or 1e-3 <= abs(v) < 1e6:
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:.4g}"

# The FMA peak measured in this run, per thread count: the best ISA's figure.
fma_peak = {}
for (wl, t, metric), fws in peers.items():
    if wl == "W3-peak" and metric == "gflops":
        fma_peak[t] = max(fma_peak.get(t, 0.0), max(fws.values()))
for line in open(os.path.join(out_dir, "meta.txt")):
    if line.startswith(("cpu ", "isa ")):
        print(f"- {line.strip()}")
for t in sorted(fma_peak, key=int):
    print(f"- f32 FMA peak measured in this run, {t} thread(s): {fma_peak[t]:.1f} GFLOP/s")
print()
print("| workload | T | metric | kiln | % of FMA peak | peer | peer value | ratio |")
print("|---|---:|---|---:|---:|---|---:|---:|")
nrows = 0
def natural(key):  # W3-matmul-64 before W3-matmul-256
    import re
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", "|".join(key))]

for key in sorted(set(kiln) | set(peers), key=natural):
    wl, t, metric = key
    dirn = direction(metric)
    kv = kiln.get(key, {})
    pv = peers.get(key, {})
    if not kv:
        continue  # peer-only figure
    for kfw, k in sorted(kv.items()):
        of_peak = f"{100 * k / fma_peak[t]:.1f} %" if metric == "gflops" and fma_peak.get(t) else "–"
        if not pv:
            print(f"| {wl} | {t} | {metric} | {fmt(k)} | {of_peak} | – | – | – |" if kfw == "kiln" else
                  f"| {wl} | {t} | {metric} ({kfw}) | {fmt(k)} | {of_peak} | – | – | – |")
            nrows += 1
        for pfw, p in sorted(pv.items()):
            if dirn > 0 and p > 0:
                r = f"{k / p:.2f}x"
            elif dirn < 0 and k > 0:
                r = f"{p / k:.2f}x"
            else:
                r = "(check)" if dirn == 0 else "–"
            name = metric if kfw == "kiln" else f"{metric} ({kfw})"
            dg = 4 if dirn else 6
            print(f"| {wl} | {t} | {name} | {fmt(k, dg)} | {of_peak} | {pfw} | {fmt(p, dg)} | {r} |")
            nrows += 1
print()
print("ratio > 1 means kiln is faster: throughput metrics (…_per_s, gflops) kiln/peer; time metrics "
      "(us_per_*, ms_per_*) peer/kiln. '(check)' rows are correctness figures (losses, accuracies, grads), "
      "compare the values. T = threads (1 = pinned).")
if nrows == 0:
    print("\n(no kiln figures found)")
PYEOF

echo "# raw lines and table in $OUT" >&2
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "# failed runs: ${FAILED[*]}" >&2
  exit 1
fi
