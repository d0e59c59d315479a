#!/usr/bin/env bash
# Server CPU per SET and GET of big values, Citadel against Redis in one run
# (issue 17: a 256 KiB SET cost Citadel 2-4x Redis's server CPU).
#
# Each server runs pinned to core 0 (citadel --threads 1, cache file in
# /dev/shm, 256 MiB; redis --save '' --appendonly no), redis-benchmark pinned
# to core 1. Before measuring, 384 MiB of 1 MiB SETs warm each server up: a
# fresh tmpfs file allocates (zeroes) each page on first touch, once per lap
# of the file, as an allocator's first use of its memory does; the table is
# the steady state. For each value size (-d) and connection count (-c), SET then GET
# over a keyspace of 64 keys (-r 64: every GET hits after the SETs; Redis's
# memory stays bounded), reading the server's utime+stime from
# /proc/<pid>/stat around each client run. Every server is measured in every
# round, the order rotating between rounds. Prints a markdown table of
# medians: CPU µs per op, p99, and Citadel/Redis ratios.
#
# Usage: benches/big-values.sh [ROUNDS]
# Env:   SIZES    value sizes in bytes (default "4096 65536 262144 1048576")
#        CONNS    connection counts (default "1 4")
#        MB       megabytes of values each client run moves (default 512:
#                 131072 ops of 4 KiB, 512 ops of 1 MiB)
#        SERVERS  name=binary pairs (default "citadel=target/release/citadel
#                 redis=redis-server"; a binary named redis-server runs as Redis)
#        OUT      result directory (default target/big-values)
set -euo pipefail

rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/big-values}
sizes=${SIZES:-"4096 65536 262144 1048576"}
conns=${CONNS:-"1 4"}
mb=${MB:-512}
servers=${SERVERS:-"citadel=$target/release/citadel redis=redis-server"}
mkdir -p "$out"
: >"$out/samples.tsv"
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }

# shellcheck source=benches/cpu-bench-lib.sh
source "$root/benches/cpu-bench-lib.sh"
bench_scratch citadel-big-values

measure() { # name binary round
    local name=$1 bin=$2 round=$3 port
    port=$(free_port)
    start_pinned "$name" "$bin" "$port"
    taskset -c 1 redis-benchmark -p "$port" -c 4 -n 384 -r 64 -d 1048576 -t set -q >/dev/null 2>&1
    for d in $sizes; do
        local n=$(( mb * 1048576 / d ))
        for c in $conns; do
            for op in set get; do
                local before after res us
                before=$(cpu_ticks "$pid")
                res=$(taskset -c 1 redis-benchmark -p "$port" -c "$c" -n "$n" -r 64 -d "$d" -t "$op" --csv 2>/dev/null |
                    awk -F, 'NR==2 {gsub(/"/,""); print $2, $7 * 1000}')
                after=$(cpu_ticks "$pid")
                # clock ticks (100 Hz) -> microseconds per op
                us=$(echo "$before $after" | awk -v n="$n" '{printf "%.2f\n", ($3 + $4 - $1 - $2) * 10000 / n}')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$d" "$c" "$op" "$name" "$us" "$res" >>"$out/samples.tsv"
                echo "round $round -d $d -c $c $op $name: $us us/op (ops/s p99_us: $res)" >&2
            done
        done
    done
    stop_pinned
}

every_round "$rounds" measure

python3 - "$out/samples.tsv" "$servers" "$rounds" "$mb" <<'PY' | tee "$out/table.md"
import sys, statistics as st
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    rnd, d, c, op, name, us, ops, p99 = line.split()
    rows[(int(d), int(c), op, name)].append((float(us), float(ops), float(p99)))
names = [e.split("=", 1)[0] for e in sys.argv[2].split()]
ref = "redis" if "redis" in names else names[-1]
others = [n for n in names if n != ref]
print("| value | -c | op | " + " | ".join(f"{n} CPU µs/op" for n in names) + " | "
      + " | ".join(f"{n} p99 µs" for n in names) + " | "
      + " | ".join(f"{n}/{ref} CPU | {n}/{ref} p99" for n in others) + " |")
print("|---:|---:|---|" + "---:|" * (2 * len(names) + 2 * len(others)))
for d, c, op in sorted({k[:3] for k in rows}, key=lambda k: (k[0], k[1], k[2] == "get")):
    med = {n: tuple(st.median(x[i] for x in rows[(d, c, op, n)]) for i in range(3))
           for n in names if (d, c, op, n) in rows}
    size = f"{d // 1048576} MiB" if d >= 1048576 else f"{d // 1024} KiB"
    cells = [f"{med[n][0]:.1f}" if n in med else "" for n in names]
    cells += [f"{med[n][2]:.0f}" if n in med else "" for n in names]
    for n in others:
        if n in med and ref in med and med[ref][0] and med[ref][2]:
            cells += [f"**{med[n][0] / med[ref][0]:.2f}x**", f"{med[n][2] / med[ref][2]:.2f}x"]
        else:
            cells += ["", ""]
    print(f"| {size} | {c} | {op.upper()} | " + " | ".join(cells) + " |")
print()
print(f"Medians of {sys.argv[3]} rounds; {sys.argv[4]} MiB of values per client run, 64 keys; "
      "server CPU = utime+stime from /proc/<pid>/stat (10 ms ticks).")
PY
