// create, run and exec move berth-init into new cgroups, which takes the kernel's cgroup move
// lock and waits out an RCU grace period (10-15 ms on a busy host) unless a move happened just
// before. This starts a no-op move of this process into its own cgroup at once, on the thread
// pool, so that the grace period passes while Node loads the runtime (libs/runtime's
// migrationPrimer does the same later, for the daemon). The cgroup is found exactly as the kernel
// names it (/proc/self/cgroup) under the mount that holds it (/proc/self/mountinfo); anything
// unexpected and nothing is written.
'use strict';
const fs = require('node:fs');

module.exports = function primeCgroupMove() {
  try {
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
      if (!m || m[1].startsWith('name=') || m[2].includes('/..')) continue;
      const controllers = m[1] === '' ? [] : m[1].split(',');
      for (const mount of mounts) {
        const [pre, post] = mount.split(' - ');
        const [fstype, , options = ''] = (post ?? '').split(' ');
        const opts = options.split(',');
        if (m[1] === '' ? fstype !== 'cgroup2' : fstype !== 'cgroup' || !controllers.every((c) => opts.includes(c))) continue;
        const [, , , root = '', point = ''] = pre.split(' ');
        const rel = root === '/' ? m[2] : m[2] === root ? '' : m[2].startsWith(`${root}/`) ? m[2].slice(root.length) : null;
        if (rel === null || point.includes('\\')) continue;
        const fd = fs.openSync(`${point}${rel === '/' ? '' : rel}/cgroup.procs`, 'w');
        fs.write(fd, String(process.pid), () => fs.close(fd, () => undefined));
        return true;
      }
    }
  } catch {
    /* only a hint */
  }
  return false;
};
