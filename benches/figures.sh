#!/usr/bin/env bash
# The commands users run, at fleet scale: wall time and peak memory (GNU time), beside the
# untraced `kmsim bench` of the same scenario. Prints a Markdown table for the README.
#
#   benches/figures.sh            # fleet-1k, fleet-10k, group-10k and fleet-group-10k, medians of $REPEAT (3) runs
#   BIG=1 benches/figures.sh      # also fleet-100k --report and fleet-1m run (minutes, ~20 GB of trace)
#
# Runs are alternated and take the whole machine: run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
K=target/release/kmsim
REPEAT=${REPEAT:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# One run: "seconds peak-KiB".
once() {
    /usr/bin/time -f "%e %M" -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
    cat "$OUT/time"
}

# The median of $REPEAT runs of each command given (as strings), alternated: "s KiB" each.
declare -A SECS MEM
measure() {
    local -a names=("$@")
    declare -A all
    for ((i = 0; i < REPEAT; i++)); do
        for n in "${names[@]}"; do
            rm -rf "$OUT/report"
            all[$n]+="$(once ${CMD[$n]})"$'\n'
        done
    done
    for n in "${names[@]}"; do
        SECS[$n]=$(printf '%s' "${all[$n]}" | awk '{print $1}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        MEM[$n]=$(printf '%s' "${all[$n]}" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    done
}

declare -A CMD
S=scenarios/bench
# fleet-10k with its deletion at day 3 and reimport at day 5 and no expectations, so that one
# estate runs over horizons of 7, 30 and 60 days: the events grow, the memory must not.
EARLY="$OUT/fleet-10k-early.ron"
sed -e 's/At("30d", Delete/At("3d", Delete/' -e 's/At("32d", Import/At("5d", Import/' "$S/fleet-10k.ron" |
    awk '/^    expect: \[/ {skip = 1} !skip {print} skip && /^    \],/ {skip = 0}' >"$EARLY"

CMD[bench1k]="$K bench $S/fleet-1k.ron"
CMD[check1k]="$K check $S/fleet-1k.ron"
CMD[bench10k]="$K bench $S/fleet-10k.ron"
CMD[run10k]="$K run $S/fleet-10k.ron --quiet"
CMD[report10k]="$K run $S/fleet-10k.ron --quiet --report $OUT/report"
CMD[h7]="$K run $EARLY --quiet --horizon 7d"
CMD[h30]="$K run $EARLY --quiet --horizon 30d"
CMD[h60]="$K run $EARLY --quiet --horizon 60d"
CMD[benchg10k]="$K bench $S/group-10k.ron"
CMD[rung10k]="$K run $S/group-10k.ron --quiet"
CMD[benchfg10k]="$K bench $S/fleet-group-10k.ron"
CMD[runfg10k]="$K run $S/fleet-group-10k.ron --quiet"
measure bench1k check1k bench10k run10k report10k h7 h30 h60 benchg10k rung10k benchfg10k runfg10k

mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", a / b}'; }
echo "| command | wall time (s) | peak memory | / untraced bench |"
echo "|---|---|---|---|"
row() { echo "| \`$1\` | ${SECS[$2]} | $(mib "${MEM[$2]}") | ${3:-} |"; }
row "kmsim bench fleet-1k.ron" bench1k
row "kmsim check fleet-1k.ron" check1k "$(ratio "${SECS[check1k]}" "${SECS[bench1k]}")"
row "kmsim bench fleet-10k.ron" bench10k
row "kmsim run fleet-10k.ron --quiet" run10k "$(ratio "${SECS[run10k]}" "${SECS[bench10k]}")"
row "kmsim run fleet-10k.ron --report DIR" report10k "$(ratio "${SECS[report10k]}" "${SECS[bench10k]}")"
row "kmsim run fleet-10k, deletion at 3d, --quiet --horizon 7d" h7
row "kmsim run fleet-10k, deletion at 3d, --quiet --horizon 30d" h30
row "kmsim run fleet-10k, deletion at 3d, --quiet --horizon 60d" h60
row "kmsim bench group-10k.ron" benchg10k
row "kmsim run group-10k.ron --quiet" rung10k "$(ratio "${SECS[rung10k]}" "${SECS[benchg10k]}")"
row "kmsim bench fleet-group-10k.ron" benchfg10k
row "kmsim run fleet-group-10k.ron --quiet" runfg10k "$(ratio "${SECS[runfg10k]}" "${SECS[benchfg10k]}")"

if [[ -n "${BIG:-}" ]]; then
    REPEAT=1
    CMD[report100k]="$K run $S/fleet-100k.ron --quiet --report $OUT/report"
    CMD[run1m]="$K run $S/fleet-1m.ron --quiet"
    CMD[full1m]="$K run $S/fleet-1m.ron"
    CMD[bench1m]="$K bench $S/fleet-1m.ron"
    measure report100k run1m full1m bench1m
    row "kmsim run fleet-100k.ron --report DIR" report100k
    row "kmsim bench fleet-1m.ron" bench1m
    row "kmsim run fleet-1m.ron --quiet" run1m "$(ratio "${SECS[run1m]}" "${SECS[bench1m]}")"
    row "kmsim run fleet-1m.ron" full1m "$(ratio "${SECS[full1m]}" "${SECS[bench1m]}")"
fi
