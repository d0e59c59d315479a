#!/usr/bin/env bash
# What two CPUs of this machine give when both are busy: a plain C loop
# (dependent loads in 1 MiB and multiplies, like a server's mix) alone on
# core 0, then on cores 0 and 1 at once, in work per CPU second of each
# copy. Two real cores give ~1.0; two SMT siblings (or a host that shares
# a physical core between the vCPUs) give less, and no server can scale
# past that (benches/script-scaling.sh's x2 rows show it for servers).
#
# Usage: benches/vcpu-pair.sh [ROUNDS] [SECONDS]   (defaults 5, 2); needs cc.
set -euo pipefail

rounds=${1:-5}
secs=${2:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/loop.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv) {
    size_t n = 1 << 17;
    uint64_t *a = malloc(n * 8), x = 1, iters = 0;
    for (size_t i = 0; i < n; i++) a[i] = i * 0x9E3779B97F4A7C15ull;
    double secs = atof(argv[1]), c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
    while (now(CLOCK_MONOTONIC) - w0 < secs) {
        for (int k = 0; k < 100000; k++) {
            x ^= a[x & (n - 1)];
            x *= 0x2545F4914F6CDD1Dull;
            x ^= x >> 29;
        }
        iters += 100000;
    }
    printf("%.2f %lu\n", iters / (now(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e6, (unsigned long)(x & 1));
    return 0;
}
EOF
cc -O2 -o "$dir/loop" "$dir/loop.c"
ratios=()
for round in $(seq "$rounds"); do
    solo=$(taskset -c 0 "$dir/loop" "$secs" | cut -d' ' -f1)
    taskset -c 0 "$dir/loop" "$secs" >"$dir/a" &
    taskset -c 1 "$dir/loop" "$secs" >"$dir/b"
    wait
    for f in a b; do
        ratios+=("$(echo "scale=3; $(cut -d' ' -f1 "$dir/$f") / $solo" | bc)")
    done
    echo "round $round: alone $solo M/CPU s; both busy $(cut -d' ' -f1 "$dir/a"), $(cut -d' ' -f1 "$dir/b")" >&2
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "work per CPU second with both CPUs busy / alone: median $median of ${#ratios[@]} (load: $(cut -d' ' -f1-3 /proc/loadavg))"
