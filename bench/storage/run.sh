#!/usr/bin/env bash
# Images and storage drivers, berth vs Docker, medians side by side (issue 4).
#
#   bash bench/storage/run.sh              # RUNS=5 by default (each run moves ~200 MB)
#   DRIVERS="overlay2 vfs" bash bench/storage/run.sh
#
# Makes a deterministic ~200 MB rootfs tar (make-image.mjs: the busybox fixture + pseudo-random
# files from a fixed seed), then measures `import` of it, `save` of the image, `load` of the
# saved tar, and `run -d` of a sleeping container from it and from busybox, once per storage
# driver (one berthd per driver, `--storage-driver`, `--bridge none` so storage alone is timed and
# no other berthd's berth0 is touched, each on its own scratch data root and
# socket; the tree's apps/berthd). Docker columns come from the dockerd at DOCKER_BENCH_HOST
# (default unix:///run/docker-ref.sock) when one answers; it is never started or stopped.
# Peak RSS of berthd per phase: VmHWM after resetting it (`echo 5 > /proc/<pid>/clear_refs`).
# Timing with hyperfine -N (the CLI's start included). Benchmarks print figures; they assert nothing.
#
# Measured here (2026-11-28, overlay2, five runs of RUNS=5..7 on a shared 2-core VM with other
# work running; medians in ms, berth/docker):
#   import 2848/3338 3649/3287 2741/3069 3432/3384 3022/2393   (geometric mean of ratios 1.01)
#   save   1682/2262 1394/1490 1399/2160 1442/1773 1851/2293   (0.78)
#   load   3155/3391 2777/3176 3854/3791 3487/3769 3537/2925   (0.99)
# Before that day's changes: 1.27, 1.32 and 1.35 times docker's. Most of an import or load here
# is the kernel making 4 100 inodes: this ext4 has no journal, so after an rmi it skips recently
# freed inodes one by one (ext4 recently_deleted) and a create can take 0.3 ms; both daemons pay
# it, and more the more images the runs before removed. berthd's user CPU for an import is about
# 1 s against dockerd's 1.2-1.4 s plus its untar child's; docker does the untar in a second
# process, in parallel with receiving and hashing, which wins when the machine is idle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RUNS=${RUNS:-5}
DRIVERS=${DRIVERS:-overlay2 aufs vfs}
DOCKER_BENCH_HOST=${DOCKER_BENCH_HOST:-unix:///run/docker-ref.sock}
BERTHD=${BERTHD:-$root/apps/berthd/bin/berthd}
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)"; exit 2; }

work=$(mktemp -d /tmp/berth-bench-storage-XXXXXX)
exec_base=/run/berth-bench-storage-$$
cache=${BENCH_CACHE:-/var/tmp/berth-bench-storage}
mkdir -p "$exec_base" "$cache"
berth="$root/apps/berth/bin/berth"
pids=()

start_berthd() { # driver -> sets pid, sock
  local d=$1 er=$exec_base/$1
  mkdir -p "$er"
  sock=$er/berth.sock
  $BERTHD --data-root "$work/data-$d" --exec-root "$er" --host "unix://$sock" --storage-driver "$d" --bridge none \
    --pidfile "$er/berthd.pid" --config-file "$er/none.json" --log-level warn >"$work/berthd-$d.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  return 1
}
stop_berthd() { # pid sock
  BERTH_HOST=unix://$2 "$berth" ps -aq 2>/dev/null | xargs -r env BERTH_HOST=unix://$2 "$berth" rm -f >/dev/null 2>&1 || true
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  awk -v w="$work" -v e="$exec_base" 'index($5, w) == 1 || index($5, e) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" "$exec_base"
}
trap cleanup EXIT

bb=$(node "$root/tools/fixtures/bin/make-busybox-tar" 2>/dev/null | tail -1)
bb=${bb%%: *}
big=$(node "$here/make-image.mjs" "$bb" "$cache/big.tar")
echo "image tar: $big ($(($(stat -c %s "$big") / 1024 / 1024)) MiB)"

have_docker=0
D="env DOCKER_HOST=$DOCKER_BENCH_HOST docker"
if $D version >/dev/null 2>&1; then
  have_docker=1
  $D image inspect busybox:latest >/dev/null 2>&1 || $D import -c 'CMD ["sh"]' "$bb" busybox:latest >/dev/null
  $D rm -f bench-storage-d >/dev/null 2>&1 || true
else
  echo "note: no dockerd answers at $DOCKER_BENCH_HOST; Docker columns are empty"
fi

results=$work/results.tsv
: >"$results"
hf() { # name runs prepare cmd...
  local name=$1 runs=$2 prepare=$3
  shift 3
  local args=(-N -w 1 -r "$runs" --export-json "$work/$name.json")
  [ -n "$prepare" ] && args+=(--prepare "$prepare")
  hyperfine "${args[@]}" "$@" >"$work/$name.txt" 2>&1 || {
    cat "$work/$name.txt"
    for c in "$@"; do echo "+ $c"; $c; done # the failing command's own message
    return 1
  }
  jq -r --arg n "$name" '.results[] | [$n, (.median*1000|round), .command] | @tsv' "$work/$name.json" >>"$results"
}
hwm() { awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$1/status"; }
rss() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$1/status"; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }
peaks=$work/peaks.txt
: >"$peaks"

first=1
for d in $DRIVERS; do
  if ! start_berthd "$d"; then
    echo "$d: berthd does not start with this driver here ($(grep -o '"msg":"[^"]*"' "$work/berthd-$d.log" | tail -1))" >>"$peaks"
    continue
  fi
  B="env BERTH_HOST=unix://$sock $berth"
  $B import -c 'CMD ["sh"]' "$bb" busybox:latest >/dev/null
  if [ $first = 1 ]; then
    # import / save / load: the driver-independent costs, measured on the first driver.
    first=0
    reset_hwm "$pid"
    $B import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null
    echo "$d: berthd peak RSS (VmHWM) during one 200 MB import: $(hwm "$pid") MiB (RSS after: $(rss "$pid") MiB)" >>"$peaks"
    reset_hwm "$pid"
    $B save -o "$work/b-save.tar" bench/big >/dev/null
    echo "$d: berthd peak RSS during save: $(hwm "$pid") MiB" >>"$peaks"
    reset_hwm "$pid"
    $B rmi -f bench/big >/dev/null
    $B load -i "$work/b-save.tar" >/dev/null
    echo "$d: berthd peak RSS during load: $(hwm "$pid") MiB" >>"$peaks"
    imp=("$B import -c 'LABEL bench.storage=1' $big bench/big:latest")
    sav=("$B save -o $work/b-save.tar bench/big")
    lod=("$B load -i $work/b-save.tar")
    if [ $have_docker = 1 ]; then
      $D import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null
      $D save -o "$work/d-save.tar" bench/big
      imp+=("$D import -c 'LABEL bench.storage=1' $big bench/big:latest")
      sav+=("$D save -o $work/d-save.tar bench/big")
      lod+=("$D load -i $work/d-save.tar")
    fi
    # Each import and load starts from a store without the image (its layer released too).
    # (older imports of the same tar would keep the layer and loads would skip extraction: every
    # image made here carries the label bench.storage, and all of them go).
    {
      if [ $have_docker = 1 ]; then echo "for c in '$B' '$D'; do"; else echo "for c in '$B'; do"; fi
      echo '  $c images -q -f label=bench.storage | xargs -r $c rmi -f >/dev/null 2>&1'
      echo 'done; true'
    } >"$work/drop.sh"
    prep="bash $work/drop.sh"
    hf import "$RUNS" "$prep" "${imp[@]}"
    # The prepare step of the last command took the other side's image away.
    $B image inspect bench/big >/dev/null 2>&1 || $B import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null
    [ $have_docker = 1 ] && { $D image inspect bench/big >/dev/null 2>&1 || $D import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null; }
    hf save "$RUNS" "" "${sav[@]}"
    hf load "$RUNS" "$prep" "${lod[@]}"
    $B image inspect bench/big >/dev/null 2>&1 || $B load -i "$work/b-save.tar" >/dev/null
    [ $have_docker = 1 ] && { $D image inspect bench/big >/dev/null 2>&1 || $D load -i "$work/d-save.tar" >/dev/null; }
  else
    $B import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null
  fi
  hf "run_d_$d" "$RUNS" "sh -c '$B rm -f bench-storage-d >/dev/null 2>&1; true'" \
    "$B run -d --name bench-storage-d bench/big sleep 1000" "$B run -d --name bench-storage-d busybox sleep 1000"
  $B rm -f bench-storage-d >/dev/null 2>&1 || true
  if [ $have_docker = 1 ] && [ "$d" = overlay2 ]; then
    hf docker_run_d_overlay2 "$RUNS" "sh -c '$D rm -f bench-storage-d >/dev/null 2>&1; true'" \
      "$D run -d --name bench-storage-d bench/big sleep 1000" "$D run -d --name bench-storage-d busybox sleep 1000"
    $D rm -f bench-storage-d >/dev/null 2>&1 || true
  fi
  stop_berthd "$pid" "$sock"
done
[ $have_docker = 1 ] && { $D rmi -f bench/big >/dev/null 2>&1 || true; }

echo
echo "== bench/storage (medians of $RUNS, ms) =="
printf '%-22s %8s  %s\n' case median command
while IFS=$'\t' read -r n m c; do
  c=${c//$work/\$work}
  c=${c//$cache/\$cache}
  c=${c//env BERTH_HOST=unix:\/\/$exec_base\/*\/berth.sock $berth/berth}
  c=${c//env DOCKER_HOST=$DOCKER_BENCH_HOST docker/docker}
  printf '%-22s %8s  %s\n' "$n" "$m" "$c"
done <"$results"
echo
cat "$peaks"
