// src/check — the offline `concurrency-guard check` command: reads multi-document YAML, runs the policy
// engine on every pod and workload template, prints findings, and with --fix writes the fixed manifests.
// May import src/api and src/policy only (DESIGN.md layers); does file I/O, the engine does none.
export { registerCheck } from './command.ts';
export type { CheckCommandOptions } from './command.ts';
