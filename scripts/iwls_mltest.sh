#!/usr/bin/env bash
# Check IWLS 2020 AIGs with ABC: AND count (&ps) and validation accuracy (&mltest).
# Usage: scripts/iwls_mltest.sh DIR_OF_AIGS DATA_DIR
#   DIR_OF_AIGS holds exNN.aig; DATA_DIR holds exNN.valid.pla(.gz).
# ABC's &mltest reads plain text, so .pla.gz files are decompressed to a temp dir.
# Env: ABC (default berkeley-abc, else abc), KILN (optional: also run `$KILN eval --json`).
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 DIR_OF_AIGS DATA_DIR" >&2; exit 2; fi
dir=$1; data=$2
abc=${ABC:-$(command -v berkeley-abc || command -v abc || true)}
[ -n "$abc" ] || { echo "ABC not found (set ABC=...)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
files=("$dir"/ex*.aig)
[ ${#files[@]} -gt 0 ] || { echo "no exNN.aig in $dir" >&2; exit 1; }
if [ -n "${KILN:-}" ]; then
  printf '%-6s %9s %10s %12s %10s\n' name abc_ands abc_valid% kiln_valid% kiln_ands
else
  printf '%-6s %9s %10s\n' name abc_ands abc_valid%
fi
n=0; sum=0; sum_ands=0
for f in "${files[@]}"; do
  name=$(basename "$f" .aig)
  if [ -f "$data/$name.valid.pla" ]; then pla="$data/$name.valid.pla"
  elif [ -f "$data/$name.valid.pla.gz" ]; then pla="$tmp/$name.valid.pla"; gzip -dc "$data/$name.valid.pla.gz" > "$pla"
  else echo "$name: no $data/$name.valid.pla(.gz)" >&2; continue; fi
  out=$("$abc" -c "&r $f; &ps; &mltest $pla" 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
  ands=$(sed -n 's/.*and = *\([0-9]*\).*/\1/p' <<<"$out" | head -1)
  # "Total =   6400.  Errors =    172.  Correct =   6228.  ( 97.31 %)"
  read -r total errs corr < <(sed -n 's/.*Total = *\([0-9]*\)\. *Errors = *\([0-9]*\)\. *Correct = *\([0-9]*\)\..*/\1 \2 \3/p' <<<"$out" | head -1) || true
  if [ -z "${ands:-}" ] || [ -z "${total:-}" ]; then
    echo "$name: could not parse ABC output:" >&2; echo "$out" >&2; continue
  fi
  acc=$(awk -v c="$corr" -v t="$total" 'BEGIN{printf "%.2f", 100*c/t}')
  if [ -n "${KILN:-}" ]; then
    kj=$("$KILN" eval "$f" "$pla" --json 2>/dev/null || echo '{}')
    kacc=$(sed -n 's/.*"accuracy":\([0-9.eE-]*\).*/\1/p' <<<"$kj")
    kand=$(sed -n 's/.*"and_nodes":\([0-9]*\).*/\1/p' <<<"$kj")
    kacc=$(awk -v a="${kacc:-nan}" 'BEGIN{ if (a=="nan") print "?"; else printf "%.2f", 100*a}')
    printf '%-6s %9s %10s %12s %10s\n' "$name" "$ands" "$acc" "$kacc" "${kand:-?}"
  else
    printf '%-6s %9s %10s\n' "$name" "$ands" "$acc"
  fi
  n=$((n+1)); sum_ands=$((sum_ands+ands)); sum=$(awk -v s="$sum" -v a="$acc" 'BEGIN{print s+a}')
done
[ $n -gt 0 ] && awk -v s="$sum" -v n="$n" -v a="$sum_ands" 'BEGIN{printf "%-6s %9.0f %10.2f   (%d functions, mean)\n", "avg", a/n, s/n, n}'
