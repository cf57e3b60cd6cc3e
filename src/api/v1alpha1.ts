// The shapes of DESIGN.md's API section. crds/*.yaml is the schema the API server enforces; these
// types describe the same objects to TypeScript, and test/unit/api-crd-sync.test.ts keeps them in step.

export const GROUP = 'concurrencyguard.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const POLICY_KIND = 'ConcurrencyPolicy';
export const POLICY_PLURAL = 'concurrencypolicies';
export const REPORT_KIND = 'ConcurrencyReport';
export const REPORT_PLURAL = 'concurrencyreports';

/** Field managers: each writer applies its own fields, so neither erases the other's. */
export const FIELD_MANAGER_CONTROLLER = 'concurrency-guard-controller';
export const FIELD_MANAGER_NODE_AGENT = 'concurrency-guard-node-agent';
export const FIELD_MANAGER_WEBHOOK = 'concurrency-guard-webhook';

export type Enforcement = 'Deny' | 'Warn' | 'Audit';
export const ENFORCEMENTS: readonly Enforcement[] = ['Deny', 'Warn', 'Audit'];
/** Stricter first: the strictest enforcement among the policies that raise a finding wins. */
export const ENFORCEMENT_RANK: Readonly<Record<Enforcement, number>> = { Deny: 3, Warn: 2, Audit: 1 };

export type UndeclaredUlimitAction = 'Ignore' | 'Warn';
export const UNDECLARED_ULIMIT_ACTIONS: readonly UndeclaredUlimitAction[] = ['Ignore', 'Warn'];
export type PressureLevel = 'OK' | 'Warning' | 'Critical';
export const PRESSURE_RANK: Readonly<Record<PressureLevel, number>> = { OK: 0, Warning: 1, Critical: 2 };
export const PRESSURE_LEVELS: readonly PressureLevel[] = ['OK', 'Warning', 'Critical'];

// ---- Kubernetes shapes we embed (kept minimal on purpose: importing client-node's model costs RSS) ----

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export const LABEL_SELECTOR_OPERATORS: readonly LabelSelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

// ---- ConcurrencyPolicy ----

export interface PolicyMatch {
  namespaceSelector?: LabelSelector;
  podSelector?: LabelSelector;
  exclude?: { namespaces?: string[]; podSelector?: LabelSelector };
}

export interface GomaxprocsRules {
  /** GOMAXPROCS may exceed ceil(limits.cpu) by at most this many. */
  maxOverCPULimit?: number;
  enforcement?: Enforcement;
}

export interface UlimitRules {
  nofile?: { minSoft?: number; minPerCPU?: number };
  nproc?: { minPerCPU?: number };
  onUndeclared?: UndeclaredUlimitAction;
  /** What this cluster's container runtime gives a container that declares nothing. */
  runtimeDefaults?: { nofile?: { soft?: number; hard?: number } };
  enforcement?: Enforcement;
}

export interface SysctlRules {
  /** The kubelet's --allowed-unsafe-sysctls; entries may end in `*`. */
  allowedUnsafe?: string[];
  /** Declared values below these are findings. */
  minimums?: Record<string, number>;
  enforcement?: Enforcement;
}

export interface PercentThresholds { warningPercent?: number; criticalPercent?: number }
export interface RateThresholds { warningDropsPerMinute?: number; criticalDropsPerMinute?: number }

export interface PressureThresholds {
  fileDescriptors?: PercentThresholds;
  threads?: PercentThresholds;
  listenQueue?: RateThresholds;
  cpuThrottling?: { warningPercent?: number };
}

/** Built-in defaults when no matching policy has a `pressure` section (DESIGN.md). */
export const DEFAULT_PRESSURE: Required<{
  fileDescriptors: Required<PercentThresholds>;
  threads: Required<PercentThresholds>;
  listenQueue: Required<RateThresholds>;
  cpuThrottling: Required<{ warningPercent: number }>;
}> = {
  fileDescriptors: { warningPercent: 80, criticalPercent: 95 },
  threads: { warningPercent: 80, criticalPercent: 95 },
  listenQueue: { warningDropsPerMinute: 1, criticalDropsPerMinute: 100 },
  cpuThrottling: { warningPercent: 25 },
};

export interface ConcurrencyPolicySpec {
  match?: PolicyMatch;
  enforcement?: Enforcement;
  gomaxprocs?: GomaxprocsRules;
  ulimits?: UlimitRules;
  sysctls?: SysctlRules;
  pressure?: PressureThresholds;
}

export interface ConcurrencyPolicyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  matchedPods?: number;
  violatingPods?: number;
  lastAuditTime?: string;
}

export interface ConcurrencyPolicy {
  apiVersion: typeof API_VERSION;
  kind: typeof POLICY_KIND;
  metadata: ObjectMeta;
  spec: ConcurrencyPolicySpec;
  status?: ConcurrencyPolicyStatus;
}

// ---- ConcurrencyReport ----

/**
 * Bounds that keep the worst-case report under 8 KiB including managedFields; the CRD's maxItems and
 * maxLength are these numbers (test/unit/api-crd-sync.test.ts checks, test/e2e/crds.test.ts measures).
 * Measured on kube-apiserver 1.37: with 253-character pod and node names the metadata, spec and the four
 * managedFields entries alone take about 3.3 KiB, which leaves under 5 KiB for status. A first cut
 * (16 findings, 8 containers, 256-character messages) came to 15 KiB.
 */
export const REPORT_LIMITS = {
  /** status.audit.findings, strictest first; the rest are counted in truncatedFindings. */
  findings: 4,
  /** status.audit.findings[].rule: a rule id such as `sysctls/syn-backlog-below-somaxconn` (35). */
  ruleId: 40,
  /** status.audit.findings[].message: value, limit and fix in short (the rule's docs say the rest). */
  message: 64,
  /** Policies named per finding: the one that sets its enforcement. */
  policiesPerFinding: 1,
  /** status.conditions[].message. */
  conditionMessage: 64,
  /** status.conditions[].reason. */
  conditionReason: 32,
  /** status.runtime.listenQueue.listeners, fullest first. */
  listeners: 4,
  /** Processes named per pressure: only the worst one (fileDescriptors.process). */
  topProcesses: 1,
  /** Entries of status.runtime.cpu and of status.runtime.go, worst first. */
  containers: 2,
  /** status.runtime.go[].goVersion. */
  goVersion: 20,
  /** status.runtime.lastCrash.signature. */
  signature: 96,
} as const;

/** A ConcurrencyPolicy's name is at most this long, so reports can name policies cheaply. */
export const POLICY_NAME_MAX_LENGTH = 63;

export interface AuditFinding {
  rule: string;
  container?: string;
  enforcement: Enforcement;
  /** Short, ≤ REPORT_LIMITS.message characters; names the value, the limit and the fix. */
  message: string;
  /** The policies raising this finding, the one that sets its enforcement first; ≤ REPORT_LIMITS.policiesPerFinding. */
  policies?: string[];
}

export interface ReportAudit {
  observedPodGeneration?: number;
  auditTime?: string;
  /** Strictest first, at most REPORT_LIMITS.findings. */
  findings?: AuditFinding[];
  /** Findings left out of `findings` because it was full. */
  truncatedFindings?: number;
}

export interface ProcessPressure {
  pid: number;
  comm: string;
  container?: string;
  count: number;
  limit: number;
}

// Runtime counts and per-minute rates are integers in the CRD (round rates up), so that the worst-case report
// has a known size; percent, throttledPercent, growthPerMinute and quotaCores may be fractional.
export interface FileDescriptorRuntime {
  level: PressureLevel;
  open: number;
  limit: number;
  /** Passes 100 when a limit was lowered under the fds already open. */
  percent: number;
  /** The worst process, the one `percent` is computed from. */
  process?: ProcessPressure;
  growthPerMinute?: number;
  /** Seconds until the limit at the current growth; absent when not growing. */
  secondsToExhaustion?: number;
}

export type ThreadLimitSource =
  | 'pids.max'
  | 'RLIMIT_NPROC'
  | 'go-max-threads'
  | 'kernel.threads-max'
  | 'kernel.pid_max';
export const THREAD_LIMIT_SOURCES: readonly ThreadLimitSource[] = [
  'pids.max', 'RLIMIT_NPROC', 'go-max-threads', 'kernel.threads-max', 'kernel.pid_max',
];

export interface ThreadRuntime {
  level: PressureLevel;
  threads: number;
  limit: number;
  percent: number;
  bindingLimit: ThreadLimitSource;
  growthPerMinute?: number;
  secondsToExhaustion?: number;
}

export interface ListenerRuntime {
  port: number;
  acceptQueue: number;
  backlog?: number;
}

export interface ListenQueueRuntime {
  level: PressureLevel;
  overflowsPerMinute: number;
  dropsPerMinute: number;
  reqQFullDropsPerMinute?: number;
  reqQFullCookiesPerMinute?: number;
  syncookiesSentPerMinute?: number;
  timeWait?: number;
  somaxconn?: number;
  listeners?: ListenerRuntime[];
}

export interface CPURuntime {
  container?: string;
  quotaCores?: number;
  throttledPercent?: number;
}

export type GOMAXPROCSSource = 'pod-spec' | 'environ' | 'go-default' | 'automaxprocs';
export const GOMAXPROCS_SOURCES: readonly GOMAXPROCSSource[] = ['pod-spec', 'environ', 'go-default', 'automaxprocs'];

export interface GoRuntime {
  container?: string;
  goVersion?: string;
  effectiveGOMAXPROCS?: number;
  source?: GOMAXPROCSSource;
  quotaCores?: number;
  mismatch?: boolean;
}

export type CrashClass = 'fd-exhaustion' | 'thread-exhaustion' | 'go-thread-limit' | 'deadlock' | 'oom-killed' | 'other';
export const CRASH_CLASSES: readonly CrashClass[] = [
  'fd-exhaustion', 'thread-exhaustion', 'go-thread-limit', 'deadlock', 'oom-killed', 'other',
];

export interface CrashRuntime {
  container: string;
  exitCode?: number;
  class: CrashClass;
  /** The matched log line with paths redacted, ≤ REPORT_LIMITS.signature characters. */
  signature?: string;
  time?: string;
}

export interface ReportRuntime {
  observedTime?: string;
  fileDescriptors?: FileDescriptorRuntime;
  threads?: ThreadRuntime;
  listenQueue?: ListenQueueRuntime;
  cpu?: CPURuntime[];
  go?: GoRuntime[];
  lastCrash?: CrashRuntime;
}

/** What `kubectl get ccr` prints; written by the agent. Numbers are integers (printer columns). */
export interface ReportSummary {
  level: PressureLevel;
  /** `9.8k/64k`, banded so a small change does not cause a write; ≤ 16 characters. */
  fds?: string;
  fdPercent?: number;
  threads?: number;
  dropsPerMinute?: number;
}

export interface ConcurrencyReportSpec {
  podName: string;
  podUID: string;
  nodeName?: string;
}

/**
 * A report's conditions carry no observedGeneration: what they observe is the running pod, not the
 * report's spec, and the field would cost 300 bytes of the 8 KiB (the API server would prune it).
 */
export type ReportCondition = Omit<Condition, 'observedGeneration'>;

export interface ConcurrencyReportStatus {
  conditions?: ReportCondition[];
  audit?: ReportAudit;
  runtime?: ReportRuntime;
  summary?: ReportSummary;
}

export interface ConcurrencyReport {
  apiVersion: typeof API_VERSION;
  kind: typeof REPORT_KIND;
  metadata: ObjectMeta;
  spec: ConcurrencyReportSpec;
  status?: ConcurrencyReportStatus;
}

/** Condition types and who owns them. */
export const CONDITION_POLICY_COMPLIANT = 'PolicyCompliant';
export const AGENT_CONDITIONS = [
  'FileDescriptorPressure',
  'ThreadPressure',
  'ListenQueuePressure',
  'GOMAXPROCSMismatch',
] as const;
export type AgentConditionType = (typeof AGENT_CONDITIONS)[number];
/** Every condition type a report may carry (the CRD's enum). */
export const REPORT_CONDITIONS = [CONDITION_POLICY_COMPLIANT, ...AGENT_CONDITIONS] as const;
export const CONDITION_POLICY_READY = 'Ready';

/**
 * The webhook replicas' Leases: the contract between the webhook, which announces the policy generations
 * each replica serves, and the controller, which sets a policy Ready only when every replica serves it.
 */
export const WEBHOOK_LEASE_PREFIX = 'concurrency-guard-webhook-';
/** Lease label selecting every replica's Lease (the controller lists by it). */
export const WEBHOOK_LEASE_LABEL = `${GROUP}/webhook-lease`;
/** Lease annotation: a JSON object, policy name → metadata.generation served. */
export const SERVED_GENERATIONS_ANNOTATION = `${GROUP}/served-policy-generations`;

/** Namespaces never evaluated, blocked or reported (plus the operator's own, given at run time). */
export const ALWAYS_EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-node-lease'];

/** Every namespace a role never evaluates, blocks or reports: the always-excluded ones and its own. */
export function excludedNamespaces(ownNamespace: string, extra: readonly string[] = []): string[] {
  return [...new Set([...ALWAYS_EXCLUDED_NAMESPACES, ownNamespace, ...extra])];
}
