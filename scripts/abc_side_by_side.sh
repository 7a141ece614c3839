#!/usr/bin/env bash
# kiln learn vs ABC on the 29 standard functions of issue #9, mapped onto the same gate library
# with the same counting, printed as one markdown table.
#
#   scripts/abc_side_by_side.sh OUTDIR [--seeds "0 1 2"] [--timeout SECS] [--deepsyn SECS]
#                                      [--only "name1 name2"] [--restart-seeds "0"] [--no-restart-stats]
#                                      [--skip-abc] [--skip-kiln]
#
# * Tables: `cargo run --release -p kiln-logic --example write_suite -- OUTDIR/suite` writes one
#   CSV per function for kiln and the complete function as a PLA for ABC (a function with
#   don't-cares gets two PLAs, don't-cares 0 and don't-cares 1, and ABC keeps the better).
# * Library: kiln's ten two-input gates (AND, OR, XOR, NAND, NOR, XNOR and the four inhibit /
#   implication gates, i.e. andn/orn with either pin order) plus an inverter, a buffer and the two
#   constants, every one of area 1, so ABC's mapped area is a gate count that counts inverters as
#   kiln counts NOT.
# * ABC: `read_pla; strash`, then each of `resyn2`, `dc2; compress2rs; dch` and
#   `&get -n; &deepsyn -T S; &put`, then `map -a`; the area comes from print_stats and every
#   mapped network is checked with `cec` against the PLA it was read from. The best verified
#   area wins; the time reported is the sum of the three flows (what "best of three" costs).
# * kiln: `kiln learn T.csv --outputs ... --json --seed S` (default options otherwise; --timeout
#   only when given) for every seed. The circuit in the JSON is turned into BLIF by this script
#   (not by kiln's emitter) and checked by ABC: `cec` against the PLA when the table is complete,
#   and for every table a miter against the table's care rows (`sat` must say UNSATISFIABLE).
#   A circuit that fails either check is not counted.
# * Restart statistics (item 3): for every function of <= 5 inputs, `kiln learn --no-repair
#   --no-optimise --restarts 10 --json` for each seed (resynthesis would not change which
#   restarts were exact, only take time); kiln stops at the first exact restart, so
#   exact_restarts / restarts is the success rate of the restarts that ran.
#
# Output: OUTDIR/table.md (the table and summary, also printed), OUTDIR/abc.tsv, OUTDIR/kiln.tsv,
# OUTDIR/restarts.tsv, and the JSON / BLIF / logs of every run under OUTDIR/{abc,kiln}.
# Environment: KILN (a kiln binary; default: build it with cargo), CARGO_TARGET_DIR, ABC (binary).
set -euo pipefail

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
OUT=$1
shift
SEEDS="0 1 2"
TIMEOUT=""
DEEPSYN=10
ONLY=""
RESTART_STATS=1
RESTART_SEEDS=""
RUN_ABC=1
RUN_KILN=1
while [ $# -gt 0 ]; do
    case $1 in
        --seeds) SEEDS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --deepsyn) DEEPSYN=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-restart-stats) RESTART_STATS=0; shift ;;
        --restart-seeds) RESTART_SEEDS=$2; shift 2 ;;
        --skip-abc) RUN_ABC=0; shift ;;
        --skip-kiln) RUN_KILN=0; shift ;;
        -h|--help) usage ;;
        *) echo "abc_side_by_side.sh: unknown option $1" >&2; usage ;;
    esac
done
RESTART_SEEDS=${RESTART_SEEDS:-$SEEDS}

ABC=${ABC:-}
if [ -z "$ABC" ]; then
    for cand in berkeley-abc abc; do
        if command -v "$cand" >/dev/null 2>&1; then ABC=$(command -v "$cand"); break; fi
    done
fi
if [ -z "$ABC" ] || [ ! -x "$ABC" ]; then
    echo "abc_side_by_side.sh: ABC not found: install Debian's berkeley-abc (apt-get install berkeley-abc) or set ABC=/path/to/abc" >&2
    exit 1
fi
command -v jq >/dev/null 2>&1 || { echo "abc_side_by_side.sh: jq is needed to read kiln's JSON" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${KILN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p kiln-cli)
    KILN=$TARGET/release/kiln
fi
(cd "$ROOT" && cargo run --release -q -p kiln-logic --example write_suite -- "$OUT/suite") >&2

mkdir -p "$OUT/abc" "$OUT/kiln" "$OUT/restarts"
cat >"$OUT/abc/gates.genlib" <<'EOF'
GATE zero 1 O=CONST0;
GATE one 1 O=CONST1;
GATE buf 1 O=a; PIN * NONINV 1 999 1 0 1 0
GATE inv 1 O=!a; PIN * INV 1 999 1 0 1 0
GATE and2 1 O=a*b; PIN * NONINV 1 999 1 0 1 0
GATE or2 1 O=a+b; PIN * NONINV 1 999 1 0 1 0
GATE nand2 1 O=!(a*b); PIN * INV 1 999 1 0 1 0
GATE nor2 1 O=!(a+b); PIN * INV 1 999 1 0 1 0
GATE xor2 1 O=a*!b+!a*b; PIN * UNKNOWN 1 999 1 0 1 0
GATE xnor2 1 O=a*b+!a*!b; PIN * UNKNOWN 1 999 1 0 1 0
GATE andn 1 O=a*!b; PIN * UNKNOWN 1 999 1 0 1 0
GATE orn 1 O=a+!b; PIN * UNKNOWN 1 999 1 0 1 0
EOF
# ABC's standard aliases (from the abc.rc its sources ship); &deepsyn itself calls compress2rs,
# so ABC must run in this folder.
cat >"$OUT/abc/abc.rc" <<'EOF'
alias b balance
alias rw rewrite
alias rwz "rewrite -z"
alias rf refactor
alias rfz "refactor -z"
alias rs resub
alias resyn2 "b; rw; rf; b; rw; rwz; b; rfz; rwz; b"
alias compress2rs "b -l; rs -K 6 -l; rw -l; rs -K 6 -N 2 -l; rf -l; rs -K 8 -l; b -l; rs -K 8 -N 2 -l; rw -l; rs -K 10 -l; rwz -l; rs -K 10 -N 2 -l; b -l; rs -K 12 -l; rfz -l; rs -K 12 -N 2 -l; rwz -l; b -l"
EOF
FLOW_NAMES=(resyn2 dch deepsyn)
FLOWS=("resyn2" "dc2; compress2rs; dch" "&get -n; &deepsyn -T $DEEPSYN; &put")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# run_abc NAME PLA FLOW_INDEX -> prints "area seconds verified"
run_abc() {
    local name=$1 pla=$2 k=$3 base log t0 secs area ok
    base="$OUT/abc/${pla%.pla}.${FLOW_NAMES[$k]}"
    log="$base.log"
    t0=$(now)
    (cd "$OUT/abc" && timeout 600 "$ABC" -c "read_library gates.genlib; read_pla ../suite/$pla; strash; ${FLOWS[$k]}; map -a; print_stats; print_gates; cec ../suite/$pla; write_blif $base.blif") >"$log" 2>&1 || true
    secs=$(elapsed "$t0")
    area=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n 's/.* area *= *\([0-9.]*\).*/\1/p' | tail -n 1 | awk '{ printf "%d", $1 + 0.5 }')
    [ -n "$area" ] || area=-
    if grep -q "Networks are equivalent" "$log"; then ok=yes; else ok=no; fi
    echo "$area $secs $ok"
}

# to_blif JSON INPUTS OUTPUTS -> BLIF of kiln's circuit on stdout (gates renamed k_<name>)
to_blif() {
    jq -r --arg ins "$2" --arg outs "$3" '
      ($ins | split(",")) as $inputs
      | (.program.gates | map(.name)) as $gates
      | def sig($s): if ($gates | index($s)) != null then "k_" + $s else $s end;
        def cover(op): {
          "AND": ["11 1"], "OR": ["1- 1", "-1 1"], "XOR": ["10 1", "01 1"],
          "NAND": ["0- 1", "-0 1"], "NOR": ["00 1"], "XNOR": ["11 1", "00 1"],
          "IMPLIES": ["0- 1", "-1 1"], "NIMPLIES": ["10 1"], "NOT": ["0 1"], "BUF": ["1 1"],
          "CONST0": [], "CONST1": ["1"] }[op] // error("unknown op " + op);
      ".model kiln", ".inputs " + ($inputs | join(" ")), ".outputs " + ($outs | split(",") | join(" ")),
      (.program.gates[] | ".names " + ([.args[] | sig(.)] + ["k_" + .name] | join(" ")), cover(.op)[]),
      (.program.outputs | to_entries[]
        | if .value == "0" or .value == "false" then ".names " + .key
          elif .value == "1" or .value == "true" then ".names " + .key, "1"
          else ".names " + sig(.value) + " " + .key, "1 1" end),
      ".end"' "$1"
}

# verify_kiln NAME BLIF INPUTS PLAS -> "yes" or "no (why)"
verify_kiln() {
    local name=$1 blif=$2 ins=$3 plas=$4 miter log
    miter=${blif%.blif}.miter.blif
    {
        echo ".model miter"
        echo ".inputs ${ins//,/ }"
        echo ".outputs kiln_check_bad"
        sed -n '/^\.outputs/,/^\.end/p' "$blif" | sed '1d;$d'
        cat "$OUT/suite/$name.care.names"
        echo ".end"
    } >"$miter"
    log=${blif%.blif}.verify.log
    (cd "$OUT/abc" && timeout 600 "$ABC" -c "read_blif $miter; strash; sat -v" ) >"$log" 2>&1 || true
    if ! grep -q "UNSATISFIABLE" "$log"; then
        echo "no (care-row miter)"
        return
    fi
    case $plas in
        *,*) ;;  # don't-cares: the miter is the check
        *)
            (cd "$OUT/abc" && timeout 600 "$ABC" -c "cec $blif ../suite/$plas") >>"$log" 2>&1 || true
            if ! grep -q "Networks are equivalent" "$log"; then
                echo "no (cec)"
                return
            fi
            ;;
    esac
    echo yes
}

printf 'name\tinputs\toutputs\tbest_area\tbest_flow\tbest_verified\tflow_areas\tseconds_total\n' >"$OUT/abc.tsv"
printf 'name\tseed\tgates\tprogram_gates\texact\tverified\twall_seconds\tlearn_seconds\trestarts\texact_restarts\trepaired_gates\n' >"$OUT/kiln.tsv"
printf 'name\tinputs\tseed\trestarts\texact_restarts\texact\tseconds\n' >"$OUT/restarts.tsv"

TIMEOUT_ARGS=()
[ -n "$TIMEOUT" ] && TIMEOUT_ARGS=(--timeout "$TIMEOUT")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/load.txt"

while IFS=$'\t' read -r name n m ins outs plas; do
    if [ -n "$ONLY" ] && ! [[ " $ONLY " == *" $name "* ]]; then continue; fi
    echo "== $name ($n inputs, $m outputs)" >&2
    # ABC: every flow on every PLA (fillings of don't-cares), best verified area.
    best=- best_flow=- total=0 areas=()
    [ "$RUN_ABC" = 1 ] || plas=""
    for pla in ${plas//,/ }; do
        for k in 0 1 2; do
            read -r area secs ok < <(run_abc "$name" "$pla" "$k")
            total=$(awk -v a="$total" -v b="$secs" 'BEGIN { printf "%.2f", a + b }')
            label=${FLOW_NAMES[$k]}
            [ "$pla" = "$name.pla" ] || label="$label/${pla#"$name".}"
            label=${label%.pla}
            areas+=("$label=$area$([ "$ok" = yes ] || echo '(cec failed)')")
            if [ "$ok" = yes ] && [ "$area" != - ] && { [ "$best" = - ] || [ "$area" -lt "$best" ]; }; then
                best=$area best_flow=$label
            fi
        done
    done
    [ "$RUN_ABC" = 1 ] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$m" "$best" "$best_flow" \
        "$([ "$best" = - ] && echo no || echo yes)" "$(IFS=' '; echo "${areas[*]}")" "$total" >>"$OUT/abc.tsv"
    [ "$RUN_ABC" = 1 ] && echo "   ABC best $best ($best_flow), ${total} s: ${areas[*]}" >&2

    # kiln: default options, one run per seed.
    kiln_seeds=$SEEDS
    [ "$RUN_KILN" = 1 ] || kiln_seeds=""
    for seed in $kiln_seeds; do
        json="$OUT/kiln/$name.s$seed.json"
        t0=$(now)
        "$KILN" learn "$OUT/suite/$name.csv" --outputs "$outs" --seed "$seed" --json "${TIMEOUT_ARGS[@]}" \
            >"$json" 2>"$OUT/kiln/$name.s$seed.err" || true
        wall=$(elapsed "$t0")
        if ! jq -e .gates "$json" >/dev/null 2>&1; then
            printf '%s\t%s\t-\t-\tfalse\tno (no JSON)\t%s\t-\t-\t-\t-\n' "$name" "$seed" "$wall" >>"$OUT/kiln.tsv"
            echo "   kiln seed $seed: no JSON (see $OUT/kiln/$name.s$seed.err)" >&2
            continue
        fi
        blif="$OUT/kiln/$name.s$seed.blif"
        to_blif "$json" "$ins" "$outs" >"$blif"
        verified=$(verify_kiln "$name" "$blif" "$ins" "$plas")
        read -r gates pgates exact lsecs restarts xr rep < <(jq -r '[.gates, (.program.gates | length), .exact, .seconds, .restarts, .exact_restarts, .repaired_gates] | map(tostring) | join(" ")' "$json")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seed" "$gates" "$pgates" "$exact" "$verified" "$wall" "$lsecs" "$restarts" "$xr" "$rep" >>"$OUT/kiln.tsv"
        echo "   kiln seed $seed: $gates gates, exact $exact, verified $verified, ${wall} s" >&2
    done

    # Restart statistics without repair (item 3), functions of <= 5 inputs.
    if [ "$RESTART_STATS" = 1 ] && [ "$n" -le 5 ]; then
        for seed in $RESTART_SEEDS; do
            json="$OUT/restarts/$name.s$seed.json"
            t0=$(now)
            "$KILN" learn "$OUT/suite/$name.csv" --outputs "$outs" --seed "$seed" --json --no-repair --no-optimise --restarts 10 \
                >"$json" 2>"$OUT/restarts/$name.s$seed.err" || true
            wall=$(elapsed "$t0")
            if jq -e .restarts "$json" >/dev/null 2>&1; then
                printf '%s\t%s\t%s\t%s\n' "$name" "$n" "$seed" "$(jq -r '[.restarts, .exact_restarts, .exact] | map(tostring) | join("\t")' "$json")	$wall" >>"$OUT/restarts.tsv"
            fi
        done
    fi
done <"$OUT/suite/suite.tsv"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"

# One markdown table from the TSVs.
awk -F'\t' -v seeds="$SEEDS" '
    function fmt(x) { return sprintf("%.1f", x) }
    FNR == 1 { next }
    FILENAME ~ /abc.tsv$/ {
        order[++count] = $1; nin[$1] = $2; nout[$1] = $3; abc[$1] = $4; flow[$1] = $5; abcs[$1] = $8; next
    }
    FILENAME ~ /kiln.tsv$/ {
        name = $1; seed = $2
        ok = ($6 == "yes" && $5 == "true")
        ksum[name] += $7
        if (seed == first_seed) { s0[name] = ok ? $3 : "-"; s0t[name] = $7 }
        if (ok && (!(name in kb) || $3 + 0 < kb[name] + 0)) kb[name] = $3
        if (!ok) bad[name] = bad[name] " s" seed ":" $6
        next
    }
    BEGIN { split(seeds, sd, " "); first_seed = sd[1]; nseeds = length(sd) }
    END {
        if (count == 0) exit
        printf "| function | in | out | ABC best (flow) | ABC s | kiln seed %s | kiln s (seed %s) | kiln best of %d seeds | kiln s (all seeds) | best/ABC | verified |\n", first_seed, first_seed, nseeds
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for (i = 1; i <= count; i++) {
            n = order[i]; b = (n in kb) ? kb[n] : "-"
            ratio = (b != "-" && abc[n] != "-") ? sprintf("%.2f", b / abc[n]) : "-"
            v = (n in bad) ? "failed:" bad[n] : "all seeds"
            printf "| %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n", n, nin[n], nout[n], abc[n], flow[n], abcs[n], s0[n], s0t[n], b, fmt(ksum[n]), ratio, v
            if (b != "-" && abc[n] != "-") { le += (b <= abc[n]); lt += (b < abc[n]); gt += (b > abc[n]); tot_k += b; tot_a += abc[n]; fast += (ksum[n] <= abcs[n] || ksum[n] <= 60 * nseeds) }
            if (s0[n] != "-" && abc[n] != "-") { le0 += (s0[n] <= abc[n]); lt0 += (s0[n] < abc[n]); fast0 += (s0t[n] <= abcs[n] || s0t[n] <= 60) }
            if (b == "-") missing++
        }
        printf "\n- kiln best of %d seeds <= ABC on %d of %d functions (%.0f %%, target >= 90 %%); < ABC on %d (%.0f %%, target >= 25 %%); > ABC on %d; gates in all %d vs %d.\n", nseeds, le, count, 100 * le / count, lt, 100 * lt / count, gt, tot_k, tot_a
        printf "- kiln seed %s alone <= ABC on %d of %d (%.0f %%), < ABC on %d (%.0f %%).\n", first_seed, le0, count, 100 * le0 / count, lt0, 100 * lt0 / count
        printf "- time: seed %s within ABC time or 60 s on %d of %d; all %d seeds together within ABC time or %d s on %d.\n", first_seed, fast0, count, nseeds, 60 * nseeds, fast
        if (missing) printf "- no verified exact kiln circuit on %d functions.\n", missing
    }' "$OUT/abc.tsv" "$OUT/kiln.tsv" >"$OUT/table.md"

if [ "$RESTART_STATS" = 1 ]; then
    awk -F'\t' 'FNR == 1 { next }
        { r[$1] += $4; x[$1] += $5; if (!($1 in seen)) { seen[$1] = 1; order[++c] = $1 } R += $4; X += $5 }
        END {
            if (R == 0) exit
            print "\nRestarts without repair (`--no-repair --restarts 10`, stops at the first exact restart), functions of <= 5 inputs:\n"
            print "| function | restarts | exact | rate |"
            print "|---|---:|---:|---:|"
            for (i = 1; i <= c; i++) { n = order[i]; printf "| %s | %d | %d | %.0f %% |\n", n, r[n], x[n], 100 * x[n] / r[n]; if (x[n] > 0) hit++ }
            printf "\n- overall %d of %d restarts exact (%.1f %%, target >= 60 %%); %d of %d functions had an exact restart.\n", X, R, 100 * X / R, hit, c
        }' "$OUT/restarts.tsv" >>"$OUT/table.md"
fi
cat "$OUT/load.txt" >>"$OUT/table.md"
cat "$OUT/table.md"
