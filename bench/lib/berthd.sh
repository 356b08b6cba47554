# Sourced by the benchmarks: a berthd of their own on scratch roots, with its own default
# bridge, subnet and iptables chain prefix (so another berthd on this host keeps berth0), and
# its removal (containers, mounts, the bridge, the chains and the jumps into them).
#
#   . "$root/bench/lib/berthd.sh"
#   bench_berthd_start <tag> [berthd flags...]   # sets work, exec_root, sock, berthd_pid, BERTH_HOST
#   trap bench_berthd_stop EXIT                  # or call it from your own EXIT trap
bench_berthd_start() {
  local name=$1
  shift
  local tag
  tag=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
  bench_bridge=b${name:0:1}$tag
  bench_prefix=B${name:0:1}${tag^^}
  bench_prefix=${bench_prefix^^}
  work=$(mktemp -d "/tmp/berth-bench-$name-XXXXXX")
  exec_root=/run/berth-bench-$name-$$
  sock=$exec_root/berth.sock
  mkdir -p "$exec_root"
  BERTH_IPTABLES_CHAIN_PREFIX=$bench_prefix "$root/apps/berthd/bin/berthd" --data-root "$work/data" --exec-root "$exec_root" \
    --host "unix://$sock" --pidfile "$exec_root/berthd.pid" --config-file "$exec_root/none.json" --log-level warn \
    --bridge "$bench_bridge" --bip "10.$((200 + RANDOM % 40)).$((RANDOM % 256)).1/24" "$@" >"$work/berthd.log" 2>&1 &
  berthd_pid=$!
  export BERTH_HOST=unix://$sock
  for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
  [ -S "$sock" ] || { echo "berthd did not start:"; cat "$work/berthd.log"; exit 1; }
}

bench_berthd_stop() {
  local berth="$root/apps/berth/bin/berth" t
  "$berth" ps -aq 2>/dev/null | xargs -r "$berth" rm -f >/dev/null 2>&1 || true
  # user networks: their br-<id> bridges and FORWARD/POSTROUTING rules are not under the prefix
  "$berth" network prune -f >/dev/null 2>&1 || true
  kill "$berthd_pid" 2>/dev/null || true
  wait "$berthd_pid" 2>/dev/null || true
  # A daemon that died leaves its mounts (storage, netns); detach them, deepest first.
  awk -v w="$work" -v e="$exec_root" 'index($5, w) == 1 || index($5, e) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del "$bench_bridge" 2>/dev/null || true
  for t in nat filter; do
    iptables -w -t $t -S | grep -- "-j $bench_prefix" | sed 's/^-A/-D/' | while read -r r; do eval iptables -w -t $t "$r" || true; done
    iptables -w -t $t -S | awk -v p="$bench_prefix" '$1 == "-N" && index($2, p) == 1 { print $2 }' |
      while read -r c; do iptables -w -t $t -F "$c"; iptables -w -t $t -X "$c"; done
  done
  rm -rf "$work" "$exec_root"
}
