// The GOMAXPROCS a Go process runs with, predicted from outside by the runtime's own rules, and whether
// it is out of step with the container's CPU quota. Pure: the caller brings the build info
// (readers/go-buildinfo.ts), the environment (pod spec first, readers/environ.ts as fallback), the CPUs
// of the process's affinity mask and the quota of its leaf cgroup.
//
// The rules, checked against the runtime source of go1.25.0 and go1.26 (runtime/proc.go schedinit,
// runtime/cgroup_linux.go, internal/godebugs/table.go) and uber-go/automaxprocs v1.6.0:
//  1. GOMAXPROCS in the environment, a positive decimal integer → that value. Anything else ("0",
//     "abc", "-1") is ignored by the runtime and the defaults below apply.
//  2. go.uber.org/automaxprocs linked in (and no GOMAXPROCS) → floor(quota), at least 1, not capped
//     at the CPU count; no quota → it leaves the runtime's default.
//  3. Go ≥ 1.25 with containermaxprocs=1 → min(CPUs in the affinity mask, max(2, ceil(quota))); no
//     quota → CPUs in the affinity mask. containermaxprocs comes from DefaultGODEBUG (a go.mod `go ≤ 1.24`
//     main module gets 0 from any toolchain) and GODEBUG in the environment overrides it (settings are
//     applied left to right, the last one wins).
//  4. Otherwise (Go < 1.25, or containermaxprocs=0) → CPUs in the affinity mask.
// Go reads only its own (leaf) cgroup's quota, so the quota to pass is the container's, not the pod's.
// Mismatch: the effective value exceeds what the quota allows, ceil(quota), by more than maxOverCPULimit
// (the policy's gomaxprocs.maxOverCPULimit, 0 by default): a 0.5-CPU container with Go's minimum of 2
// runs two threads of Go code on half a CPU's time and is throttled for it.
import type { GOMAXPROCSSource, GoRuntime } from '../api/v1alpha1.ts';
import { REPORT_LIMITS } from '../api/v1alpha1.ts';
import type { GoBuildInfo } from './readers/go-buildinfo.ts';

export interface GoVersion {
  major: number;
  minor: number;
}

/** `go1.26.8`, `go1.25rc1`, `devel go1.27-abc…` → {1, 26}; undefined when it says no version. */
export function parseGoVersion(text: string): GoVersion | undefined {
  const match = /go(\d+)\.(\d+)/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

function atLeast(version: GoVersion | undefined, major: number, minor: number): boolean {
  if (!version) return false;
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The value of one setting in a GODEBUG string (last one wins, as the runtime applies them). */
export function godebugSetting(godebug: string | undefined, key: string): string | undefined {
  let value: string | undefined;
  for (const field of (godebug ?? '').split(',')) {
    const eq = field.indexOf('=');
    if (eq > 0 && field.slice(0, eq) === key) value = field.slice(eq + 1);
  }
  return value;
}

/**
 * A GOMAXPROCS value the runtime accepts: a positive decimal int32. A leading `+` only from Go 1.26,
 * whose schedinit parses with strconv.ParseInt; Go ≤ 1.25's runtime atoi takes digits only.
 */
export function parseGomaxprocsValue(text: string | undefined, version?: GoVersion): number | undefined {
  if (text === undefined) return undefined;
  const pattern = atLeast(version, 1, 26) ? /^\+?\d+$/ : /^\d+$/;
  if (!pattern.test(text)) return undefined;
  const value = Number(text);
  return value > 0 && value <= 0x7fffffff ? value : undefined;
}

/** Count of CPUs in a list such as /proc/PID/status `Cpus_allowed_list:` (`0-3,8,10-11`). */
export function countCpuList(list: string): number {
  let count = 0;
  for (const part of list.trim().split(',')) {
    if (part === '') continue;
    const [from, to] = part.split('-');
    const start = Number(from);
    const end = to === undefined ? start : Number(to);
    if (Number.isInteger(start) && Number.isInteger(end) && end >= start) count += end - start + 1;
  }
  return count;
}

export interface GomaxprocsInputs {
  buildInfo: Pick<GoBuildInfo, 'goVersion' | 'defaultGODEBUG' | 'automaxprocs'>;
  /** GOMAXPROCS and GODEBUG as the process sees them, and where they were found. */
  environment: { GOMAXPROCS?: string; GODEBUG?: string; source: 'pod-spec' | 'environ' };
  /** CPUs in the process's affinity mask (sched_getaffinity; /proc/PID/status Cpus_allowed_list). */
  affinityCpus: number;
  /** The leaf cgroup's quota in cores; undefined when unlimited. */
  quotaCores: number | undefined;
  /** Share of CFS periods throttled recently, for the message. */
  throttledPercent?: number;
  /** The policy's gomaxprocs.maxOverCPULimit. */
  maxOverCPULimit?: number;
}

export type GomaxprocsRule = 'environment' | 'automaxprocs' | 'container-aware' | 'cpu-count';

export interface GomaxprocsVerdict {
  goVersion: string;
  effectiveGOMAXPROCS: number;
  source: GOMAXPROCSSource;
  rule: GomaxprocsRule;
  /** containermaxprocs as the runtime sees it (Go ≥ 1.25 only). */
  containerMaxprocs?: boolean;
  quotaCores?: number;
  /** ceil(quota): the most threads of Go code the quota can run at once. */
  quotaAllows?: number;
  mismatch: boolean;
  /** For the GOMAXPROCSMismatch condition; only on a mismatch. */
  message?: string;
}

export function effectiveGomaxprocs(inputs: GomaxprocsInputs): GomaxprocsVerdict {
  const { buildInfo, environment, affinityCpus, quotaCores } = inputs;
  const version = parseGoVersion(buildInfo.goVersion);
  const fromEnvironment = parseGomaxprocsValue(environment.GOMAXPROCS, version);
  let effective: number;
  let rule: GomaxprocsRule;
  let source: GOMAXPROCSSource;
  let containerMaxprocs: boolean | undefined;
  if (atLeast(version, 1, 25)) {
    const setting = godebugSetting(environment.GODEBUG, 'containermaxprocs') ?? godebugSetting(buildInfo.defaultGODEBUG, 'containermaxprocs');
    containerMaxprocs = setting !== '0';
  }
  if (fromEnvironment !== undefined) {
    effective = fromEnvironment;
    rule = 'environment';
    source = environment.source;
  } else if (buildInfo.automaxprocs !== undefined && quotaCores !== undefined) {
    effective = Math.max(1, Math.floor(quotaCores));
    rule = 'automaxprocs';
    source = 'automaxprocs';
  } else if (containerMaxprocs === true && quotaCores !== undefined) {
    effective = Math.min(affinityCpus, Math.max(2, Math.ceil(quotaCores)));
    rule = 'container-aware';
    source = 'go-default';
  } else {
    effective = affinityCpus;
    rule = 'cpu-count';
    source = 'go-default';
  }
  const verdict: GomaxprocsVerdict = { goVersion: buildInfo.goVersion, effectiveGOMAXPROCS: effective, source, rule, mismatch: false };
  if (containerMaxprocs !== undefined) verdict.containerMaxprocs = containerMaxprocs;
  if (quotaCores === undefined) return verdict;
  verdict.quotaCores = quotaCores;
  verdict.quotaAllows = Math.ceil(quotaCores);
  verdict.mismatch = effective > verdict.quotaAllows + (inputs.maxOverCPULimit ?? 0);
  if (verdict.mismatch) verdict.message = mismatchMessage(verdict, inputs.throttledPercent);
  return verdict;
}

// Short: condition messages are bounded (REPORT_LIMITS); the report's go entry says the rest.
function why(verdict: GomaxprocsVerdict): string {
  switch (verdict.rule) {
    case 'environment':
      return 'GOMAXPROCS set';
    case 'automaxprocs':
      return 'automaxprocs';
    case 'container-aware':
      return "Go's minimum of 2";
    case 'cpu-count':
      return verdict.containerMaxprocs === false ? 'containermaxprocs=0' : 'Go < 1.25';
  }
}

/** e.g. `GOMAXPROCS=2 on 0.5 CPU (containermaxprocs=0), 97% throttled`. */
function mismatchMessage(verdict: GomaxprocsVerdict, throttledPercent: number | undefined): string {
  const throttled = throttledPercent === undefined ? '' : `, ${Math.round(throttledPercent)}% throttled`;
  const message = `GOMAXPROCS=${verdict.effectiveGOMAXPROCS} on ${verdict.quotaCores} CPU (${why(verdict)})${throttled}`;
  return message.slice(0, REPORT_LIMITS.message);
}

/** The report's status.runtime.go entry. */
export function goRuntime(container: string, verdict: GomaxprocsVerdict): GoRuntime {
  const entry: GoRuntime = {
    container,
    effectiveGOMAXPROCS: verdict.effectiveGOMAXPROCS,
    source: verdict.source,
    mismatch: verdict.mismatch,
  };
  // `go1.26.8`, without what devel builds append (the report bounds the field).
  const version = /go\d+\.\d+(?:\.\d+)?(?:rc\d+|beta\d+)?/.exec(verdict.goVersion)?.[0];
  if (version) entry.goVersion = version;
  if (verdict.quotaCores !== undefined) entry.quotaCores = verdict.quotaCores;
  return entry;
}
