// src/policy — the pure core: a pod spec or workload template + namespace labels + LimitRanges +
// ConcurrencyPolicies → findings (rule id, container, field path, values, message, fix, enforcement,
// RFC 6902 patch) and the admission decision. No I/O, no clock, no globals beyond small parse caches.
// May import only src/api (and npm packages); the webhook, the controller's audit and `check` import it.
export { compilePolicies, compilePolicy } from './compile.ts';
export type { CompiledPolicies, CompiledPolicy, CompileOptions } from './compile.ts';
export { evaluate } from './evaluate.ts';
export { compileMatch, withNamespaceName, NAMESPACE_NAME_LABEL, type PodMatcher } from './match.ts';
export type { Evaluation, EvaluationInput } from './evaluate.ts';
export { decide, isControllerOwned } from './decide.ts';
export type { AdmissionInput, Decision, Operation } from './decide.ts';
export type { Finding } from './findings.ts';
export { warningText } from './findings.ts';
export { podLocationOf, normalizeSysctlName } from './facts.ts';
export { parseQuantity, milliValue, ceilUnits } from './quantity.ts';
export type { Quantity } from './quantity.ts';
export { GOMAXPROCS_RULES, ULIMIT_RULES, SYSCTL_RULES, RULE_IDS } from './rules/index.ts';
export type { Versions } from './rules/sysctls.ts';
