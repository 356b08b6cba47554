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
# import, save and load are timed interleaved with Docker's, round by round (ab below); the
# run -d cases with hyperfine -N (the CLI's start included). Benchmarks print figures; they
# assert nothing.
#
# Measured here (2026-11-28 evening, overlay2, three runs of RUNS=7, interleaved, on a shared
# 2-core VM with other work running (load average 6-7); medians in ms, berth/docker, ratio):
#   import   938/2503 0.37   1236/2051 0.60   1453/2891 0.50
#   save    1233/1713 0.72   1277/1814 0.70   1291/1949 0.66
#   load    1152/3245 0.36   1344/2072 0.65   1771/3108 0.57
# berthd peak RSS: import 70-74 MiB, save 114-118 MiB, load 94-121 MiB. The same tree with the
# layer home's +T cleared (chattr -T after start), same hour: import 3665/3241 (1.13), save
# 1352/2093 (0.65), load 3191/3283 (0.97); that morning, with hyperfine: 1.01, 0.78, 0.99.
# Most of an import or load was the kernel making 4 100 inodes: this ext4 has no journal, so its
# inode allocator skips each inode freed in the last minute or more, rescanning them from the
# start of the group for every create (ext4_create -> recently_deleted in perf), up to 0.3 ms a
# create after an rmi. The storage drivers now mark their layer home chattr +T (FS_TOPDIR_FL,
# spreadLayerDirs in libs/archive): Orlov gives each new layer dir a lightly used block group
# instead of the one the removed image just freed (an outlier round remains now and then).
# dockerd still pays it. What is left of a berth import is berthd's CPU, ~1 s: sha256 ~0.2 s,
# the tar parsed twice (apply, split record), writes, GC. Hashing on a libuv pool thread through
# the addon was tried and lost (per-batch references or copies and twice the GC, for 0.17 s moved).
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
# Interleaved A/B: each round runs every command once (which goes first alternates), each after
# its own prepare step, so both sides see the same load on this shared machine (hyperfine runs all
# of one side's runs first). Wall time per command (the CLI's start included); medians go to
# results.tsv and the per-round ratios berth/docker to <name>.ratios.
ab() { # name rounds prepare cmd...
  local name=$1 rounds=$2 prepare=$3
  shift 3
  local cmds=("$@") i j k s e
  : >"$work/$name.times"
  for ((i = 0; i < rounds + 1; i++)); do # round 0 warms up and is not counted
    for ((k = 0; k < ${#cmds[@]}; k++)); do
      j=$(((k + i) % ${#cmds[@]}))
      [ -n "$prepare" ] && bash -c "$prepare"
      s=$(date +%s%N)
      bash -c "${cmds[$j]}" >/dev/null || { echo "+ ${cmds[$j]} failed"; bash -c "${cmds[$j]}"; return 1; }
      e=$(date +%s%N)
      [ $i -gt 0 ] && printf '%s\t%s\n' "$j" $(((e - s) / 1000000)) >>"$work/$name.times"
    done
  done
  for ((j = 0; j < ${#cmds[@]}; j++)); do
    printf '%s\t%s\t%s\n' "$name" "$(awk -F'\t' -v j=$j '$1 == j { print $2 }' "$work/$name.times" | sort -n |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }')" "${cmds[$j]}" >>"$results"
  done
  # Per round ratio berth/docker, for the spread.
  [ ${#cmds[@]} = 2 ] && awk -F'\t' '$1 == 0 { b[++nb] = $2 } $1 == 1 { d[++nd] = $2 } END {
    s = ""; for (i = 1; i <= nb; i++) s = s sprintf(" %.2f", b[i] / d[i]); print s }' "$work/$name.times" >"$work/$name.ratios"
  return 0
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
    ab import "$RUNS" "$prep" "${imp[@]}"
    # The prepare step of the last command took the other side's image away.
    $B image inspect bench/big >/dev/null 2>&1 || $B import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null
    [ $have_docker = 1 ] && { $D image inspect bench/big >/dev/null 2>&1 || $D import -c "LABEL bench.storage=1" "$big" bench/big:latest >/dev/null; }
    ab save "$RUNS" "" "${sav[@]}"
    ab load "$RUNS" "$prep" "${lod[@]}"
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
for n in import save load; do [ -s "$work/$n.ratios" ] && echo "$n berth/docker per round:$(cat "$work/$n.ratios")"; done
echo
cat "$peaks"
