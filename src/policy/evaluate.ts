// Evaluation of one pod spec (a Pod or a workload's template) against compiled policies: match policies,
// group them by family parameters, run each family once per distinct parameter set, and merge findings
// so each carries the strictest enforcement among the policies that raise it.
import type { V1LimitRange } from '@kubernetes/client-node';
import type { Enforcement } from '../api/index.ts';
import type { CompiledPolicies, CompiledPolicy, FamilyGroup } from './compile.ts';
import type { Emit, Finding, RawFinding } from './findings.ts';
import { stricter, weaker } from './findings.ts';
import type { PodFacts } from './facts.ts';
import { podFactsOf, podLocationOf } from './facts.ts';
import type { Labels } from './labels.ts';
import { withNamespaceName } from './match.ts';
import { asRecord, asString, asStringRecord } from './shape.ts';
import { checkGomaxprocs, checkNriContainers, checkSysctls, checkUlimits } from './rules/index.ts';

export interface EvaluationInput {
  /** Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob (others yield nothing). */
  kind: string;
  object: unknown;
  /** Defaults to the object's metadata.namespace, then "default". */
  namespace?: string;
  /** The namespace's labels; `kubernetes.io/metadata.name` is added when missing. */
  namespaceLabels?: Labels;
  /** The namespace's LimitRanges (LimitRanger's defaults are applied to the evaluation, not the object). */
  limitRanges?: readonly V1LimitRange[];
  /** Ceiling for every finding (Warn for children of admitted workloads and ephemeral containers). */
  cap?: Enforcement;
  /**
   * Build each finding's RFC 6902 fix (default true). A validating webhook and the audit never send
   * patches, and building them (YAML for NRI annotations) was 70% of an admission's evaluation.
   */
  patches?: boolean;
}

export interface Evaluation {
  findings: Finding[];
  /** Names of the policies that matched (for status and metrics). */
  matchedPolicies: string[];
}


/** The matched members of one family group: the policies a finding is credited to. */
interface Credit {
  enforcement: Enforcement;
  group: FamilyGroup<unknown>;
}

function templateLabels(kind: string, object: unknown): Labels {
  const location = podLocationOf(kind);
  if (!location) return undefined;
  let node = asRecord(object);
  for (const segment of location.root) node = asRecord(node?.[segment]);
  return asStringRecord(asRecord(node?.metadata)?.labels);
}

/** The strictest enforcement among the group's matched members; undefined when none matched. */
function creditOf(group: FamilyGroup<unknown>, matched: Uint8Array): Credit | undefined {
  let enforcement: Enforcement | undefined;
  for (const member of group.members) {
    if (matched[member.index] !== 1) continue;
    enforcement = enforcement === undefined ? member.enforcement : stricter(enforcement, member.enforcement);
  }
  return enforcement === undefined ? undefined : { enforcement, group };
}

export function evaluate(compiled: CompiledPolicies, input: EvaluationInput): Evaluation {
  if (!podLocationOf(input.kind)) return { findings: [], matchedPolicies: [] };
  const metadata = asRecord(asRecord(input.object)?.metadata);
  const namespace = input.namespace ?? asString(metadata?.namespace) ?? 'default';
  if (compiled.excludedNamespaces.has(namespace)) return { findings: [], matchedPolicies: [] };
  // Completed once here, so each policy's matcher finds the name label already present.
  const namespaceLabels = withNamespaceName(namespace, input.namespaceLabels);
  const labels = templateLabels(input.kind, input.object);

  const matched = compiled.matched;
  const matchedPolicies: string[] = [];
  const policies = compiled.policies;
  for (let index = 0; index < policies.length; index++) {
    const policy = policies[index] as CompiledPolicy;
    const hit = policy.matches(namespace, namespaceLabels, labels);
    matched[index] = hit ? 1 : 0;
    if (hit) matchedPolicies.push(policy.name);
  }
  if (matchedPolicies.length === 0) return { findings: [], matchedPolicies };

  let facts: PodFacts | undefined;
  let findings: Map<string, Finding> | undefined;
  const contextCap = input.cap ?? 'Deny';
  const withPatches = input.patches !== false;
  const start = (): PodFacts | undefined => (facts ??= podFactsOf(input.kind, input.object, input.limitRanges, namespace));

  for (const group of compiled.groups.gomaxprocs) {
    const credit = creditOf(group, matched);
    if (!credit || !start()) continue;
    const pod = facts as PodFacts;
    const emit: Emit = (raw) => record((findings ??= new Map<string, Finding>()), pod, raw, credit, compiled, contextCap, withPatches);
    for (const c of pod.containers) checkGomaxprocs(pod, c, group.params, emit);
  }
  for (const group of compiled.groups.ulimits) {
    const credit = creditOf(group, matched);
    if (!credit || !start()) continue;
    const pod = facts as PodFacts;
    const emit: Emit = (raw) => record((findings ??= new Map<string, Finding>()), pod, raw, credit, compiled, contextCap, withPatches);
    for (const c of pod.containers) checkUlimits(pod, c, group.params, emit);
    checkNriContainers(pod, emit);
  }
  for (const group of compiled.groups.sysctls) {
    const credit = creditOf(group, matched);
    if (!credit || !start()) continue;
    const pod = facts as PodFacts;
    if (pod.sysctls.length === 0) break;
    checkSysctls(pod, group.params, compiled.safeSysctls, (raw) => record((findings ??= new Map<string, Finding>()), pod, raw, credit, compiled, contextCap, withPatches));
  }
  return { findings: findings ? [...findings.values()] : [], matchedPolicies };
}

function creditedPolicies(credit: Credit, compiled: CompiledPolicies): string[] {
  const names: string[] = [];
  for (const member of credit.group.members) if (compiled.matched[member.index] === 1) names.push((compiled.policies[member.index] as CompiledPolicy).name);
  return names;
}

function record(findings: Map<string, Finding>, facts: PodFacts, raw: RawFinding, credit: Credit, compiled: CompiledPolicies, contextCap: Enforcement, withPatches: boolean): void {
  let enforcement = weaker(weaker(credit.enforcement, raw.cap), contextCap);
  // A finding that rests on a LimitRange default is at most a warning on a template: LimitRanger
  // defaults only Pods, so the template itself does not carry the value.
  if (facts.location.isTemplate && (raw.values.cpuLimitDefaulted === true || raw.values.cpuRequestDefaulted === true)) enforcement = weaker(enforcement, 'Warn');
  if (raw.container !== undefined && facts.hasEphemeral && isEphemeral(facts, raw.container)) enforcement = weaker(enforcement, 'Warn');
  const key = `${raw.rule}|${raw.container ?? ''}|${raw.subject}`;
  const existing = findings.get(key);
  if (existing) {
    if (stricter(existing.enforcement, enforcement) !== existing.enforcement) {
      existing.enforcement = enforcement;
      existing.message = raw.message;
      existing.values = raw.values;
    }
    for (const policy of creditedPolicies(credit, compiled)) if (!existing.policies.includes(policy)) existing.policies.push(policy);
    return;
  }
  const finding: Finding = {
    rule: raw.rule,
    path: raw.path,
    values: raw.values,
    message: raw.message,
    fix: raw.fix,
    enforcement,
    policies: creditedPolicies(credit, compiled),
    key,
  };
  if (raw.container !== undefined) finding.container = raw.container;
  const patch = withPatches ? raw.patch?.() : undefined;
  if (patch && patch.length > 0) finding.patch = patch;
  findings.set(key, finding);
}

function isEphemeral(facts: PodFacts, name: string): boolean {
  for (const c of facts.containers) if (c.name === name) return c.list === 'ephemeralContainers';
  return false;
}
