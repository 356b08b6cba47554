/**
 * The authorization-plugin contract (`Implements: ["authz"]`, specs/plugin-protocol.md §9):
 * the engine asks every plugin of its chain, in order, before a request runs (AuthZReq) and
 * before a buffered answer goes out (AuthZRes). Types are as on the wire; every field is
 * omitted when empty, as Go's `omitempty` does.
 */

/** What the engine sends to both endpoints; AuthZRes adds the Response* fields. */
export interface AuthzRequest {
  /** The authenticated user (TLS client certificate); Berth has no authentication: absent. */
  User?: string;
  UserAuthNMethod?: string;
  RequestMethod?: string;
  /** The raw request URI with its query, e.g. `/v1.41/containers/json?all=1` (note the spelling `Uri`). */
  RequestUri?: string;
  /** Base64 of the raw body: only for `Content-Type: application/json` under 1 MiB, never for `/auth`. */
  RequestBody?: string;
  /** Header name (Go's canonical form) -> its last value; no Authorization, X-Registry-Auth, X-Registry-Config. */
  RequestHeaders?: Record<string, string>;
  ResponseStatusCode?: number;
  ResponseHeaders?: Record<string, string>;
  /** Base64 of the answer's body, only when it is `application/json`. */
  ResponseBody?: string;
}

/** The plugin's verdict. `Msg` is shown to the client on a denial; `Err` reports the plugin's own failure. */
export interface AuthzResponse {
  Allow: boolean;
  Msg?: string;
  Err?: string;
}

/**
 * An authorization plugin: one method per endpoint. Throwing (or answering a non-empty `Err`)
 * is a plugin failure: the server answers HTTP 500 `{"Err": ...}` and the engine refuses the
 * request with a 500, as dockerd does with plugins built on Docker's Go SDK.
 */
export interface AuthzPlugin {
  authZReq(req: AuthzRequest): Promise<AuthzResponse>;
  authZRes(req: AuthzRequest): Promise<AuthzResponse>;
}

export const authzPluginMethods = {
  'AuthZPlugin.AuthZReq': 'authZReq',
  'AuthZPlugin.AuthZRes': 'authZRes',
} as const satisfies Record<string, keyof AuthzPlugin>;

/** Bodies larger than this (or of unknown length) are not sent to the plugin (dockerd's 1 MiB). */
export const AUTHZ_MAX_BODY = 1 << 20;

/** Headers never shown to a plugin (credentials), compared case-insensitively. */
export const authzHiddenHeaders: readonly string[] = ['authorization', 'x-registry-auth', 'x-registry-config'];
