// src/policy/rules — one module per rule family (gomaxprocs, ulimits, sysctls); each rule has a stable id
// (used in messages, reports, metrics and docs), its check, its message and its fix.
// May import src/api and the shared parts of src/policy (facts, env, quantity, shell, patches).
import { GOMAXPROCS_RULES } from './gomaxprocs.ts';
import { SYSCTL_RULES } from './sysctls.ts';
import { ULIMIT_RULES } from './ulimits.ts';

export { GOMAXPROCS_RULES, checkGomaxprocs } from './gomaxprocs.ts';
export { ULIMIT_RULES, checkUlimits, checkNriContainers } from './ulimits.ts';
export { SYSCTL_RULES, checkSysctls } from './sysctls.ts';

/** Every rule id, for metrics (declared up front) and documentation. */
export const RULE_IDS: readonly string[] = [...Object.values(GOMAXPROCS_RULES), ...Object.values(ULIMIT_RULES), ...Object.values(SYSCTL_RULES)];
