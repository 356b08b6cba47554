/**
 * A small authorization plugin that passes the suite: it refuses privileged containers and
 * volume removal, allows the rest (the policy of tools/examples/hello-authz-plugin.mjs).
 */
import type { AuthzPlugin, AuthzRequest, AuthzResponse } from '@berth/plugin-api';

const pathOf = (uri = ''): string => uri.replace(/^\/v\d+(\.\d+)?(?=\/)/, '').split('?')[0]!;

function bodyOf(req: AuthzRequest): { HostConfig?: { Privileged?: unknown } } | undefined {
  if (!req.RequestBody) return undefined;
  try {
    return JSON.parse(Buffer.from(req.RequestBody, 'base64').toString('utf8')) as { HostConfig?: { Privileged?: unknown } };
  } catch {
    return undefined;
  }
}

export class FakeAuthzPlugin implements AuthzPlugin {
  readonly calls: { call: 'AuthZReq' | 'AuthZRes'; req: AuthzRequest }[] = [];

  async authZReq(req: AuthzRequest): Promise<AuthzResponse> {
    this.calls.push({ call: 'AuthZReq', req });
    const p = pathOf(req.RequestUri);
    if (req.RequestMethod === 'POST' && p === '/containers/create' && bodyOf(req)?.HostConfig?.Privileged === true) return { Allow: false, Msg: 'privileged containers are not allowed' };
    if ((req.RequestMethod === 'DELETE' && p.startsWith('/volumes/')) || (req.RequestMethod === 'POST' && p === '/volumes/prune')) return { Allow: false, Msg: 'volumes may not be removed' };
    return { Allow: true };
  }

  async authZRes(req: AuthzRequest): Promise<AuthzResponse> {
    this.calls.push({ call: 'AuthZRes', req });
    return { Allow: true };
  }
}

export const fakeAuthzPlugin = async (): Promise<{ plugin: FakeAuthzPlugin; cleanup(): Promise<void> }> => ({ plugin: new FakeAuthzPlugin(), cleanup: async () => {} });
