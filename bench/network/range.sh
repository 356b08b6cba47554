#!/usr/bin/env bash
# The PORTS-wide UDP range of bench/network (issue 5): `run -p 41000-50999:41000-50999/udp`,
# its rules and processes, then ps and inspect of that container against an ordinary one (the
# berth CLI and the API, medians of ROUNDS_RANGE interleaved rounds), and berthd's RSS.
#
#   bash bench/network/range.sh              # alone: its own berthd (bench/lib/berthd.sh)
#   PORTS=10000 ROUNDS_RANGE=15 bash bench/network/range.sh
#
# bench/network/run.sh sources it (range_measure, range_report) with its berthd running.
# Benchmarks print figures; they assert nothing.
#
# 2026-11-28, 2 cores shared with other jobs (load 4-6), 3 alternating runs each, medians of the
# per-run differences range - ordinary (ms):      before (ac63a0e)   after
#   berth ps                                          +45               ~0 (-6..+7)
#   berth inspect                                     +128              +27 (docker inspect: +112)
#   GET /containers/json                              +5.9              +1.0
#   GET /containers/{id}/json                         +25.4             +3.6
#   berthd RSS, ps/inspect rounds over the run        +4..6 MiB         +1..3 MiB
#   berthd RSS after rm over before the run           +10..13 MiB       +7..9 MiB
# The run itself still adds ~10 MiB: the container keeps PortBindings and ExposedPorts with
# 10,000 keys each (~2.7 MiB of heap), the bridge driver a 10,000-entry port map, and the last
# request of the bridge driver's and the controller's queues stays reachable from their promise.

range_rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
range_ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || return; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
range_median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# One GET on berthd's socket: its time in ms (curl's time_total, so no process start counted).
range_api() { curl -s -o /dev/null -w '%{time_total}' --unix-socket "$sock" "http://berthd/v1.41$1" | awk '{ printf "%.1f", $1 * 1000 }'; }
range_bytes() { curl -s --unix-socket "$sock" "http://berthd/v1.41$1" | wc -c; }

range_measure() {
  local lo_p=41000 hi_p small_f r
  hi_p=$((lo_p + PORTS - 1))
  range_spec="$lo_p-$hi_p:$lo_p-$hi_p/udp"
  small_f='/containers/json?filters=%7B%22name%22%3A%5B%22bench-small%22%5D%7D'
  "$berth" run -d --name bench-small busybox sleep 600 >/dev/null
  sleep 3 # past berthd's idle compaction (2 s after the last request)
  rss0=$(range_rss "$berthd_pid")
  # This range overlaps the host's ephemeral ports: a port some program holds for a moment
  # refuses the run (409); one more try then.
  t_run=$(range_ms "$berth" run -d --name bench-range -p "$range_spec" busybox sleep 600 2>/dev/null) ||
    { "$berth" rm -f bench-range >/dev/null 2>&1; t_run=$(range_ms "$berth" run -d --name bench-range -p "$range_spec" busybox sleep 600); }
  rules=$(iptables -w -t nat -S "$bench_prefix" | grep -c DNAT || true)
  proxies=$(pgrep -fc "proxy.*$lo_p" || true)
  sleep 1
  rss1=$(range_rss "$berthd_pid")
  # The first ps and inspect after the run make berthd's cache of the port views.
  t_ps_first=$(range_ms "$berth" ps)
  t_insp_first=$(range_ms "$berth" inspect bench-range)
  declare -gA rt=()
  for ((r = 0; r < ${ROUNDS_RANGE:-15}; r++)); do
    rt[ps]+=" $(range_ms "$berth" ps)"
    rt[ps_small]+=" $(range_ms "$berth" ps --filter name=bench-small)"
    rt[insp]+=" $(range_ms "$berth" inspect bench-range)"
    rt[insp_small]+=" $(range_ms "$berth" inspect bench-small)"
    rt[api_ls]+=" $(range_api /containers/json)"
    rt[api_ls_small]+=" $(range_api "$small_f")"
    rt[api_insp]+=" $(range_api /containers/bench-range/json)"
    rt[api_insp_small]+=" $(range_api /containers/bench-small/json)"
  done
  for r in "${!rt[@]}"; do rt[$r]=$(range_median "${rt[$r]}"); done
  b_insp=$(range_bytes /containers/bench-range/json)
  b_insp_small=$(range_bytes /containers/bench-small/json)
  b_ls=$(range_bytes /containers/json)
  b_ls_runs=$(range_bytes '/containers/json?berthPortRuns=1')
  ps_ports=$("$berth" ps --filter name=bench-range --format '{{.Ports}}')
  rss_views=$(range_rss "$berthd_pid")
  t_rm=$(range_ms "$berth" rm -f bench-range)
  sleep 1
  rss2=$(range_rss "$berthd_pid")
  sleep 4
  rss3=$(range_rss "$berthd_pid")
  "$berth" rm -f bench-small >/dev/null
}

range_report() {
  echo "== a $PORTS-port UDP range (-p $range_spec), berth =="
  echo "run -d: ${t_run} ms; rm -f: ${t_rm} ms; DNAT rules: $rules; proxy processes: $proxies"
  echo "first ps and inspect after the run (they fill berthd's port-view cache): ${t_ps_first} ms, ${t_insp_first} ms"
  printf '%-52s %9s %9s\n' "medians of ${ROUNDS_RANGE:-15} interleaved rounds, ms" range ordinary
  printf '%-52s %9s %9s\n' "berth ps (all / --filter name=bench-small)" "${rt[ps]}" "${rt[ps_small]}"
  printf '%-52s %9s %9s\n' "berth inspect" "${rt[insp]}" "${rt[insp_small]}"
  printf '%-52s %9s %9s\n' "GET /containers/json (all / name filter)" "${rt[api_ls]}" "${rt[api_ls_small]}"
  printf '%-52s %9s %9s\n' "GET /containers/{id}/json" "${rt[api_insp]}" "${rt[api_insp_small]}"
  echo "answers: inspect $b_insp bytes (ordinary $b_insp_small), /containers/json $b_ls, with berthPortRuns=1 (berth ps) $b_ls_runs"
  echo "berth ps PORTS: $ps_ports"
  echo "berthd RSS: before $((rss0 / 1024)) MiB, with the range $((rss1 / 1024)) MiB, after the ps/inspect rounds $((rss_views / 1024)) MiB, 1 s after rm $((rss2 / 1024)) MiB, settled (5 s) $((rss3 / 1024)) MiB"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  here=$(cd "$(dirname "$0")" && pwd)
  root=$(cd "$here/../.." && pwd)
  PORTS=${PORTS:-10000}
  . "$root/bench/lib/berthd.sh"
  bench_berthd_start net
  trap bench_berthd_stop EXIT
  berth="$root/apps/berth/bin/berth"
  tar=$(node "$root/tools/fixtures/bin/make-busybox-tar" 2>/dev/null | tail -1)
  tar=${tar%%: *}
  "$berth" import -c 'CMD ["sh"]' "$tar" busybox:latest >/dev/null
  range_measure
  echo
  range_report
fi
