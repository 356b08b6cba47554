export type { Iptables, Op, Table } from './types.js';
export type { TableState, RuleCheck } from './payload.js';
export { buildPayload, parseRules, ruleText, tablesOf } from './payload.js';
export { createIptables } from './exec.js';
export type { IptablesOptions } from './exec.js';
