/** The seccomp profile of a start: none, a user's file, or the default filtered by the capabilities. */
import type { HostConfig } from '@berth/api';
import { BerthError } from '@berth/errors';
import { dockerProfileToOci, loadSeccompProfile, parseSeccompProfile, type DockerSeccompProfile, type OciSeccomp, type OciSeccompSyscall } from '@berth/runtime';
import { parseSecurityOpts } from './oci-spec.js';

/** Mount and namespace calls: Docker's default profile lets them through only with CAP_SYS_ADMIN. */
const adminOnly = ['unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree', 'move_mount', 'mount_setattr'];
/** The kernel keyring is not namespaced: Docker's default profile refuses it to every container. */
const keyring = ['keyctl', 'add_key', 'request_key'];
/** CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET. */
const cloneNamespaceFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
const EPERM = 1;
const ENOSYS = 38;

/**
 * The default profile as Docker applies its own: the distribution's file (Debian's, from
 * containers-common, lets a container make user namespaces and mount in them, and use the
 * keyring) with Docker's rules for those calls in place of the file's. Without CAP_SYS_ADMIN a
 * container makes no namespace (unshare, setns, clone with a CLONE_NEW* flag: EPERM; clone3:
 * ENOSYS, so that libc falls back to clone) and mounts nothing; no container uses the keyring.
 */
export function confineDefaultProfile(profile: OciSeccomp, caps: readonly string[]): OciSeccomp {
  const admin = caps.includes('CAP_SYS_ADMIN');
  const replaced = new Set([...keyring, ...(admin ? [] : [...adminOnly, 'clone', 'clone3'])]);
  const syscalls: OciSeccompSyscall[] = [];
  for (const rule of profile.syscalls ?? []) {
    const names = rule.names.filter((n) => !replaced.has(n));
    if (names.length > 0) syscalls.push(names.length === rule.names.length ? rule : { ...rule, names });
  }
  syscalls.push({ names: admin ? keyring : [...keyring, ...adminOnly], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM });
  if (!admin) {
    const mask = cloneNamespaceFlags.reduce((a, b) => a | b, 0);
    syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: mask, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    for (const flag of cloneNamespaceFlags) {
      syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }] });
    }
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  return { ...profile, syscalls };
}

/**
 * A user's profile from `seccomp=<value>`: the profile's JSON itself, as the docker CLI sends it
 * (it reads the file), or, Berth's extension, the path of a file on the daemon's host.
 */
export function userProfile(value: string): DockerSeccompProfile {
  if (value.trimStart().startsWith('{')) return parseSeccompProfile(value, 'in HostConfig.SecurityOpt');
  try {
    return loadSeccompProfile(value);
  } catch (err) {
    if (err instanceof BerthError && err.code === 'BERTH_SECCOMP_PROFILE') throw err;
    throw new BerthError('BERTH_SECCOMP_PROFILE', `opening seccomp profile (${value}) failed: ${(err as Error).message}`, { cause: err, details: { field: 'HostConfig.SecurityOpt' } });
  }
}

/** Fails as the start would on a user's profile that cannot be read, parsed or converted. */
export function checkUserProfile(value: string): void {
  dockerProfileToOci(userProfile(value), { capabilities: [] });
}

export class SeccompProfiles {
  private defaultProfile: DockerSeccompProfile | null = null;
  /** The default profile, converted once per capability set. */
  private readonly byCaps = new Map<string, OciSeccomp>();

  /** @param defaultPath the default profile in Docker's format, loaded on first use. */
  constructor(private readonly defaultPath: string) {}

  for(host: HostConfig, caps: string[]): OciSeccomp | null {
    const sec = parseSecurityOpts(host.SecurityOpt);
    if (host.Privileged || sec.seccomp.kind === 'unconfined') return null;
    // A user's profile applies as written, as with Docker.
    if (sec.seccomp.kind === 'file') return dockerProfileToOci(userProfile(sec.seccomp.path), { capabilities: caps });
    const key = caps.join(',');
    let prof = this.byCaps.get(key);
    if (!prof) {
      this.defaultProfile ??= loadSeccompProfile(this.defaultPath);
      prof = confineDefaultProfile(dockerProfileToOci(this.defaultProfile, { capabilities: caps }), caps);
      this.byCaps.set(key, prof);
    }
    return prof;
  }
}
