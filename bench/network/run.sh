#!/usr/bin/env bash
# Networking, berth vs Docker side by side (issue 5).
#
#   bash bench/network/run.sh              # SECS=5 per iperf3 run, RUNS=20 per run --rm case
#   PORTS=10000 bash bench/network/run.sh  # size of the published UDP range
#
# Starts its own berthd on scratch roots with its own default bridge, subnet and iptables chain
# prefix (so it never touches the berth0 of another berthd), imports busybox and an image made
# of busybox plus the host's iperf3, and compares with a dockerd when one answers at
# DOCKER_BENCH_HOST (default unix:///run/docker-ref.sock; never started or stopped here).
# Prints: iperf3 throughput over loopback (the ceiling), host to container over the bridge,
# through a published port on 127.0.0.1 (berth: DNAT in the kernel; docker: docker-proxy) and
# through the host's own address (DNAT both); the cost of the bridge in `run --rm` over
# `--network none`; a PORTS-wide UDP range: run, rm, ps and inspect times and berthd's RSS
# (bench/network/range.sh, which also runs alone).
# Benchmarks print figures; they assert nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SECS=${SECS:-5}
RUNS=${RUNS:-20}
PORTS=${PORTS:-10000}
DOCKER_BENCH_HOST=${DOCKER_BENCH_HOST:-unix:///run/docker-ref.sock}
for c in iperf3 hyperfine jq; do command -v $c >/dev/null || { echo "$c is needed (tools/setup.sh installs it)"; exit 2; }; done

. "$root/bench/lib/berthd.sh"
bench_berthd_start net
berth="$root/apps/berth/bin/berth"
D="env DOCKER_HOST=$DOCKER_BENCH_HOST docker"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${have_docker:-0}" = 1 ] && { $D rm -f bench-iperf bench-range >/dev/null 2>&1 || true; }
  bench_berthd_stop
}
trap cleanup EXIT

# Images: busybox, and busybox + iperf3 with the libraries it links.
tar=$(node "$root/tools/fixtures/bin/make-busybox-tar" 2>/dev/null | tail -1)
tar=${tar%%: *}
"$berth" import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
rootfs=$work/iperf-rootfs
mkdir -p "$rootfs"
tar -xf "$tar" -C "$rootfs"
for f in $(command -v iperf3) $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do cp --parents -L "$f" "$rootfs"; done
tar -C "$rootfs" -cf "$work/iperf.tar" .
"$berth" import -c 'CMD ["iperf3", "-s"]' "$work/iperf.tar" bench-iperf:latest >/dev/null

have_docker=0
if $D version >/dev/null 2>&1; then
  have_docker=1
  $D image inspect busybox:latest >/dev/null 2>&1 || $D import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
  $D import -c 'CMD ["iperf3", "-s"]' "$work/iperf.tar" bench-iperf:latest >/dev/null
else
  echo "note: no dockerd answers at $DOCKER_BENCH_HOST; Docker columns are empty"
fi

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
host_ip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(bn|bt|br-|docker|veth)/ { sub(/\/.*/, "", $4); print $4; exit }')
gbits() { # host port -> Gbit/s received (iperf3 client on the host, server in the container)
  local out
  for _ in $(seq 50); do out=$(iperf3 -c "$1" -p "$2" -t "$SECS" -J 2>/dev/null) && break; sleep 0.1; done
  jq -r '.end.sum_received.bits_per_second / 1e9 | . * 10 | round / 10' <<<"$out"
}

# 1. throughput
lo_port=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$lo_port" >/dev/null 2>&1 &
pids+=($!)
lo=$(gbits 127.0.0.1 "$lo_port")

bp=$(free_port)
"$berth" run -d --name bench-iperf -p "$bp:5201" bench-iperf >/dev/null
bip_c=$("$berth" inspect -f '{{.NetworkSettings.IPAddress}}' bench-iperf)
if [ $have_docker = 1 ]; then
  dp=$(free_port)
  $D run -d --name bench-iperf -p "$dp:5201" bench-iperf >/dev/null
  dip=$($D inspect -f '{{.NetworkSettings.IPAddress}}' bench-iperf)
fi
# Rounds alternate between the engines (this host's load varies); the median of ROUNDS is shown.
ROUNDS=${ROUNDS:-3}
declare -A tp
for _ in $(seq "$ROUNDS"); do
  tp[b_bridge]+=" $(gbits "$bip_c" 5201)"
  [ $have_docker = 1 ] && tp[d_bridge]+=" $(gbits "$dip" 5201)"
  tp[b_lo]+=" $(gbits 127.0.0.1 "$bp")"
  [ $have_docker = 1 ] && tp[d_lo]+=" $(gbits 127.0.0.1 "$dp")"
  if [ -n "$host_ip" ]; then
    tp[b_host]+=" $(gbits "$host_ip" "$bp")"
    [ $have_docker = 1 ] && tp[d_host]+=" $(gbits "$host_ip" "$dp")"
  fi
done
median() { [ -z "$1" ] && { echo -; return; }; tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
b_bridge=$(median "${tp[b_bridge]:-}") d_bridge=$(median "${tp[d_bridge]:-}")
b_lo=$(median "${tp[b_lo]:-}") d_lo=$(median "${tp[d_lo]:-}")
b_host=$(median "${tp[b_host]:-}") d_host=$(median "${tp[d_host]:-}")
"$berth" rm -f bench-iperf >/dev/null
[ $have_docker = 1 ] && $D rm -f bench-iperf >/dev/null

# 2. the bridge's cost in run --rm
hf() { # name cmd...
  local name=$1
  shift
  hyperfine -N -w 3 -r "$RUNS" --export-json "$work/$name.json" "$@" >"$work/$name.txt" 2>&1 || { cat "$work/$name.txt"; return 1; }
  jq -r '.results[] | (.median * 1000 * 10 | round / 10)' "$work/$name.json" | paste -sd' '
}
if [ $have_docker = 1 ]; then
  read -r b_none b_br d_none d_br <<<"$(hf run_rm "$berth run --rm --network none busybox true" "$berth run --rm busybox true" "$D run --rm --network none busybox true" "$D run --rm busybox true")"
else
  read -r b_none b_br <<<"$(hf run_rm "$berth run --rm --network none busybox true" "$berth run --rm busybox true")"
  d_none=- d_br=-
fi

# 3. a wide UDP range (bench/network/range.sh)
. "$here/range.sh"
range_measure

echo
echo "== bench/network (iperf3 ${SECS}s per case, median of $ROUNDS alternating rounds; Gbit/s) =="
printf '%-46s %8s %8s\n' case berth docker
printf '%-46s %8s %8s\n' "loopback (host, the ceiling)" "$lo" "$lo"
printf '%-46s %8s %8s\n' "host -> container over the bridge" "$b_bridge" "$d_bridge"
printf '%-46s %8s %8s\n' "published port on 127.0.0.1" "$b_lo" "$d_lo"
printf '%-46s %8s %8s\n' "published port on the host address ($host_ip)" "$b_host" "$d_host"
echo
echo "== run --rm busybox true (medians of $RUNS, ms) =="
printf '%-46s %8s %8s\n' case berth docker
printf '%-46s %8s %8s\n' "--network none" "$b_none" "$d_none"
printf '%-46s %8s %8s\n' "default bridge" "$b_br" "$d_br"
awk -v a="$b_br" -v b="$b_none" -v c="$d_br" -v d="$d_none" 'BEGIN { printf "%-46s %8.1f %8s\n", "bridge cost over none", a - b, (c == "-" ? "-" : sprintf("%.1f", c - d)) }'
echo
range_report
echo "(Docker, measured for the issue: a 1,000-port range took 35.6 s to run, 2,000 docker-proxy processes, 6.5 GiB, 79 s to rm)"
