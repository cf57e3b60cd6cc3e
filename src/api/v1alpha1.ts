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
export type PressureLevel = 'OK' | 'Warning' | 'Critical';
export const PRESSURE_RANK: Readonly<Record<PressureLevel, number>> = { OK: 0, Warning: 1, Critical: 2 };

// ---- Kubernetes shapes we embed (kept minimal on purpose: importing client-node's model costs RSS) ----

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
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

/** Bounds that keep the worst-case report under 8 KiB including managedFields. */
export const REPORT_LIMITS = {
  findings: 16,
  listeners: 8,
  topProcesses: 3,
  message: 256,
  containers: 8,
} as const;

export interface AuditFinding {
  rule: string;
  container?: string;
  enforcement: Enforcement;
  /** Short, ≤ 256 characters; names the value, the limit and the fix. */
  message: string;
  policies?: string[];
}

export interface ReportAudit {
  observedPodGeneration?: number;
  auditTime?: string;
  findings?: AuditFinding[];
}

export interface ProcessPressure {
  pid: number;
  comm: string;
  container?: string;
  count: number;
  limit: number;
}

export interface FileDescriptorRuntime {
  level: PressureLevel;
  open: number;
  limit: number;
  percent: number;
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

export interface GoRuntime {
  container?: string;
  goVersion?: string;
  effectiveGOMAXPROCS?: number;
  source?: 'pod-spec' | 'environ' | 'go-default' | 'automaxprocs';
  quotaCores?: number;
  mismatch?: boolean;
}

export interface CrashRuntime {
  container: string;
  exitCode?: number;
  class: 'fd-exhaustion' | 'thread-exhaustion' | 'go-thread-limit' | 'deadlock' | 'oom-killed' | 'other';
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

/** What `kubectl get ccr` prints; written by the agent. */
export interface ReportSummary {
  level: PressureLevel;
  /** `9.8k/64k`, banded so a small change does not cause a write. */
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

export interface ConcurrencyReportStatus {
  conditions?: Condition[];
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
export const CONDITION_POLICY_READY = 'Ready';

/** Namespaces never evaluated, blocked or reported (plus the operator's own, given at run time). */
export const ALWAYS_EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-node-lease'];
