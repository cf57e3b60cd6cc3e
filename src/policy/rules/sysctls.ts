// sysctl rules: what the kernel can set per pod, what the kubelet allows (safe set by Kubernetes and
// kernel version, plus --allowed-unsafe-sysctls), host namespaces, and the values a policy requires.
// Patterns in allowedUnsafe are compiled once per policy generation (see ../compile.ts).
import type { Emit } from '../findings.ts';
import type { PodFacts, SysctlFacts } from '../facts.ts';

export const SYSCTL_RULES = {
  notNamespaced: 'sysctls/not-namespaced',
  unsafeNotAllowed: 'sysctls/unsafe-not-allowed',
  hostNetwork: 'sysctls/host-network',
  hostIPC: 'sysctls/host-ipc',
  hostUsers: 'sysctls/host-users',
  belowMinimum: 'sysctls/below-minimum',
  synBacklogBelowSomaxconn: 'sysctls/syn-backlog-below-somaxconn',
  syncookiesOff: 'sysctls/syncookies-off',
} as const;

const R = SYSCTL_RULES;

export interface SysctlParams {
  /** Compiled allowedUnsafe: exact names and `prefix*` patterns. */
  allowedExact: ReadonlySet<string>;
  allowedPrefixes: readonly string[];
  minimums: ReadonlyMap<string, number>;
}

export interface Versions {
  /** Kubernetes minor version (1.x) of the kubelets; the safe set grows with it. */
  kubernetesMinor: number;
  /** The nodes' kernel as [major, minor]; undefined means recent enough for every safe sysctl. */
  kernel?: readonly [number, number];
}

export const DEFAULT_VERSIONS: Versions = { kubernetesMinor: 37 };

interface SafeSysctl {
  name: string;
  sinceKubernetesMinor: number;
  kernel?: readonly [number, number];
}

// pkg/kubelet/sysctl/safe_sysctls.go
const SAFE_SYSCTLS: readonly SafeSysctl[] = [
  { name: 'kernel.shm_rmid_forced', sinceKubernetesMinor: 0 },
  { name: 'net.ipv4.ip_local_port_range', sinceKubernetesMinor: 0 },
  { name: 'net.ipv4.tcp_syncookies', sinceKubernetesMinor: 0 },
  { name: 'net.ipv4.ping_group_range', sinceKubernetesMinor: 18 },
  { name: 'net.ipv4.ip_unprivileged_port_start', sinceKubernetesMinor: 22 },
  { name: 'net.ipv4.ip_local_reserved_ports', sinceKubernetesMinor: 27, kernel: [3, 16] },
  { name: 'net.ipv4.tcp_keepalive_time', sinceKubernetesMinor: 29, kernel: [4, 5] },
  { name: 'net.ipv4.tcp_fin_timeout', sinceKubernetesMinor: 29, kernel: [4, 6] },
  { name: 'net.ipv4.tcp_keepalive_intvl', sinceKubernetesMinor: 29, kernel: [4, 5] },
  { name: 'net.ipv4.tcp_keepalive_probes', sinceKubernetesMinor: 29, kernel: [4, 5] },
  { name: 'net.ipv4.tcp_rmem', sinceKubernetesMinor: 32, kernel: [4, 15] },
  { name: 'net.ipv4.tcp_wmem', sinceKubernetesMinor: 32, kernel: [4, 15] },
  { name: 'net.ipv4.tcp_slow_start_after_idle', sinceKubernetesMinor: 37, kernel: [4, 15] },
  { name: 'net.ipv4.tcp_notsent_lowat', sinceKubernetesMinor: 37, kernel: [4, 6] },
];

export function safeSysctls(versions: Versions): Set<string> {
  const safe = new Set<string>();
  for (const s of SAFE_SYSCTLS) {
    if (versions.kubernetesMinor < s.sinceKubernetesMinor) continue;
    if (s.kernel && versions.kernel && (versions.kernel[0] < s.kernel[0] || (versions.kernel[0] === s.kernel[0] && versions.kernel[1] < s.kernel[1]))) continue;
    safe.add(s.name);
  }
  return safe;
}

/** Sysctls under a namespaced prefix that the kernel nevertheless keeps global. */
const GLOBAL_DESPITE_PREFIX = new Set(['net.core.netdev_max_backlog']);

export type SysctlNamespace = 'net' | 'ipc' | 'uts' | 'user' | undefined;

// k8s.io/component-helpers/node/util/sysctl/namespace.go (v0.37): exact names, then prefixes.
const NAMESPACE_BY_NAME: ReadonlyMap<string, SysctlNamespace> = new Map<string, SysctlNamespace>([
  ['kernel.domainname', 'uts'],
  ['kernel.sem', 'ipc'],
  ['kernel.shmall', 'ipc'],
  ['kernel.shmmax', 'ipc'],
  ['kernel.shmmni', 'ipc'],
  ['kernel.shm_rmid_forced', 'ipc'],
  ['kernel.shm', 'ipc'],
  ['kernel.msgmax', 'ipc'],
  ['kernel.msgmnb', 'ipc'],
  ['kernel.msgmni', 'ipc'],
  ['kernel.msg', 'ipc'],
]);

/** The kubelet's namespaceOf plus the kernel's exceptions; undefined = not namespaced. */
export function sysctlNamespace(name: string): SysctlNamespace {
  if (GLOBAL_DESPITE_PREFIX.has(name)) return undefined;
  const exact = NAMESPACE_BY_NAME.get(name);
  if (exact) return exact;
  if (name.startsWith('net.')) return 'net';
  if (name.startsWith('fs.mqueue.')) return 'ipc';
  if (name.startsWith('user.')) return 'user';
  return undefined;
}

function allowed(name: string, params: SysctlParams): boolean {
  if (params.allowedExact.has(name)) return true;
  for (const prefix of params.allowedPrefixes) if (name.startsWith(prefix)) return true;
  return false;
}

function sysctlPath(pod: PodFacts, s: SysctlFacts): string {
  return `${pod.specPath}.securityContext.sysctls[${s.index}]`;
}

function sysctlPointer(pod: PodFacts, s: SysctlFacts): string {
  return `${pod.specPointer}/securityContext/sysctls/${s.index}/value`;
}

const INTEGER = /^-?[0-9]+$/;

/** Sysctls of a namespace the pod shares with the node: setting them would change the node's. */
const SHARED_WITH_NODE = {
  net: { flag: 'hostNetwork', rule: R.hostNetwork, what: 'network' },
  ipc: { flag: 'hostIPC', rule: R.hostIPC, what: 'IPC' },
} as const;

export function checkSysctls(pod: PodFacts, params: SysctlParams, safe: ReadonlySet<string>, emit: Emit): void {
  const byName = new Map<string, SysctlFacts>();
  for (const s of pod.sysctls) {
    byName.set(s.name, s);
    const path = sysctlPath(pod, s);
    const ns = sysctlNamespace(s.name);
    if (!ns) {
      emit({
        rule: R.notNamespaced, path, subject: s.name, values: { sysctl: s.declaredName },
        message: `${s.declaredName} is not namespaced: the kernel cannot set it for one pod, and the kubelet rejects the pod (SysctlForbidden)`,
        fix: `Remove ${s.declaredName} and set it on the node.`,
        cap: 'Deny',
      });
    } else if (!safe.has(s.name) && !allowed(s.name, params)) {
      emit({
        rule: R.unsafeNotAllowed, path, subject: s.name, values: { sysctl: s.declaredName },
        message: `${s.declaredName} is unsafe and not in allowedUnsafe: the kubelet fails the pod with SysctlForbidden`,
        fix: `Allow ${s.name} in the kubelet's --allowed-unsafe-sysctls (and the policy), or remove it.`,
        cap: 'Deny',
      });
    }
    const shared = ns === 'net' || ns === 'ipc' ? SHARED_WITH_NODE[ns] : undefined;
    if (shared && pod[shared.flag]) {
      emit({
        rule: shared.rule, path, subject: s.name, values: { sysctl: s.declaredName, [shared.flag]: true },
        message: `${s.declaredName} with ${shared.flag} would change the node's ${shared.what} namespace; the API server rejects it since 1.29`,
        fix: `Remove ${s.declaredName} or ${shared.flag}.`,
        cap: 'Deny',
      });
    }
    if (ns === 'user' && pod.hostUsers) {
      emit({
        rule: R.hostUsers, path, subject: s.name, values: { sysctl: s.declaredName, hostUsers: true },
        message: `${s.declaredName} belongs to the user namespace, which the pod shares with the node unless hostUsers is false: the kubelet rejects it`,
        fix: 'Set hostUsers: false.',
        cap: 'Deny',
        patch: () => [{ op: 'add', path: `${pod.specPointer}/hostUsers`, value: false }],
      });
    }
    const minimum = params.minimums.get(s.name);
    if (minimum !== undefined && INTEGER.test(s.value.trim()) && Number(s.value.trim()) < minimum) {
      emit({
        rule: R.belowMinimum, path, subject: s.name, values: { sysctl: s.declaredName, value: s.value, minimum },
        message: `${s.declaredName}=${s.value} is below the policy minimum ${minimum}`,
        fix: `Set ${s.declaredName} to ${minimum}.`,
        cap: 'Deny',
        patch: () => [{ op: 'replace', path: sysctlPointer(pod, s), value: String(minimum) }],
      });
    }
  }
  const somaxconn = byName.get('net.core.somaxconn');
  const synBacklog = byName.get('net.ipv4.tcp_max_syn_backlog');
  if (somaxconn && synBacklog && INTEGER.test(somaxconn.value.trim()) && INTEGER.test(synBacklog.value.trim())) {
    const target = Math.max(Number(somaxconn.value.trim()), params.minimums.get('net.core.somaxconn') ?? 0);
    if (Number(synBacklog.value.trim()) < target) {
      emit({
        rule: R.synBacklogBelowSomaxconn, path: sysctlPath(pod, synBacklog), subject: 'net.ipv4.tcp_max_syn_backlog',
        values: { tcp_max_syn_backlog: synBacklog.value, somaxconn: String(target) },
        message: `tcp_max_syn_backlog ${synBacklog.value} is below somaxconn ${target}: SYNs are dropped before the accept queue fills`,
        fix: `Set net.ipv4.tcp_max_syn_backlog to ${target}.`,
        cap: 'Warn',
        patch: () => [{ op: 'replace', path: sysctlPointer(pod, synBacklog), value: String(target) }],
      });
    }
  }
  const syncookies = byName.get('net.ipv4.tcp_syncookies');
  if (syncookies && syncookies.value.trim() === '0') {
    emit({
      rule: R.syncookiesOff, path: sysctlPath(pod, syncookies), subject: 'net.ipv4.tcp_syncookies',
      values: { tcp_syncookies: '0' },
      message: 'tcp_syncookies=0: once the SYN queue is full, new connections are dropped instead of answered with cookies',
      fix: 'Set net.ipv4.tcp_syncookies to 1.',
      cap: 'Warn',
      patch: () => [{ op: 'replace', path: sysctlPointer(pod, syncookies), value: '1' }],
    });
  }
}
