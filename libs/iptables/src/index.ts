export type { ApplyOptions, Iptables, Op, Table } from './types.js';
export type { TableState, RuleCheck, IptablesBackend } from './payload.js';
export { applyOps, blindPayload, buildPayload, parseRules, ruleText, tablesOf } from './payload.js';
export { createIptables } from './exec.js';
export type { IptablesOptions } from './exec.js';
