#!/usr/bin/env bash
# Cgroups: `stats` one-shot latency berth vs Docker, and what cgroup setup costs a start (issue 6).
#
#   bash bench/cgroups/run.sh            # N=30 by default
#
# Starts its own berthd on a scratch data root and socket (the tree's apps/berthd), imports
# busybox:latest from the fixture tarball, and compares with a dockerd when one answers:
# DOCKER_BENCH_HOST (default unix:///run/docker-ref.sock). It never starts or stops a dockerd.
# Figures:
#   setup   @berth/cgroups create (+ configure) and destroy of one group, in-process: the
#           cgroup part of every start (goal: <= 3 ms)
#   runs    run --rm busybox true through the Engine API without and with resource limits
#           (--cpus, -m, --memory-swap, --pids-limit, --cpu-shares, --cpuset-cpus, --blkio-weight),
#           interleaved; the difference is what the limits add to a start
#   stats   GET /containers/{id}/stats?stream=0&one-shot=1 (one sample) and `stats --no-stream`
#           through each CLI (two samples a second apart, as Docker does), berth vs dockerd
# Benchmarks print figures; they assert nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${N:-30}
DOCKER_BENCH_HOST=${DOCKER_BENCH_HOST:-unix:///run/docker-ref.sock}

. "$root/bench/lib/berthd.sh"
bench_berthd_start cg
D="docker -H $DOCKER_BENCH_HOST"
have_docker=0
cleanup() {
  [ $have_docker = 1 ] && $D rm -f bench-cg-stats >/dev/null 2>&1 || true
  bench_berthd_stop
}
trap cleanup EXIT

berth="$root/apps/berth/bin/berth"
tar=$(node "$root/tools/fixtures/bin/make-busybox-tar" 2>/dev/null | tail -1) # "<path>: <diff id>"
tar=${tar%%: *}
"$berth" import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null

if $D version >/dev/null 2>&1; then
  have_docker=1
  $D image inspect busybox:latest >/dev/null 2>&1 || $D import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
else
  echo "note: no dockerd answers at $DOCKER_BENCH_HOST; Docker columns are empty"
fi

j() { node -e 'const o=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(process.argv[1].split(",").map(p=>p.split(".").reduce((a,k)=>a?.[k],o)).join("\t"))' "$1"; }

echo "== cgroup setup in-process (@berth/cgroups, ms, median / p90 of $N)"
setup=$(node "$here/bench.mjs" setup "$N")
echo "$setup" | j mode | sed 's/^/layout: /'
printf 'create, no limits:    %s / %s\n' $(echo "$setup" | j bare.create.median,bare.create.p90)
printf 'create + limits:      %s / %s\n' $(echo "$setup" | j limits.create.median,limits.create.p90)
printf 'destroy:              %s / %s\n' $(echo "$setup" | j limits.destroy.median,limits.destroy.p90)

echo "== run --rm busybox true through the API, ms (median / p90 of $N, interleaved)"
runs=$(node "$here/bench.mjs" runs "$sock" "$N")
printf 'berth  no limits:     %s / %s\n' $(echo "$runs" | j bare.median,bare.p90)
printf 'berth  with limits:   %s / %s\n' $(echo "$runs" | j limits.median,limits.p90)
printf 'berth  limits add:    %s\n' "$(echo "$runs" | j limitsCost)"
if [ $have_docker = 1 ]; then
  druns=$(node "$here/bench.mjs" runs "${DOCKER_BENCH_HOST#unix://}" "$N")
  printf 'docker no limits:     %s / %s\n' $(echo "$druns" | j bare.median,bare.p90)
  printf 'docker with limits:   %s / %s\n' $(echo "$druns" | j limits.median,limits.p90)
  printf 'docker limits add:    %s\n' "$(echo "$druns" | j limitsCost)"
fi

echo "== stats of a running container, ms"
id=$("$berth" run -d --network none -m 64m --name bench-cg-stats busybox sleep 1000)
bstats=$(node "$here/bench.mjs" stats "$sock" "$id" "$N")
printf 'berth  one-shot API:  %s / %s\n' $(echo "$bstats" | j median,p90)
if [ $have_docker = 1 ]; then
  $D rm -f bench-cg-stats >/dev/null 2>&1 || true
  did=$($D run -d --network none -m 64m --name bench-cg-stats busybox sleep 1000)
  dstats=$(node "$here/bench.mjs" stats "${DOCKER_BENCH_HOST#unix://}" "$did" "$N")
  printf 'docker one-shot API:  %s / %s\n' $(echo "$dstats" | j median,p90)
fi
if command -v hyperfine >/dev/null; then
  args=(-N -w 1 -r 5 --export-json "$work/nostream.json" "$berth stats --no-stream bench-cg-stats")
  [ $have_docker = 1 ] && args+=("$D stats --no-stream bench-cg-stats")
  hyperfine "${args[@]}" >/dev/null 2>&1 &&
    jq -r '.results[] | "stats --no-stream:   \(.median*1000*10|round/10) ms  \(.command)"' "$work/nostream.json"
fi
