/**
 * berth against the reference dockerd (unix:///run/docker-ref.sock, API 1.41), to keep its
 * output and exit codes docker's. Skipped when that socket is not reachable (CI has no
 * dockerd); e2e-berthd.test.ts runs the same suite against berthd.
 */
import { REFERENCE_HOST } from './support.js';
import { defineE2E } from './e2e-suite.js';

defineE2E(process.env.BERTH_E2E_HOST ?? REFERENCE_HOST, process.env.BERTH_E2E_HOST ?? 'the reference dockerd');
