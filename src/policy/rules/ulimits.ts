// ulimit rules, per source, each with the consequence that source really has:
// - NRI ulimit-adjuster annotations and securityContext.ulimits (KEP-5758) are applied by the runtime as
//   root: hard < soft or a value above fs.nr_open fails the container; capabilities do not matter;
// - `ulimit` in an `sh -c` script runs as the container user (see ../shell.ts for the dialects).
// Soft nofile below the floor is a finding for any source; pods that declare nothing follow onUndeclared.
import type { Operation } from 'rfc6902';
import { stringify as stringifyYaml } from 'yaml';
import type { UndeclaredUlimitAction } from '../../api/index.ts';
import type { Emit } from '../findings.ts';
import type { ContainerFacts, PodFacts, UlimitEntry } from '../facts.ts';
import { NRI_ANNOTATION_PREFIX, annotationPointer } from '../facts.ts';
import { lookupEnv } from '../env.ts';
import type { Dialect, Limit, ShellOutcome, ShellValue, UlimitEvent } from '../shell.ts';
import { DEFAULT_NR_OPEN, UNLIMITED, parseScript, runUlimits } from '../shell.ts';
import { ceilUnits } from '../quantity.ts';

export const ULIMIT_RULES = {
  nofileBelowFloor: 'ulimits/nofile-below-floor',
  nofileUndeclared: 'ulimits/nofile-undeclared',
  nprocBelowFloor: 'ulimits/nproc-below-floor',
  nprocSharedUid: 'ulimits/nproc-shared-uid',
  hardBelowSoft: 'ulimits/hard-below-soft',
  aboveNrOpen: 'ulimits/above-nr-open',
  nriInvalid: 'ulimits/nri-invalid',
  nriUnknownContainer: 'ulimits/nri-unknown-container',
  shellHardRaise: 'ulimits/shell-hard-raise-eperm',
  shellAboveNrOpen: 'ulimits/shell-above-nr-open',
  shellUnsupported: 'ulimits/shell-unsupported',
  shellUnresolved: 'ulimits/shell-unresolved',
  sysResourceIneffective: 'ulimits/sys-resource-ineffective',
} as const;

const R = ULIMIT_RULES;

export interface UlimitParams {
  nofileMinSoft: number;
  nofileMinPerCPU: number;
  nprocMinPerCPU: number;
  onUndeclared: UndeclaredUlimitAction;
  runtimeNofile: Limit;
}

/** containerd ≥ 2.0 and moby's default: 1024 soft, 524288 hard. */
export const DEFAULT_RUNTIME_NOFILE: Limit = { soft: 1024, hard: 524_288 };

type Source = 'nri' | 'securityContext' | 'shell';

interface Declared {
  limit: Limit;
  source: Source;
  /** Below the floor in some shell dialects only, or after an uncertain ulimit: at most a warning. */
  certain: boolean;
  /** Every dialect in which the final limit is below the floor (shell source). */
  dialects?: Dialect[];
}

function entryFor(entries: readonly UlimitEntry[] | undefined, type: string): UlimitEntry | undefined {
  let found: UlimitEntry | undefined;
  for (const entry of entries ?? []) if (entry.type === type) found = entry; // the last one wins
  return found;
}

function limitText(n: number): string {
  return n === UNLIMITED ? 'unlimited' : String(n);
}

/** The NRI annotation rewritten with `change` applied to its entries (a new entry appended if absent). */
function nriPatch(pod: PodFacts, c: ContainerFacts, type: string, soft: number, hard: number): Operation[] | undefined {
  const nri = c.nri;
  if (!nri?.entries) return undefined;
  const list = nri.entries.map((e) => ({ type: `RLIMIT_${e.type}`, soft: e.type === type ? soft : e.soft, hard: e.type === type ? hard : e.hard }));
  if (!nri.entries.some((e) => e.type === type)) list.push({ type: `RLIMIT_${type}`, soft, hard });
  return [{ op: 'replace', path: annotationPointer(pod, nri.key), value: stringifyYaml(list) }];
}

function newNriAnnotation(pod: PodFacts, c: ContainerFacts, soft: number, hard: number): Operation[] {
  const key = NRI_ANNOTATION_PREFIX + c.name;
  const value = stringifyYaml([{ type: 'RLIMIT_NOFILE', soft, hard }]);
  if (!pod.hasAnnotations) {
    const root = pod.metadataPointer;
    return [{ op: 'add', path: `${root}/annotations`, value: { [key]: value } }];
  }
  return [{ op: 'add', path: annotationPointer(pod, key), value }];
}

function securityContextPatch(c: ContainerFacts, entry: UlimitEntry, soft: number, hard: number): Operation[] {
  const base = `${c.pointer}/securityContext/ulimits/${entry.index}`;
  return [
    { op: entry.softMissing ? 'add' : 'replace', path: `${base}/soft`, value: soft },
    { op: entry.hardMissing ? 'add' : 'replace', path: `${base}/hard`, value: hard },
  ];
}

/** Checks the runtime-applied sources (NRI, securityContext) for entries that fail the container. */
function checkRuntimeEntries(pod: PodFacts, c: ContainerFacts, source: 'nri' | 'securityContext', entries: readonly UlimitEntry[], emit: Emit): void {
  const where = source === 'nri' ? `${pod.metadataPath}.annotations[${c.nri?.key ?? ''}]` : `${c.path}.securityContext.ulimits`;
  for (const entry of entries) {
    const path = source === 'nri' ? where : `${where}[${entry.index}]`;
    if (entry.hard < entry.soft) {
      const missing = entry.hardMissing ? ' (hard is missing and reads as 0)' : '';
      emit({
        rule: R.hardBelowSoft, container: c.name, path, subject: `${source}:${entry.type}`,
        values: { source, type: entry.type, soft: limitText(entry.soft), hard: limitText(entry.hard) },
        message: `${source === 'nri' ? 'NRI ulimit annotation' : 'securityContext.ulimits'} ${entry.type} hard ${limitText(entry.hard)} < soft ${limitText(entry.soft)}${missing}: the container fails to start`,
        fix: `Set ${entry.type} hard to at least ${limitText(entry.soft)}.`,
        cap: 'Deny',
        patch: () => (source === 'nri' ? nriPatch(pod, c, entry.type, entry.soft, entry.soft) : securityContextPatch(c, entry, entry.soft, entry.soft)),
      });
    }
    if (entry.type === 'NOFILE' && (entry.hard > DEFAULT_NR_OPEN || entry.soft > DEFAULT_NR_OPEN)) {
      emit({
        rule: R.aboveNrOpen, container: c.name, path, subject: `${source}:${entry.type}`,
        values: { source, soft: limitText(entry.soft), hard: limitText(entry.hard), nrOpen: DEFAULT_NR_OPEN },
        message: `nofile ${limitText(Math.max(entry.soft, entry.hard))} is above fs.nr_open (${DEFAULT_NR_OPEN} by default): setrlimit fails and the container does not start`,
        fix: `Set nofile to at most ${DEFAULT_NR_OPEN}.`,
        cap: 'Deny',
        patch: () => {
          const soft = Math.min(entry.soft, DEFAULT_NR_OPEN);
          const hard = Math.max(soft, Math.min(entry.hard, DEFAULT_NR_OPEN));
          return source === 'nri' ? nriPatch(pod, c, entry.type, soft, hard) : securityContextPatch(c, entry, soft, hard);
        },
      });
    }
  }
}

interface ShellAnalysis {
  outcomes: ShellOutcome[];
  dialectKnown: boolean;
}

/** Runs the container's script in each possible dialect (memoised on the facts object per evaluation). */
const shellMemo = new WeakMap<ContainerFacts, Map<string, ShellAnalysis | undefined>>();

function analyseShell(c: ContainerFacts, initialNofile: Limit, initialNproc: Limit): ShellAnalysis | undefined {
  const shell = c.shell;
  if (!shell || !shell.script.includes('ulimit')) return undefined;
  const memoKey = `${initialNofile.soft}/${initialNofile.hard}/${initialNproc.soft}/${initialNproc.hard}`;
  let perContainer = shellMemo.get(c);
  if (!perContainer) shellMemo.set(c, (perContainer = new Map<string, ShellAnalysis | undefined>()));
  if (perContainer.has(memoKey)) return perContainer.get(memoKey);
  const commands = parseScript(shell.script);
  const env = (name: string): ShellValue => {
    if (name === '__unresolved__') return null;
    const value = lookupEnv(c.env, name);
    if (value === undefined) return undefined;
    if (value === 'maybe-envFrom' || !value.known) return null;
    return value.value;
  };
  const outcomes = shell.dialects.map((dialect) =>
    runUlimits(commands, dialect, {
      initial: { nofile: initialNofile, nproc: initialNproc },
      canRaiseHard: c.canRaiseHard,
      errexit: shell.errexit,
      nrOpen: DEFAULT_NR_OPEN,
      env,
    }),
  );
  const analysis = { outcomes, dialectKnown: shell.dialectKnown };
  perContainer.set(memoKey, analysis);
  return analysis;
}

function describeEvent(event: UlimitEvent, dialect: Dialect): string {
  switch (event.kind) {
    case 'illegal-option':
      return `${dialect} has no ulimit ${event.option ?? ''}`;
    case 'too-many-arguments':
      return `${dialect} sets one limit per ulimit call ("too many arguments")`;
    case 'bad-number':
      return `${dialect} rejects the ulimit value`;
    case 'einval-soft-above-hard':
      return event.resource === 'pipe' ? `in ${dialect} ulimit -p is the pipe size and cannot be set` : `soft above hard (EINVAL) in ${dialect}`;
    default:
      return `${event.kind} in ${dialect}`;
  }
}

function consequence(fatal: boolean, old: string): string {
  return fatal ? 'the script stops (set -e or &&) and the container exits' : `the script goes on with the old limit ${old}`;
}

function checkShell(c: ContainerFacts, analysis: ShellAnalysis, startNofile: Limit, emit: Emit): void {
  const path = c.shellPath ?? `${c.path}.command`;
  const { outcomes, dialectKnown } = analysis;
  const dialectNames = outcomes.map((o) => o.dialect).join('/');
  // A kind of event that every dialect produces is determinate; one that only some produce is a warning.
  const kinds = new Set(outcomes.flatMap((o) => o.events.map((e) => e.kind)));
  for (const kind of kinds) {
    const perDialect = outcomes.map((o) => ({ dialect: o.dialect, event: o.events.find((e) => e.kind === kind) }));
    const hits = perDialect.filter((p) => p.event !== undefined) as { dialect: Dialect; event: UlimitEvent }[];
    const first = hits[0];
    if (!first) continue;
    const everywhere = hits.length === outcomes.length;
    const certain = everywhere && hits.every((h) => h.event.certain) && (dialectKnown || everywhere);
    const cap = certain ? 'Deny' : 'Warn';
    const dialects = hits.map((h) => h.dialect).join('/');
    const only = everywhere ? '' : ` (only in ${dialects}; the image's sh decides)`;
    const startingNofile = limitText(startNofile.soft);
    switch (kind) {
      case 'eperm-hard-raise':
        emit({
          rule: R.shellHardRaise, container: c.name, path, subject: `shell:${first.event.resource ?? ''}`,
          values: { requested: limitText(first.event.requested ?? 0), runAsUser: c.runAsUser ?? 'unset', dialects: dialectNames },
          message: `ulimit ${first.event.option ?? ''} ${limitText(first.event.requested ?? 0)} raises the hard limit as ${c.runAsUser === undefined ? 'a possibly non-root user' : `UID ${c.runAsUser}`} without CAP_SYS_RESOURCE: EPERM, and ${consequence(first.event.fatal, startingNofile)}${only}`,
          fix: `Use ulimit -S${(first.event.option ?? '-n').slice(1)}, or set the limit with the NRI annotation.`,
          cap: c.runAsUser === undefined && !c.runAsNonRoot ? 'Warn' : cap,
        });
        break;
      case 'eperm-nr-open':
        emit({
          rule: R.shellAboveNrOpen, container: c.name, path, subject: 'shell:nofile-nr-open',
          values: { requested: limitText(first.event.requested ?? 0), nrOpen: DEFAULT_NR_OPEN },
          message: `ulimit ${first.event.option ?? ''} ${limitText(first.event.requested ?? 0)} is above fs.nr_open (${DEFAULT_NR_OPEN}): EPERM even as root, and ${consequence(first.event.fatal, startingNofile)}${only}`,
          fix: `Use a value of at most ${DEFAULT_NR_OPEN}.`,
          cap,
        });
        break;
      case 'unresolved':
        emit({
          rule: R.shellUnresolved, container: c.name, path, subject: 'shell:unresolved',
          values: { dialects: dialectNames },
          message: 'a ulimit value depends on something unknowable before the pod runs (ConfigMap, Secret, command output)',
          fix: 'Use literal ulimit values or the NRI annotation.',
          cap: 'Warn',
        });
        break;
      default:
        emit({
          rule: R.shellUnsupported, container: c.name, path, subject: `shell:${kind}`,
          values: { dialects },
          message: `${describeEvent(first.event, first.dialect)}: the call fails and ${consequence(first.event.fatal, startingNofile)}${only}`,
          fix: first.event.option === '-u' || first.event.option === '-p' ? 'Use the NRI annotation for nproc.' : 'Call ulimit once per limit with a numeric value.',
          cap,
        });
    }
  }
}

/** The nofile limits the runtime starts the process with: securityContext, else NRI, else its default. */
function initialNofile(c: ContainerFacts, runtimeDefault: Limit): Limit {
  const declared = entryFor(c.securityContextUlimits, 'NOFILE') ?? entryFor(c.nri?.entries, 'NOFILE');
  return declared ? { soft: declared.soft, hard: declared.hard } : runtimeDefault;
}

/** The soft nofile (or nproc) when the main program starts, and which source set it. */
function declaredLimit(c: ContainerFacts, type: 'NOFILE' | 'NPROC', analysis: ShellAnalysis | undefined): Declared | undefined {
  const sc = entryFor(c.securityContextUlimits, type);
  const nri = entryFor(c.nri?.entries, type);
  const runtime = sc ? { limit: { soft: sc.soft, hard: sc.hard }, source: 'securityContext' as const } : nri ? { limit: { soft: nri.soft, hard: nri.hard }, source: 'nri' as const } : undefined;
  const resource = type === 'NOFILE' ? 'nofile' : 'nproc';
  if (analysis && analysis.outcomes.some((o) => o.set[resource] || o.events.some((e) => e.resource === resource || e.touches?.includes(resource)))) {
    const softs = analysis.outcomes.map((o) => o[resource].soft);
    const min = Math.min(...softs);
    const certain = analysis.outcomes.every((o) => !o.uncertain) && softs.every((s) => s === min);
    const worst = analysis.outcomes.find((o) => o[resource].soft === min) as ShellOutcome;
    return { limit: worst[resource], source: 'shell', certain, dialects: analysis.outcomes.map((o) => o.dialect) };
  }
  return runtime ? { ...runtime, certain: true } : undefined;
}

export function checkUlimits(pod: PodFacts, c: ContainerFacts, params: UlimitParams, emit: Emit): void {
  if (c.nri?.error !== undefined) {
    emit({
      rule: R.nriInvalid, container: c.name, path: `${pod.metadataPath}.annotations[${c.nri.key}]`, subject: 'nri',
      values: { annotation: c.nri.key, error: c.nri.error },
      message: `the NRI ulimit-adjuster cannot read ${c.nri.key} (${c.nri.error}): the container fails to start`,
      fix: 'Write the annotation as a YAML list of {type, soft, hard}.',
      cap: 'Deny',
    });
  }
  if (c.nri?.entries) checkRuntimeEntries(pod, c, 'nri', c.nri.entries, emit);
  if (c.securityContextUlimits) checkRuntimeEntries(pod, c, 'securityContext', c.securityContextUlimits, emit);

  const startNofile = initialNofile(c, params.runtimeNofile);
  const nprocEntry = entryFor(c.securityContextUlimits, 'NPROC') ?? entryFor(c.nri?.entries, 'NPROC');
  const initialNproc = nprocEntry ? { soft: nprocEntry.soft, hard: nprocEntry.hard } : { soft: UNLIMITED, hard: UNLIMITED };
  const analysis = analyseShell(c, startNofile, initialNproc);
  if (analysis) checkShell(c, analysis, startNofile, emit);

  const cores = c.cpuLimit && c.cpuLimit.nano > 0n ? ceilUnits(c.cpuLimit) : 0;
  const nofileFloor = Math.max(params.nofileMinSoft, params.nofileMinPerCPU * cores);
  const nofile = declaredLimit(c, 'NOFILE', analysis);
  if (nofileFloor > 0) {
    if (nofile && nofile.limit.soft < nofileFloor) {
      const sourceEntry = nofile.source === 'nri' ? entryFor(c.nri?.entries, 'NOFILE') : nofile.source === 'securityContext' ? entryFor(c.securityContextUlimits, 'NOFILE') : undefined;
      const hard = Math.max(nofile.limit.hard, nofileFloor);
      emit({
        rule: R.nofileBelowFloor, container: c.name, path: nofile.source === 'shell' ? (c.shellPath ?? `${c.path}.command`) : nofile.source === 'nri' ? `${pod.metadataPath}.annotations[${c.nri?.key ?? ''}]` : `${c.path}.securityContext.ulimits`,
        subject: 'nofile',
        values: { source: nofile.source, soft: limitText(nofile.limit.soft), floor: nofileFloor, ...(c.cpuLimitDefaulted && params.nofileMinPerCPU > 0 ? { cpuLimitDefaulted: true } : {}) },
        message: `soft nofile ${limitText(nofile.limit.soft)} (from ${nofile.source}) is below the floor ${nofileFloor}${params.nofileMinPerCPU > 0 ? ` (max of ${params.nofileMinSoft} and ${params.nofileMinPerCPU} × ${cores} CPUs)` : ''}`,
        fix: `Raise soft nofile to ${nofileFloor}.`,
        cap: nofile.certain ? 'Deny' : 'Warn',
        patch: sourceEntry
          ? () => (nofile.source === 'nri' ? nriPatch(pod, c, 'NOFILE', nofileFloor, hard) : securityContextPatch(c, sourceEntry, nofileFloor, hard))
          : undefined,
      });
    } else if (!nofile && params.onUndeclared === 'Warn' && params.runtimeNofile.soft < nofileFloor && c.list !== 'ephemeralContainers') {
      const hard = Math.min(DEFAULT_NR_OPEN, Math.max(nofileFloor, params.runtimeNofile.hard));
      emit({
        rule: R.nofileUndeclared, container: c.name, path: c.path, subject: 'nofile',
        values: { runtimeSoft: params.runtimeNofile.soft, floor: nofileFloor },
        message: `no nofile limit declared: the runtime default soft ${params.runtimeNofile.soft} is below the floor ${nofileFloor}`,
        fix: `Add annotation ${NRI_ANNOTATION_PREFIX}${c.name} with nofile ${nofileFloor}.`,
        cap: 'Warn',
        patch: nofileFloor <= DEFAULT_NR_OPEN && hard >= nofileFloor ? () => newNriAnnotation(pod, c, nofileFloor, hard) : undefined,
      });
    }
  }

  const nproc = declaredLimit(c, 'NPROC', analysis);
  if (nproc) {
    if (pod.hostUsers && c.runAsUser !== 0) {
      emit({
        rule: R.nprocSharedUid, container: c.name, path: `${c.path}.securityContext.runAsUser`, subject: 'nproc',
        values: { runAsUser: c.runAsUser ?? 'unset', nproc: limitText(nproc.limit.soft) },
        message: `nproc ${limitText(nproc.limit.soft)} counts every thread of UID ${c.runAsUser ?? '(image default)'} on the node, not just this container's`,
        fix: 'Set hostUsers: false, or rely on pids.max instead of nproc.',
        cap: 'Warn',
      });
    }
    const nprocFloor = params.nprocMinPerCPU * cores;
    if (nprocFloor > 0 && nproc.limit.soft < nprocFloor) {
      const entry = nproc.source === 'nri' ? entryFor(c.nri?.entries, 'NPROC') : nproc.source === 'securityContext' ? entryFor(c.securityContextUlimits, 'NPROC') : undefined;
      emit({
        rule: R.nprocBelowFloor, container: c.name, path: c.path, subject: 'nproc',
        values: { source: nproc.source, soft: limitText(nproc.limit.soft), floor: nprocFloor },
        message: `soft nproc ${limitText(nproc.limit.soft)} (from ${nproc.source}) is below ${params.nprocMinPerCPU} × ${cores} CPUs = ${nprocFloor}`,
        fix: `Raise nproc to ${nprocFloor}.`,
        cap: nproc.certain ? 'Deny' : 'Warn',
        patch: entry
          ? () => (nproc.source === 'nri' ? nriPatch(pod, c, 'NPROC', nprocFloor, Math.max(nprocFloor, entry.hard)) : securityContextPatch(c, entry, nprocFloor, Math.max(nprocFloor, entry.hard)))
          : undefined,
      });
    }
  }

  if (c.addsSysResource && ((c.runAsUser !== undefined && c.runAsUser !== 0) || c.runAsNonRoot)) {
    emit({
      rule: R.sysResourceIneffective, container: c.name, path: `${c.path}.securityContext.capabilities.add`, subject: 'SYS_RESOURCE',
      values: { runAsUser: c.runAsUser ?? 'non-root' },
      message: 'capabilities.add SYS_RESOURCE gives a non-root user nothing (Kubernetes sets no ambient capabilities)',
      fix: 'Set the limit with the NRI annotation instead.',
      cap: 'Warn',
    });
  }
}

/** Annotations naming no container of the pod do nothing. */
export function checkNriContainers(pod: PodFacts, emit: Emit): void {
  for (const key of pod.nriKeysWithoutContainer) {
    emit({
      rule: R.nriUnknownContainer, path: `${pod.metadataPath}.annotations[${key}]`, subject: key,
      values: { annotation: key },
      message: `${key} names no container of this pod: the ulimits apply to nothing`,
      fix: 'Use the container name after "container.".',
      cap: 'Warn',
    });
  }
}
