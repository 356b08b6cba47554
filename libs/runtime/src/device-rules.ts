import type { OciDevice } from './spec.js';
import { defaultDevices } from './plan-builder.js';

export interface DeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

/**
 * The device cgroup rules a container gets: the spec's, then what runc always appends so the
 * container can mknod (but not open) any node, and use its default nodes, its ptys and tun.
 * Without them the init's own mknod of /dev/null is refused.
 */
export function containerDeviceRules(specRules: readonly DeviceRule[] | undefined, devices: readonly OciDevice[] | undefined): DeviceRule[] {
  const rules: DeviceRule[] = [...(specRules ?? [])];
  rules.push(
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
  );
  for (const d of defaultDevices) rules.push({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' });
  rules.push(
    { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
    { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
    { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
  );
  for (const d of devices ?? []) {
    if (d.type === 'p') continue;
    const type = d.type === 'u' ? 'c' : d.type;
    // A node the spec already has a rule for keeps that rule's access (`--device /dev/x:r`
    // gives read only); the others may be used fully, as runc lets them.
    const ruled = (specRules ?? []).some((r) => r.type === type && r.major === (d.major ?? 0) && r.minor === (d.minor ?? 0));
    if (!ruled) rules.push({ allow: true, type, major: d.major ?? 0, minor: d.minor ?? 0, access: 'rwm' });
  }
  return rules;
}
