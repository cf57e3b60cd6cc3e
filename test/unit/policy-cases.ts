// The rule catalogue as a table: every case is a manifest (or an admission request) with hand-written
// expected findings, `rule:enforcement`, no snapshots. Shared by test/unit/policy-cases.test.ts and
// test/e2e/check-fix.test.ts (which dry-runs the fixed manifests against a real API server).
import type { V1LimitRange, V1LimitRangeItem } from '@kubernetes/client-node';
import type { ConcurrencyPolicy, ConcurrencyPolicySpec } from '../../src/api/index.ts';
import type { AdmissionInput, Versions } from '../../src/policy/index.ts';

export interface PolicyCase {
  name: string;
  /** Sits exactly at an edge of a rule (the issue asks for at least 20 of these). */
  boundary?: boolean;
  object: Record<string, unknown>;
  /** Replaces the default policy. */
  policies?: ConcurrencyPolicySpec[];
  namespaceLabels?: Record<string, string>;
  limitRanges?: V1LimitRange[];
  versions?: Versions;
  admission?: Partial<Omit<AdmissionInput, 'object' | 'kind'>>;
  /** Sorted `rule:enforcement` of every finding. */
  expect: string[];
  /** Not a valid object for today's API server (e.g. KEP-5758 fields): skipped by the dry run. */
  notForApiServer?: boolean;
}

export const DEFAULT_POLICY: ConcurrencyPolicySpec = {
  enforcement: 'Deny',
  gomaxprocs: { maxOverCPULimit: 0 },
  ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Ignore' },
  sysctls: { allowedUnsafe: ['net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog'], minimums: { 'net.core.somaxconn': 4096 } },
};

export function policyObjects(specs: readonly ConcurrencyPolicySpec[]): ConcurrencyPolicy[] {
  return specs.map((spec, index) => ({
    apiVersion: 'concurrencyguard.io/v1alpha1',
    kind: 'ConcurrencyPolicy',
    metadata: { name: `policy-${index}`, generation: 1 },
    spec,
  }));
}

// ---- builders ----

type Env = Record<string, unknown>;

interface ContainerOptions {
  cpu?: string;
  request?: string;
  env?: Env[];
  envFrom?: Env[];
  command?: string[];
  args?: string[];
  image?: string;
  securityContext?: Record<string, unknown>;
}

export function container(name: string, options: ContainerOptions = {}): Record<string, unknown> {
  const c: Record<string, unknown> = { name, image: options.image ?? 'registry.example/app:1' };
  if (options.command) c.command = options.command;
  if (options.args) c.args = options.args;
  if (options.env) c.env = options.env;
  if (options.envFrom) c.envFrom = options.envFrom;
  const limits = options.cpu !== undefined ? { cpu: options.cpu } : undefined;
  const requests = options.request !== undefined ? { cpu: options.request } : undefined;
  if (limits || requests) c.resources = { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) };
  if (options.securityContext) c.securityContext = options.securityContext;
  return c;
}

const literal = (name: string, value: string): Env => ({ name, value });
const fromCpu = (divisor?: string, resource = 'limits.cpu', containerName?: string): Env => ({
  name: 'GOMAXPROCS',
  valueFrom: { resourceFieldRef: { resource, ...(divisor !== undefined ? { divisor } : {}), ...(containerName ? { containerName } : {}) } },
});
const fromConfigMap = (name: string): Env => ({ name, valueFrom: { configMapKeyRef: { name: 'settings', key: name.toLowerCase() } } });
const gmp = (value: string): Env => literal('GOMAXPROCS', value);

interface PodOptions {
  annotations?: Record<string, string>;
  sysctls?: [string, string][];
  hostNetwork?: boolean;
  hostIPC?: boolean;
  hostUsers?: boolean;
  podCpu?: string;
  initContainers?: Record<string, unknown>[];
  ephemeralContainers?: Record<string, unknown>[];
  runAsUser?: number;
  ownerReferences?: Record<string, unknown>[];
  namespace?: string;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
}

function podSpec(containers: Record<string, unknown>[], options: PodOptions): Record<string, unknown> {
  const spec: Record<string, unknown> = { containers };
  if (options.initContainers) spec.initContainers = options.initContainers;
  if (options.ephemeralContainers) spec.ephemeralContainers = options.ephemeralContainers;
  const security: Record<string, unknown> = {};
  if (options.sysctls) security.sysctls = options.sysctls.map(([name, value]) => ({ name, value }));
  if (options.runAsUser !== undefined) security.runAsUser = options.runAsUser;
  if (Object.keys(security).length > 0) spec.securityContext = security;
  if (options.hostNetwork) spec.hostNetwork = true;
  if (options.hostIPC) spec.hostIPC = true;
  if (options.hostUsers !== undefined) spec.hostUsers = options.hostUsers;
  if (options.podCpu) spec.resources = { limits: { cpu: options.podCpu } };
  return spec;
}

let serial = 0;

export function pod(containers: Record<string, unknown>[], options: PodOptions = {}): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name: `case-${++serial}`, namespace: options.namespace ?? 'default' };
  if (options.labels) metadata.labels = options.labels;
  if (options.annotations) metadata.annotations = options.annotations;
  if (options.ownerReferences) metadata.ownerReferences = options.ownerReferences;
  if (options.deletionTimestamp) metadata.deletionTimestamp = options.deletionTimestamp;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: podSpec(containers, options) };
}

export function deployment(containers: Record<string, unknown>[], options: PodOptions = {}): Record<string, unknown> {
  const labels = { app: `case-${++serial}`, ...options.labels };
  const template: Record<string, unknown> = { metadata: { labels, ...(options.annotations ? { annotations: options.annotations } : {}) }, spec: podSpec(containers, options) };
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: `case-${serial}`, namespace: options.namespace ?? 'default' },
    spec: { selector: { matchLabels: labels }, template },
  };
}

function cronJob(containers: Record<string, unknown>[]): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: `case-${++serial}`, namespace: 'default' },
    spec: { schedule: '0 * * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers } } } } },
  };
}

function job(containers: Record<string, unknown>[], ownerReferences?: Record<string, unknown>[]): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: `case-${++serial}`, namespace: 'default', ...(ownerReferences ? { ownerReferences } : {}) },
    spec: { template: { spec: { restartPolicy: 'Never', containers } } },
  };
}

function replicaSet(containers: Record<string, unknown>[], ownerReferences?: Record<string, unknown>[]): Record<string, unknown> {
  const labels = { app: `case-${++serial}` };
  return {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: `case-${serial}`, namespace: 'default', ...(ownerReferences ? { ownerReferences } : {}) },
    spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers } } },
  };
}

const owner = (kind: string, apiVersion = 'apps/v1'): Record<string, unknown> => ({ apiVersion, kind, name: 'parent', uid: '6b1f7a8e-0000-4000-8000-000000000001', controller: true });

const limitRange = (cpu: string): V1LimitRange => ({
  apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'defaults', namespace: 'default' },
  // Raw JSON shape (`default`), as the API server and YAML files spell it; client-node's type says `_default`.
  spec: { limits: [{ type: 'Container', default: { cpu }, defaultRequest: { cpu } } as unknown as V1LimitRangeItem] },
});

const nri = (containerName: string, yaml: string, legacy = false): Record<string, string> => ({
  [`${legacy ? 'ulimits.nri.containerd.io' : 'ulimits.noderesource.dev'}/container.${containerName}`]: yaml,
});
const nofileNri = (soft: number | undefined, hard: number | undefined, type = 'RLIMIT_NOFILE'): string =>
  `- type: ${type}\n${soft !== undefined ? `  soft: ${soft}\n` : ''}${hard !== undefined ? `  hard: ${hard}\n` : ''}`;

const sh = (script: string, shell = 'sh'): string[] => [shell, '-c', script];
const nonRoot = { runAsUser: 1000 };
const root = { runAsUser: 0 };

const GOOD = { cpu: '2', env: [gmp('2')] };

// ---- the cases ----

export const CASES: PolicyCase[] = [
  // GOMAXPROCS: literal against ceil(limits.cpu) + maxOverCPULimit
  { name: 'literal equal to ceil(limit)', boundary: true, object: pod([container('app', GOOD)]), expect: [] },
  { name: 'literal one above ceil(limit)', boundary: true, object: pod([container('app', { cpu: '2', env: [gmp('3')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'literal equal to ceil(limit)+maxOverCPULimit', boundary: true, policies: [{ ...DEFAULT_POLICY, gomaxprocs: { maxOverCPULimit: 1 } }], object: pod([container('app', { cpu: '2', env: [gmp('3')] })]), expect: [] },
  { name: 'literal one above ceil(limit)+maxOverCPULimit', boundary: true, policies: [{ ...DEFAULT_POLICY, gomaxprocs: { maxOverCPULimit: 1 } }], object: pod([container('app', { cpu: '2', env: [gmp('4')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'limit 1000m, GOMAXPROCS=1', boundary: true, object: pod([container('app', { cpu: '1000m', env: [gmp('1')] })]), expect: [] },
  { name: 'limit 1000m, GOMAXPROCS=2', boundary: true, object: pod([container('app', { cpu: '1000m', env: [gmp('2')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'limit 1001m rounds up: GOMAXPROCS=2 fits', boundary: true, object: pod([container('app', { cpu: '1001m', env: [gmp('2')] })]), expect: [] },
  { name: 'limit 1001m, GOMAXPROCS=3', boundary: true, object: pod([container('app', { cpu: '1001m', env: [gmp('3')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'limit 1.5 (number in YAML), GOMAXPROCS=2', object: pod([container('app', { cpu: '1.5', env: [gmp('2')] })]), expect: [] },
  { name: 'GOMAXPROCS=0', object: pod([container('app', { cpu: '2', env: [gmp('0')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'GOMAXPROCS=abc', object: pod([container('app', { cpu: '2', env: [gmp('abc')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'GOMAXPROCS=-1', object: pod([container('app', { cpu: '2', env: [gmp('-1')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'GOMAXPROCS=+2 (Go atoi rejects the sign)', boundary: true, object: pod([container('app', { cpu: '2', env: [gmp('+2')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'GOMAXPROCS=02 reads as 2', object: pod([container('app', { cpu: '2', env: [gmp('02')] })]), expect: [] },
  { name: 'GOMAXPROCS empty string', object: pod([container('app', { cpu: '2', env: [gmp('')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'GOMAXPROCS=abc without any CPU figure', object: pod([container('app', { env: [gmp('abc')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },

  // resourceFieldRef
  { name: 'resourceFieldRef limits.cpu, divisor 1', object: pod([container('app', { cpu: '2', env: [fromCpu('1')] })]), expect: [] },
  { name: 'resourceFieldRef divisor 1m', object: pod([container('app', { cpu: '2', env: [fromCpu('1m')] })]), expect: ['gomaxprocs/divisor-millicores:Deny'] },
  { name: 'resourceFieldRef divisor "0" means 1', boundary: true, object: pod([container('app', { cpu: '2', env: [fromCpu('0')] })]), expect: [] },
  { name: 'resourceFieldRef divisor "1000m" prints as 1', boundary: true, object: pod([container('app', { cpu: '2', env: [fromCpu('1000m')] })]), expect: [] },
  { name: 'resourceFieldRef divisor unset', object: pod([container('app', { cpu: '2', env: [fromCpu()] })]), expect: [] },
  { name: 'resourceFieldRef divisor "0.001" is 1m', boundary: true, object: pod([container('app', { cpu: '2', env: [fromCpu('0.001')] })]), expect: ['gomaxprocs/divisor-millicores:Deny'] },
  { name: 'resourceFieldRef divisor "2" is rejected by the API server', object: pod([container('app', { cpu: '2', env: [fromCpu('2')] })]), expect: ['gomaxprocs/divisor-rejected:Deny'], notForApiServer: true },
  { name: 'resourceFieldRef divisor "01" prints as itself and is rejected', boundary: true, object: pod([container('app', { cpu: '2', env: [fromCpu('01')] })]), expect: ['gomaxprocs/divisor-rejected:Deny'], notForApiServer: true },
  { name: 'resourceFieldRef limits.memory', object: pod([container('app', { cpu: '2', env: [fromCpu(undefined, 'limits.memory')] })]), expect: ['gomaxprocs/resource-not-cpu:Deny'] },
  { name: 'resourceFieldRef requests.memory without a CPU limit: no fix', object: pod([container('app', { env: [fromCpu(undefined, 'requests.memory')] })]), expect: ['gomaxprocs/resource-not-cpu:Deny'] },
  { name: 'resourceFieldRef limits.cpu, no CPU limit anywhere', object: pod([container('app', { env: [fromCpu('1')] })]), expect: ['gomaxprocs/ref-without-cpu-limit:Deny'] },
  { name: 'resourceFieldRef limits.cpu, only a pod-level limit', object: pod([container('app', { env: [fromCpu('1')] })], { podCpu: '2' }), expect: ['gomaxprocs/ref-without-cpu-limit:Deny'], notForApiServer: true },
  { name: 'resourceFieldRef to a bigger sibling container', object: pod([container('app', { cpu: '2', env: [fromCpu('1', 'limits.cpu', 'big')] }), container('big', { cpu: '4', env: [gmp('4')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'literal with no limit, above the request', object: pod([container('app', { request: '2', env: [gmp('4')] })]), expect: ['gomaxprocs/above-cpu-request:Warn'] },
  { name: 'literal with no limit, equal to the request', boundary: true, object: pod([container('app', { request: '2', env: [gmp('2')] })]), expect: [] },
  { name: 'literal with neither limit nor request', object: pod([container('app', { env: [gmp('4')] })]), expect: [] },
  { name: 'GOMAXPROCS from a ConfigMap', object: pod([container('app', { cpu: '2', env: [fromConfigMap('GOMAXPROCS')] })]), expect: ['gomaxprocs/unverifiable:Warn'] },
  { name: 'GOMAXPROCS from a Secret', object: pod([container('app', { cpu: '2', env: [{ name: 'GOMAXPROCS', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] })]), expect: ['gomaxprocs/unverifiable:Warn'] },
  { name: 'envFrom may define GOMAXPROCS: nothing knowable', object: pod([container('app', { cpu: '500m', envFrom: [{ configMapRef: { name: 'settings' } }] })]), expect: [] },

  // env resolution as the kubelet does it
  { name: 'duplicate env: the last (2) wins', boundary: true, object: pod([container('app', { cpu: '2', env: [gmp('8'), gmp('2')] })]), expect: [] },
  { name: 'duplicate env: the last (8) wins', boundary: true, object: pod([container('app', { cpu: '2', env: [gmp('2'), gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: '$(CPUS) defined before expands', boundary: true, object: pod([container('app', { cpu: '2', env: [literal('CPUS', '8'), gmp('$(CPUS)')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: '$(CPUS) defined after stays literal', boundary: true, object: pod([container('app', { cpu: '2', env: [gmp('$(CPUS)'), literal('CPUS', '2')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: '$$(CPUS) is an escaped literal', boundary: true, object: pod([container('app', { cpu: '2', env: [literal('CPUS', '2'), gmp('$$(CPUS)')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: '$(CPUS) from a ConfigMap is unknowable', boundary: true, object: pod([container('app', { cpu: '2', env: [fromConfigMap('CPUS'), gmp('$(CPUS)')] })]), expect: ['gomaxprocs/unverifiable:Warn'] },
  { name: '$(CPUS) from resourceFieldRef resolves', object: pod([container('app', { cpu: '2', env: [{ name: 'CPUS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } }, gmp('$(CPUS)')] })]), expect: [] },
  { name: '$(UNDEFINED) with envFrom present is unknowable', object: pod([container('app', { cpu: '2', envFrom: [{ configMapRef: { name: 'settings' } }], env: [gmp('$(CPUS)')] })]), expect: ['gomaxprocs/unverifiable:Warn'] },
  { name: '$(X_SERVICE_PORT) may be a Service variable: unknowable', object: pod([container('app', { cpu: '2', env: [gmp('$(CACHE_SERVICE_PORT)')] })]), expect: ['gomaxprocs/unverifiable:Warn'] },
  { name: '$(X_SERVICE_PORT) with enableServiceLinks false stays literal', object: { ...pod([container('app', { cpu: '2', env: [gmp('$(CACHE_SERVICE_PORT)')] })]), spec: { enableServiceLinks: false, containers: [container('app', { cpu: '2', env: [gmp('$(CACHE_SERVICE_PORT)')] })] } }, expect: ['gomaxprocs/not-positive-integer:Deny'] },
  { name: 'env beats envFrom', object: pod([container('app', { cpu: '2', envFrom: [{ configMapRef: { name: 'settings' } }], env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'envFrom prefix that cannot produce GOMAXPROCS', object: pod([container('app', { cpu: '2', envFrom: [{ prefix: 'APP_', configMapRef: { name: 'settings' } }], env: [gmp('$(CPUS)')] })]), expect: ['gomaxprocs/not-positive-integer:Deny'] },

  // GOMAXPROCS unset
  { name: 'GODEBUG containermaxprocs=0 with a limit', object: pod([container('app', { cpu: '2', env: [literal('GODEBUG', 'containermaxprocs=0')] })]), expect: ['gomaxprocs/containermaxprocs-off:Warn'] },
  { name: 'GODEBUG containermaxprocs=0 among others, GOMAXPROCS set', object: pod([container('app', { cpu: '2', env: [literal('GODEBUG', 'http2client=0,containermaxprocs=0'), gmp('2')] })]), expect: [] },
  { name: 'GODEBUG containermaxprocs=0 with other settings, no limit', object: pod([container('app', { env: [literal('GODEBUG', 'http2client=0,containermaxprocs=0')] })]), expect: [] },
  { name: 'GODEBUG containermaxprocs=0 among others, limit 4', object: pod([container('app', { cpu: '4', env: [literal('GODEBUG', 'http2client=0,containermaxprocs=0')] })]), expect: ['gomaxprocs/containermaxprocs-off:Warn'] },
  { name: 'limit exactly one core, GOMAXPROCS unset', boundary: true, object: pod([container('app', { cpu: '1' })]), expect: ['gomaxprocs/limit-at-most-one-core:Warn'] },
  { name: 'limit 1001m, GOMAXPROCS unset', boundary: true, object: pod([container('app', { cpu: '1001m' })]), expect: [] },
  { name: 'limit 500m, GOMAXPROCS unset', object: pod([container('app', { cpu: '500m' })]), expect: ['gomaxprocs/limit-at-most-one-core:Warn'] },
  { name: 'only a pod-level CPU limit', object: pod([container('app')], { podCpu: '4' }), expect: ['gomaxprocs/pod-level-limit-only:Warn'], notForApiServer: true },

  // LimitRange defaults, templates, kinds, containers
  { name: 'Pod with LimitRange default 4, GOMAXPROCS=8', object: pod([container('app', { env: [gmp('8')] })]), limitRanges: [limitRange('4')], expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'Deployment relying on a LimitRange default is only warned', object: deployment([container('app', { env: [gmp('8')] })]), limitRanges: [limitRange('4')], expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'Deployment with its own limit', object: deployment([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'Deployment, LimitRange default 4, GOMAXPROCS=4', object: deployment([container('app', { env: [gmp('4')] })]), limitRanges: [limitRange('4')], expect: [] },
  { name: 'CronJob template', object: cronJob([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'init container', object: pod([container('app', GOOD)], { initContainers: [container('init', { cpu: '1', env: [gmp('8')] })] }), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'policy enforcement Warn', policies: [{ ...DEFAULT_POLICY, enforcement: 'Warn' }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'family enforcement overrides the policy', policies: [{ ...DEFAULT_POLICY, enforcement: 'Audit', gomaxprocs: { maxOverCPULimit: 0, enforcement: 'Deny' } }], object: pod([container('app', { cpu: '2', env: [gmp('8')], securityContext: { capabilities: { add: ['SYS_RESOURCE'] }, runAsUser: 1000 } })]), expect: ['gomaxprocs/above-cpu-limit:Deny', 'ulimits/sys-resource-ineffective:Audit'] },
  { name: 'only the policy whose parameters are exceeded raises it', boundary: true, policies: [{ enforcement: 'Audit', gomaxprocs: { maxOverCPULimit: 0 } }, { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 2 } }], object: pod([container('app', { cpu: '2', env: [gmp('4')] })]), expect: ['gomaxprocs/above-cpu-limit:Audit'] },
  { name: 'strictest enforcement among policies raising it', policies: [{ enforcement: 'Warn', gomaxprocs: {} }, { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 1 } }], object: pod([container('app', { cpu: '2', env: [gmp('4')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },

  // ulimits: NRI annotations
  { name: 'NRI nofile at the floor', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 65536)) }), expect: [] },
  { name: 'NRI nofile one below the floor', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65535, 65536)) }), expect: ['ulimits/nofile-below-floor:Deny'] },
  { name: 'NRI type lowercase without prefix (nofile)', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 65536, 'nofile')) }), expect: [] },
  { name: 'NRI type mixed case RLIMIT_ prefix', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(1024, 65536, 'Rlimit_NoFile')) }), expect: ['ulimits/nofile-below-floor:Deny'] },
  { name: 'NRI legacy annotation key', object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 65536), true) }), expect: [] },
  { name: 'NRI missing hard reads as 0', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, undefined)) }), expect: ['ulimits/hard-below-soft:Deny'] },
  { name: 'NRI missing soft reads as 0', object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(undefined, 65536)) }), expect: ['ulimits/nofile-below-floor:Deny'] },
  { name: 'NRI hard above fs.nr_open', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 1048577)) }), expect: ['ulimits/above-nr-open:Deny'] },
  { name: 'NRI hard exactly fs.nr_open', boundary: true, object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 1048576)) }), expect: [] },
  { name: 'NRI unknown type', object: pod([container('app', GOOD)], { annotations: nri('app', nofileNri(65536, 65536, 'files')) }), expect: ['ulimits/nri-invalid:Deny'] },
  { name: 'NRI not a list', object: pod([container('app', GOOD)], { annotations: nri('app', 'nofile: 65536') }), expect: ['ulimits/nri-invalid:Deny'] },
  { name: 'NRI quoted number', object: pod([container('app', GOOD)], { annotations: nri('app', '- type: nofile\n  soft: "65536"\n  hard: 65536\n') }), expect: ['ulimits/nri-invalid:Deny'] },
  { name: 'NRI annotation names no container', object: pod([container('app', GOOD)], { annotations: nri('ap', nofileNri(65536, 65536)) }), expect: ['ulimits/nri-unknown-container:Warn'] },
  { name: 'NRI nproc as a non-root UID', object: pod([container('app', { ...GOOD, securityContext: nonRoot })], { annotations: nri('app', `${nofileNri(65536, 65536)}- type: nproc\n  soft: 4096\n  hard: 4096\n`) }), expect: ['ulimits/nproc-shared-uid:Warn'] },
  { name: 'NRI nproc with hostUsers false', object: pod([container('app', { ...GOOD, securityContext: nonRoot })], { hostUsers: false, annotations: nri('app', `${nofileNri(65536, 65536)}- type: nproc\n  soft: 4096\n  hard: 4096\n`) }), expect: [], notForApiServer: true },
  { name: 'nproc below minPerCPU × CPUs', policies: [{ ...DEFAULT_POLICY, ulimits: { nproc: { minPerCPU: 1024 } } }], object: pod([container('app', { ...GOOD, securityContext: root })], { annotations: nri('app', '- type: nproc\n  soft: 1000\n  hard: 1000\n') }), expect: ['ulimits/nproc-below-floor:Deny'] },
  { name: 'nofile and nproc both below their floors in one NRI annotation', policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 65536 }, nproc: { minPerCPU: 1024 } } }], object: pod([container('app', { ...GOOD, securityContext: root })], { annotations: nri('app', `${nofileNri(1024, 65536)}- type: nproc\n  soft: 100\n  hard: 100\n`) }), expect: ['ulimits/nofile-below-floor:Deny', 'ulimits/nproc-below-floor:Deny'] },
  { name: 'nofile minPerCPU × ceil(limit)', policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 1024, minPerCPU: 32768 } } }], object: pod([container('app', { cpu: '3', env: [gmp('3')] })], { annotations: nri('app', nofileNri(65536, 131072)) }), expect: ['ulimits/nofile-below-floor:Deny'] },

  // ulimits: undeclared
  { name: 'undeclared, onUndeclared Warn', policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn' } }], object: pod([container('app', GOOD)]), expect: ['ulimits/nofile-undeclared:Warn'] },
  { name: 'undeclared, onUndeclared Ignore', object: pod([container('app', GOOD)]), expect: [] },
  { name: 'undeclared, runtime default already above the floor', policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn', runtimeDefaults: { nofile: { soft: 1048576, hard: 1048576 } } } }], object: pod([container('app', GOOD)]), expect: [] },
  { name: 'undeclared Deployment gets the annotation on its template', policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn' } }], object: deployment([container('app', GOOD)], { annotations: { team: 'a' } }), expect: ['ulimits/nofile-undeclared:Warn'] },

  // ulimits: securityContext (KEP-5758, not in the 1.37 API)
  { name: 'securityContext.ulimits nofile at the floor', object: pod([container('app', { ...GOOD, securityContext: { ulimits: [{ name: 'nofile', soft: 65536, hard: 65536 }] } })]), expect: [], notForApiServer: true },
  { name: 'securityContext.ulimits hard below soft', object: pod([container('app', { ...GOOD, securityContext: { ulimits: [{ name: 'nofile', soft: 100000, hard: 65536 }] } })]), expect: ['ulimits/hard-below-soft:Deny'], notForApiServer: true },

  // ulimits: shell dialects
  { name: 'bash: ulimit -n 65536 within the hard limit', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 65536; exec app', 'bash'), securityContext: nonRoot })]), expect: [] },
  { name: 'bash: ulimit -n above the hard limit as UID 1000', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 1048576; exec app', 'bash'), securityContext: nonRoot })]), expect: ['ulimits/nofile-below-floor:Deny', 'ulimits/shell-hard-raise-eperm:Deny'] },
  { name: 'bash: the same under a runtime whose default hard limit is 1048576', boundary: true, policies: [{ ...DEFAULT_POLICY, ulimits: { nofile: { minSoft: 65536 }, runtimeDefaults: { nofile: { soft: 1024, hard: 1048576 } } } }], object: pod([container('app', { ...GOOD, command: sh('ulimit -n 1048576; exec app', 'bash'), securityContext: nonRoot })]), expect: [] },
  { name: 'bash: the same as root succeeds', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 1048576; exec app', 'bash'), securityContext: root })]), expect: [] },
  { name: 'bash: the same with runAsUser unset only warns', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 1048576; exec app', 'bash') })]), expect: ['ulimits/nofile-below-floor:Warn', 'ulimits/shell-hard-raise-eperm:Warn'] },
  { name: 'bash: root with capabilities drop ALL cannot raise hard', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 1048576; exec app', 'bash'), securityContext: { runAsUser: 0, capabilities: { drop: ['ALL'] } } })]), expect: ['ulimits/nofile-below-floor:Deny', 'ulimits/shell-hard-raise-eperm:Deny'] },
  { name: 'ulimit -Sn raises only the soft limit', object: pod([container('app', { ...GOOD, command: sh('ulimit -Sn 65536 && exec app'), securityContext: nonRoot })]), expect: [] },
  { name: 'set -e: the failed ulimit stops the script', object: pod([container('app', { ...GOOD, command: sh('set -e; ulimit -n 2000000; exec app', 'bash'), securityContext: nonRoot })]), expect: ['ulimits/nofile-below-floor:Deny', 'ulimits/shell-above-nr-open:Deny'] },
  { name: 'dash: ulimit -u is an illegal option', boundary: true, object: pod([container('app', { ...GOOD, image: 'debian:bookworm', command: sh('ulimit -u 4096; ulimit -n 65536; exec app'), securityContext: root })]), expect: ['ulimits/shell-unsupported:Deny'] },
  { name: 'bash: ulimit -u sets processes', boundary: true, object: pod([container('app', { ...GOOD, command: sh('ulimit -u 4096; ulimit -n 65536; exec app', 'bash'), securityContext: root })]), expect: [] },
  { name: 'BusyBox ash: ulimit -u sets processes', boundary: true, object: pod([container('app', { ...GOOD, image: 'alpine:3.20', command: sh('ulimit -u 4096; ulimit -n 65536; exec app'), securityContext: root })]), expect: [] },
  { name: 'BusyBox ash: ulimit -p is an invalid option', boundary: true, object: pod([container('app', { ...GOOD, image: 'busybox:1.36', command: sh('ulimit -p 4096; ulimit -n 65536; exec app'), securityContext: root })]), expect: ['ulimits/shell-unsupported:Deny'] },
  { name: 'dash: ulimit -p sets processes (nproc, shared UID)', boundary: true, object: pod([container('app', { ...GOOD, image: 'ubuntu:24.04', command: sh('ulimit -p 4096; ulimit -n 65536; exec app'), securityContext: nonRoot })]), expect: ['ulimits/nproc-shared-uid:Warn'] },
  { name: 'bash: ulimit -p is the pipe size and cannot be set', boundary: true, object: pod([container('app', { ...GOOD, command: sh('ulimit -p 4096; ulimit -n 65536; exec app', 'bash'), securityContext: root })]), expect: ['ulimits/shell-unsupported:Deny'] },
  { name: 'sh of an unknown image: -u fails only in dash', boundary: true, object: pod([container('app', { ...GOOD, command: sh('ulimit -u 4096; ulimit -n 65536; exec app'), securityContext: root })]), expect: ['ulimits/shell-unsupported:Warn'] },
  { name: 'dash: two limits in one call are too many arguments', boundary: true, object: pod([container('app', { ...GOOD, image: 'debian:bookworm-slim', command: sh('ulimit -n 65536 -u 4096; exec app'), securityContext: root })]), expect: ['ulimits/nofile-below-floor:Deny', 'ulimits/shell-unsupported:Deny'] },
  { name: 'dash: a redirection is not an argument', object: pod([container('app', { ...GOOD, image: 'debian:bookworm', command: sh('ulimit -n 65536 2>/dev/null; exec app'), securityContext: nonRoot })]), expect: [] },
  { name: 'bash: two limits in one call work', object: pod([container('app', { ...GOOD, command: sh('ulimit -n 65536 -u 4096; exec app', 'bash'), securityContext: root })]), expect: [] },
  { name: '${NOFILE:-65536} with NOFILE unset', boundary: true, object: pod([container('app', { ...GOOD, command: sh('ulimit -n ${NOFILE:-65536}; exec app'), securityContext: nonRoot })]), expect: [] },
  { name: '${NOFILE:-65536} with NOFILE empty uses the default', boundary: true, object: pod([container('app', { ...GOOD, env: [gmp('2'), literal('NOFILE', '')], command: sh('ulimit -n ${NOFILE:-65536}; exec app'), securityContext: nonRoot })]), expect: [] },
  { name: '${NOFILE:-65536} with NOFILE=4096 from env', boundary: true, object: pod([container('app', { ...GOOD, env: [gmp('2'), literal('NOFILE', '4096')], command: sh('ulimit -n ${NOFILE:-65536}; exec app'), securityContext: nonRoot })]), expect: ['ulimits/nofile-below-floor:Deny'] },
  { name: '$NOFILE from a ConfigMap is unresolvable', object: pod([container('app', { ...GOOD, env: [gmp('2'), fromConfigMap('NOFILE')], command: sh('ulimit -n "$NOFILE"; exec app'), securityContext: nonRoot })]), expect: ['ulimits/shell-unresolved:Warn'] },
  { name: 'kubelet $(NOFILE) in the command expands from env', object: pod([container('app', { ...GOOD, env: [gmp('2'), literal('NOFILE', '65536')], command: sh('ulimit -n $(NOFILE); exec app'), securityContext: nonRoot })]), expect: [] },
  { name: 'shell variable assigned in the script', object: pod([container('app', { ...GOOD, command: sh('N=4096; ulimit -n $N; exec app'), securityContext: nonRoot })]), expect: ['ulimits/nofile-below-floor:Deny'] },
  { name: 'ulimit in a subshell changes nothing', object: pod([container('app', { ...GOOD, command: sh('(ulimit -n 4096); exec app'), securityContext: nonRoot })]), expect: [] },
  { name: 'SYS_RESOURCE added for a non-root user', object: pod([container('app', { ...GOOD, securityContext: { runAsUser: 1000, capabilities: { add: ['SYS_RESOURCE'] } } })]), expect: ['ulimits/sys-resource-ineffective:Warn'] },
  { name: 'NRI soft 65536 then the script lowers it', object: pod([container('app', { ...GOOD, command: sh('ulimit -Sn 1024; exec app', 'bash'), securityContext: nonRoot })], { annotations: nri('app', nofileNri(65536, 65536)) }), expect: ['ulimits/nofile-below-floor:Deny'] },

  // sysctls
  { name: 'somaxconn at the minimum', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['net.core.somaxconn', '4096']] }), expect: [] },
  { name: 'somaxconn one below the minimum', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['net.core.somaxconn', '4095']] }), expect: ['sysctls/below-minimum:Deny'] },
  { name: 'slash-separated name is normalised', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['net/core/somaxconn', '1024']] }), expect: ['sysctls/below-minimum:Deny'] },
  { name: 'fs.mqueue.* is namespaced but unsafe', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['fs.mqueue.msg_max', '64']] }), expect: ['sysctls/unsafe-not-allowed:Deny'] },
  { name: 'fs.mqueue.* allowed by a pattern', boundary: true, policies: [{ ...DEFAULT_POLICY, sysctls: { allowedUnsafe: ['fs.mqueue.*'] } }], object: pod([container('app', GOOD)], { sysctls: [['fs.mqueue.msg_max', '64']] }), expect: [] },
  { name: 'fs.file-max is not namespaced', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['fs.file-max', '1000000']] }), expect: ['sysctls/not-namespaced:Deny'] },
  { name: 'kernel.threads-max is not namespaced', object: pod([container('app', GOOD)], { sysctls: [['kernel.threads-max', '100000']] }), expect: ['sysctls/not-namespaced:Deny'] },
  { name: 'vm.max_map_count is not namespaced', object: pod([container('app', GOOD)], { sysctls: [['vm.max_map_count', '262144']] }), expect: ['sysctls/not-namespaced:Deny'] },
  { name: 'net.core.netdev_max_backlog is global even when net.* is allowed', policies: [{ ...DEFAULT_POLICY, sysctls: { allowedUnsafe: ['net.*'] } }], object: pod([container('app', GOOD)], { sysctls: [['net.core.netdev_max_backlog', '5000']] }), expect: ['sysctls/not-namespaced:Deny'] },
  { name: 'tcp_keepalive_time is safe on 1.37', object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_keepalive_time', '600']] }), expect: [] },
  { name: 'tcp_slow_start_after_idle is safe from 1.37', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_slow_start_after_idle', '0']] }), expect: [] },
  { name: 'tcp_notsent_lowat is unsafe on 1.36', boundary: true, versions: { kubernetesMinor: 36 }, object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_notsent_lowat', '16384']] }), expect: ['sysctls/unsafe-not-allowed:Deny'] },
  { name: 'user.* sysctl while sharing the node user namespace', policies: [{ ...DEFAULT_POLICY, sysctls: { allowedUnsafe: ['user.*'] } }], object: pod([container('app', GOOD)], { sysctls: [['user.max_user_namespaces', '100']] }), expect: ['sysctls/host-users:Deny'], notForApiServer: true },
  { name: 'kernel.domainname is namespaced (UTS) and allowed by name', policies: [{ ...DEFAULT_POLICY, sysctls: { allowedUnsafe: ['kernel.domainname'] } }], object: pod([container('app', GOOD)], { sysctls: [['kernel.domainname', 'example.com']] }), expect: [] },
  { name: 'kernel.hostname is not namespaced for the kubelet', object: pod([container('app', GOOD)], { sysctls: [['kernel.hostname', 'x']] }), expect: ['sysctls/not-namespaced:Deny'] },
  { name: 'tcp_rmem is unsafe before 1.32', versions: { kubernetesMinor: 31 }, object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_rmem', '4096 87380 6291456']] }), expect: ['sysctls/unsafe-not-allowed:Deny'] },
  { name: 'tcp_rmem is unsafe on a 4.14 kernel', versions: { kubernetesMinor: 37, kernel: [4, 14] }, object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_rmem', '4096 87380 6291456']] }), expect: ['sysctls/unsafe-not-allowed:Deny'] },
  { name: 'net.* sysctl with hostNetwork', object: pod([container('app', GOOD)], { hostNetwork: true, sysctls: [['net.core.somaxconn', '4096']] }), expect: ['sysctls/host-network:Deny'], notForApiServer: true },
  { name: 'IPC sysctl with hostIPC', object: pod([container('app', GOOD)], { hostIPC: true, sysctls: [['kernel.shm_rmid_forced', '1']] }), expect: ['sysctls/host-ipc:Deny'], notForApiServer: true },
  { name: 'tcp_max_syn_backlog below somaxconn', object: pod([container('app', GOOD)], { sysctls: [['net.core.somaxconn', '4096'], ['net.ipv4.tcp_max_syn_backlog', '1024']] }), expect: ['sysctls/syn-backlog-below-somaxconn:Warn'] },
  { name: 'tcp_max_syn_backlog equal to somaxconn', boundary: true, object: pod([container('app', GOOD)], { sysctls: [['net.core.somaxconn', '4096'], ['net.ipv4.tcp_max_syn_backlog', '4096']] }), expect: [] },
  { name: 'tcp_syncookies=0', object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_syncookies', '0']] }), expect: ['sysctls/syncookies-off:Warn'] },
  { name: 'kernel.shm_rmid_forced is safe', object: pod([container('app', GOOD)], { sysctls: [['kernel.shm_rmid_forced', '1']] }), expect: [] },
  { name: 'net.ipv4.* pattern allows tcp_max_orphans', policies: [{ ...DEFAULT_POLICY, sysctls: { allowedUnsafe: ['net.ipv4.*'] } }], object: pod([container('app', GOOD)], { sysctls: [['net.ipv4.tcp_max_orphans', '65536']] }), expect: [] },

  // where enforcement happens
  { name: 'Pod owned by a ReplicaSet is warned', object: pod([container('app', { cpu: '2', env: [gmp('8')] })], { ownerReferences: [owner('ReplicaSet')] }), expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'ReplicaSet owned by a Deployment is warned', object: replicaSet([container('app', { cpu: '2', env: [gmp('8')] })], [owner('Deployment')]), expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'Job that no controller owns is denied', object: job([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'Job of a CronJob is warned', object: job([container('app', { cpu: '2', env: [gmp('8')] })], [owner('CronJob', 'batch/v1')]), expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'UPDATE keeping an old violation is warned', object: deployment([container('app', { cpu: '2', env: [gmp('8')] })]), admission: { operation: 'UPDATE', oldObject: deployment([container('app', { cpu: '2', env: [gmp('8')] })]) }, expect: ['gomaxprocs/above-cpu-limit:Warn'] },
  { name: 'UPDATE adding a violation is denied', object: deployment([container('app', { cpu: '2', env: [gmp('8')] })]), admission: { operation: 'UPDATE', oldObject: deployment([container('app', GOOD)]) }, expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'being deleted: allowed without findings', object: pod([container('app', { cpu: '2', env: [gmp('8')] })], { deletionTimestamp: '2026-11-27T20:00:00Z' }), expect: [], notForApiServer: true },
  { name: 'ephemeral container is only warned', object: pod([container('app', GOOD)], { ephemeralContainers: [container('debugger', { env: [gmp('0')] })] }), admission: { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: pod([container('app', GOOD)]) }, expect: ['gomaxprocs/not-positive-integer:Warn'], notForApiServer: true },
  { name: 'resize below a literal GOMAXPROCS is denied even for a ReplicaSet pod', object: pod([container('app', { cpu: '1', env: [gmp('2')] })], { ownerReferences: [owner('ReplicaSet')] }), admission: { operation: 'UPDATE', subResource: 'resize', oldObject: pod([container('app', { cpu: '2', env: [gmp('2')] })], { ownerReferences: [owner('ReplicaSet')] }) }, expect: ['gomaxprocs/above-cpu-limit:Deny'], notForApiServer: true },
  { name: 'kube-system is never evaluated', object: pod([container('app', { cpu: '2', env: [gmp('8')] })], { namespace: 'kube-system' }), expect: [] },
  { name: 'namespaceSelector that does not match', policies: [{ ...DEFAULT_POLICY, match: { namespaceSelector: { matchLabels: { tier: 'prod' } } } }], namespaceLabels: { tier: 'dev' }, object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: [] },
  { name: 'namespaceSelector that matches', policies: [{ ...DEFAULT_POLICY, match: { namespaceSelector: { matchLabels: { tier: 'prod' } } } }], namespaceLabels: { tier: 'prod' }, object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'namespaceSelector on kubernetes.io/metadata.name', policies: [{ ...DEFAULT_POLICY, match: { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['default'] }] } } }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'exclude.namespaces', policies: [{ ...DEFAULT_POLICY, match: { exclude: { namespaces: ['default'] } } }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: [] },
  { name: 'exclude.podSelector matching', policies: [{ ...DEFAULT_POLICY, match: { exclude: { podSelector: { matchLabels: { legacy: 'true' } } } } }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })], { labels: { legacy: 'true' } }), expect: [] },
  { name: 'empty exclude.podSelector excludes nothing', boundary: true, policies: [{ ...DEFAULT_POLICY, match: { exclude: { namespaces: [], podSelector: {} } } }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'podSelector NotIn on the template labels', policies: [{ ...DEFAULT_POLICY, match: { podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['other'] }] } } }], object: deployment([container('app', { cpu: '2', env: [gmp('8')] })]), expect: ['gomaxprocs/above-cpu-limit:Deny'] },
  { name: 'podSelector DoesNotExist excludes labelled pods', policies: [{ ...DEFAULT_POLICY, match: { podSelector: { matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }] } } }], object: pod([container('app', { cpu: '2', env: [gmp('8')] })], { labels: { legacy: 'x' } }), expect: [] },
  { name: 'a ConfigMap is not ours', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { GOMAXPROCS: '64' } }, expect: [] },
];
