/** The seccomp profile of a start: none, a user's file, or Docker's default filtered by the capabilities. */
import type { HostConfig } from '@berth/api';
import { dockerProfileToOci, loadSeccompProfile, type DockerSeccompProfile, type OciSeccomp } from '@berth/runtime';
import { parseSecurityOpts } from './oci-spec.js';

export class SeccompProfiles {
  private defaultProfile: DockerSeccompProfile | null = null;
  /** The default profile, converted once per capability set. */
  private readonly byCaps = new Map<string, OciSeccomp>();

  /** @param defaultPath Docker's default profile, loaded on first use. */
  constructor(private readonly defaultPath: string) {}

  for(host: HostConfig, caps: string[]): OciSeccomp | null {
    const sec = parseSecurityOpts(host.SecurityOpt);
    if (host.Privileged || sec.seccomp.kind === 'unconfined') return null;
    if (sec.seccomp.kind === 'file') return dockerProfileToOci(loadSeccompProfile(sec.seccomp.path), { capabilities: caps });
    const key = caps.join(',');
    let prof = this.byCaps.get(key);
    if (!prof) {
      this.defaultProfile ??= loadSeccompProfile(this.defaultPath);
      prof = dockerProfileToOci(this.defaultProfile, { capabilities: caps });
      this.byCaps.set(key, prof);
    }
    return prof;
  }
}
