#!/usr/bin/env bash
# Sets up a Debian 12 machine for Berth and runs the main job (berthd, the busybox:latest
# image, and a container run by the berth CLI). Idempotent: each step does nothing when its result is already in place.
#
#   bash tools/setup.sh [--no-main] [--no-apt-if-present]
#
#   --no-main             stop after building; do not run the main job
#   --no-apt-if-present   leave apt alone when every package the build and the tests need is
#                         installed (hyperfine, used only by the benchmarks, may be missing)
#
# Steps: apt packages, npm ci, native build, TypeScript build, probe, busybox rootfs fixture,
# commands on PATH, main job. A step whose inputs another part of the workspace has not
# landed yet says "skipping X: not built yet (...)" and the rest goes on; a step that fails
# stops the script with a non-zero status.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MAIN=1
APT_IF_PRESENT=1
for arg in "$@"; do
  case $arg in
    --no-main) MAIN=0 ;;
    --no-apt-if-present) APT_IF_PRESENT=0 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# Debian 12 packages (all checked with apt-cache policy on bookworm).
APT_PACKAGES=(iptables busybox-static libseccomp-dev libcap-dev runc crun golang-github-containers-common
  build-essential python3 iproute2 hyperfine jq docker-registry apache2-utils skopeo fuse-overlayfs zstd
  redis-server redis-tools iperf3 curl)
# Needed by the benchmarks only.
APT_OPTIONAL=(hyperfine iperf3)

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

STEP_NO=0
STEP_TOTAL=$(( MAIN ? 8 : 7 ))
T_SETUP=$EPOCHREALTIME

elapsed() { # seconds since $1, one decimal
  awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

FAILED_STEPS=()

step() { # step hard|soft NAME FUNCTION
  # The function runs in a subshell under set -e, so its first failing command ends it. A
  # failed hard step (everything after needs it) stops setup; after a failed soft step the
  # steps that do not need it still run, and setup exits non-zero at the end.
  local kind=$1 name=$2 fn=$3 t0=$EPOCHREALTIME rc=0
  STEP_NO=$((STEP_NO + 1))
  echo "==> [$STEP_NO/$STEP_TOTAL] $name"
  set +e
  ( set -e; "$fn" )
  rc=$?
  set -e
  if [[ $rc -eq 0 ]]; then
    echo "<== $name: $(elapsed "$t0") s"
    return 0
  fi
  echo "<== $name: FAILED (exit $rc) after $(elapsed "$t0") s" >&2
  FAILED_STEPS+=("$name")
  if [[ $kind == hard ]]; then
    echo "setup: stopped at step \"$name\"" >&2
    exit "$rc"
  fi
}

skip() { echo "skipping $1: not built yet ($2)"; }

installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

apt_step() {
  local missing=() needed_missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    if ! installed "$p"; then
      missing+=("$p")
      [[ " ${APT_OPTIONAL[*]} " == *" $p "* ]] || needed_missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all ${#APT_PACKAGES[@]} packages are installed"
    return 0
  fi
  if [[ $APT_IF_PRESENT -eq 0 && ${#needed_missing[@]} -eq 0 ]]; then
    echo "not installing ${missing[*]} (--no-apt-if-present: the build and the tests do not need it)"
    return 0
  fi
  if [[ $IS_ROOT -eq 0 ]]; then
    echo "missing packages: ${missing[*]}; run tools/setup.sh as root to install them" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

npm_step() {
  local why drift
  drift=$(node tools/test/build-state.mjs lock-drift)
  if [[ -n $drift ]]; then
    echo "warning: package-lock.json does not match (npm ci installs from the lock; run npm install and commit package-lock.json):"
    sed 's/^/  /' <<<"$drift"
  fi
  if why=$(node tools/test/build-state.mjs node-modules); then
    echo "node_modules matches package-lock.json"
    return 0
  fi
  echo "$why"
  # npm 11 does not run the install scripts of dependencies (nx's postinstall only warms a
  # cache); the native addon is built by the next step, not by an install script.
  npm ci
}

native_step() {
  local state
  state=$(node tools/test/build-state.mjs native)
  case $state in
    ok) echo "native build is up to date (libs/native/build/Release)" ;;
    unbuildable*) skip "native build" "libs/native sources missing: ${state#unbuildable: }" ;;
    *)
      echo "native build $state"
      # node-gyp with --nodedir=/usr (libs/native's build script): headers from the nodejs
      # package, nothing downloaded.
      npm run build:native
      ;;
  esac
}

ts_step() {
  npx tsc -b && node tools/bundle/bundle.mjs apps/berth apps/berth-runtime apps/berthd
}

probe_step() {
  if [[ ! -f test/probe/Makefile ]]; then
    skip "probe" "test/probe/Makefile missing"
    return 0
  fi
  make -C test/probe
}

fixture_step() {
  if [[ ! -f tools/fixtures/bin/make-busybox-rootfs ]]; then
    skip "busybox rootfs fixture" "tools/fixtures/bin/make-busybox-rootfs missing"
    return 0
  fi
  node tools/fixtures/bin/make-busybox-rootfs
}

path_step() {
  local app bin
  for app in berth-runtime berth berthd; do
    bin=apps/$app/bin/$app
    if [[ ! -f $bin ]]; then
      skip "$app on PATH" "$bin missing"
      continue
    fi
    if [[ $IS_ROOT -eq 0 && ! -w /usr/local/bin ]]; then
      echo "skipping $app on PATH: /usr/local/bin is not writable (not root)"
      continue
    fi
    ln -sfn "$ROOT/$bin" "/usr/local/bin/$app"
    echo "/usr/local/bin/$app -> $ROOT/$bin"
  done
}

main_step() {
  # The main job: berthd running on /run/berth/berth.sock (started here in the background when
  # nothing answers there; it keeps running, like an installed daemon), the busybox:latest
  # image imported from the host's busybox-static, and a container run by the berth CLI.
  local berth=apps/berth/bin/berth berthd=apps/berthd/bin/berthd sock=/run/berth/berth.sock tar
  if [[ ${#FAILED_STEPS[@]} -gt 0 ]]; then
    echo "skipping main job: earlier steps failed (${FAILED_STEPS[*]})"
    return 0
  fi
  for f in $berth $berthd tools/fixtures/bin/make-busybox-tar; do
    [[ -f $f ]] || { skip "main job" "$f missing"; return 0; }
  done
  if ! BERTH_HOST=unix://$sock "$berth" version >/dev/null 2>&1; then
    mkdir -p /var/log/berth
    echo "starting berthd (log: /var/log/berth/berthd.log; stop it with: kill \$(cat /run/berth/berthd.pid))"
    setsid "$ROOT/$berthd" >>/var/log/berth/berthd.log 2>&1 </dev/null &
    for _ in $(seq 200); do
      BERTH_HOST=unix://$sock "$berth" version >/dev/null 2>&1 && break
      sleep 0.05
    done
  fi
  export BERTH_HOST=unix://$sock
  if ! "$berth" image inspect busybox:latest >/dev/null 2>&1; then
    tar=$(node tools/fixtures/bin/make-busybox-tar | tail -1) # "<path>: <diff id>"
    tar=${tar%%: *}
    "$berth" import -c 'CMD ["sh"]' "$tar" busybox:latest
  fi
  "$berth" images
  "$berth" run --rm busybox sh -c 'echo hello from a berth container; cat /proc/1/cmdline | tr "\0" " "; echo; hostname; ps -ef; ip -4 -o addr show eth0; ip route'
}

echo "setup: $ROOT$([[ $MAIN -eq 0 ]] && echo ' (no main job)')"
step hard "apt packages" apt_step
step hard "npm ci" npm_step
step soft "native build" native_step
step soft "TypeScript build" ts_step
step soft "probe" probe_step
step soft "busybox rootfs fixture" fixture_step
step soft "commands on PATH" path_step
if [[ $MAIN -eq 1 ]]; then
  step soft "main job" main_step
fi
if [[ ${#FAILED_STEPS[@]} -gt 0 ]]; then
  echo "setup: failed steps: ${FAILED_STEPS[*]} ($(elapsed "$T_SETUP") s)" >&2
  exit 1
fi
echo "setup: done in $(elapsed "$T_SETUP") s"
