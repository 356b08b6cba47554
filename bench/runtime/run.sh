#!/usr/bin/env bash
# Runs bench.mjs with every runtime in one private mount namespace where the hybrid cgroup2
# mount is hidden: crun refuses to run while hugetlb sits on /sys/fs/cgroup/unified.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null || true; exec node "$1"' sh "$here/bench.mjs"
