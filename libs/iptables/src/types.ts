/** The iptables tables Berth programs. */
export type Table = 'filter' | 'nat' | 'mangle' | 'raw';

/**
 * One step of an operation. Rule arguments are given in the canonical order `iptables -S`
 * prints them (`[!] -s`, `[!] -d`, `[!] -i`, `[!] -o`, `-p P -m P`, other matches, `-j`), so
 * presence is decided by comparing text with one `-S` read; a rule that does not match
 * textually is checked with `-C` before it is added or deleted.
 *
 * - `ensureChain`: `-N` when missing (never flushes an existing chain).
 * - `flushChain` / `deleteChain`: `-F` / `-F` + `-X` when present.
 * - `append` / `insert`: only when absent; `insert` with `move: true` first deletes every
 *   copy, then inserts at `position` (default 1), to keep a jump at the top of a chain.
 * - `delete`: only when present (a rule that is already gone is not an error).
 * - `policy`: a built-in chain's policy, only when it differs.
 *
 * `probe: false` skips the `-C` fallback for that rule: the caller vouches its text is
 * canonical, so text not found means absent (saves a process per rule on hot paths).
 */
export type Op =
  | { op: 'ensureChain'; table: Table; chain: string }
  | { op: 'flushChain'; table: Table; chain: string }
  | { op: 'deleteChain'; table: Table; chain: string }
  | { op: 'append'; table: Table; chain: string; args: readonly string[]; probe?: boolean }
  | { op: 'insert'; table: Table; chain: string; args: readonly string[]; position?: number; move?: boolean; probe?: boolean }
  | { op: 'delete'; table: Table; chain: string; args: readonly string[]; probe?: boolean }
  | { op: 'policy'; table: Table; chain: string; policy: 'ACCEPT' | 'DROP' };

export interface ApplyOptions {
  optimistic?: boolean;
}

export interface Iptables {
  /** One `iptables-restore --noflush -w` run with this payload (`*table ... COMMIT` blocks). */
  restore(payload: string): Promise<void>;
  /** `iptables -t T -S [chain]`: the rule lines (`-P`, `-N`, `-A`). */
  list(table: Table, chain?: string): Promise<string[]>;
  /** `iptables -t T -C chain args`: false when the rule or the chain is absent. */
  exists(table: Table, chain: string, args: readonly string[]): Promise<boolean>;
  /**
   * Reads the tables the ops touch, drops what is already so, and applies the rest as one
   * restore payload. Returns that payload ('' when nothing had to change). Calls on one
   * instance are serialised.
   *
   * `optimistic`: for ops that are only appends, inserts and deletes whose state the caller
   * knows (its own rules, recorded): one restore without reading first, assuming every added
   * rule absent and every deleted one present; when that payload is refused (a rule already
   * gone), the normal read-then-apply runs. One process instead of three on a hot path.
   */
  apply(ops: readonly Op[], opts?: ApplyOptions): Promise<string>;
  ensureChain(table: Table, chain: string): Promise<void>;
  flushChain(table: Table, chain: string): Promise<void>;
  deleteChain(table: Table, chain: string): Promise<void>;
}
