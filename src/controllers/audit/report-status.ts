// The controller's part of a ConcurrencyReport (status.audit and the PolicyCompliant condition), what to
// do with a report for one pod, and when a report has outlived its use. Pure functions: the auditor
// feeds them informer objects and the engine's findings.
import {
  CONDITION_POLICY_COMPLIANT, ENFORCEMENT_RANK, REPORT_LIMITS, findCondition, setCondition,
  type AuditFinding, type ConcurrencyReport, type ConcurrencyReportStatus, type ReportCondition,
} from '../../api/index.ts';
import { canonicalJson } from '../../kube/index.ts';
import type { EngineFinding } from './engine.ts';

export type ReportsMode = 'problems' | 'all';

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/** Strictest first, then by rule and container, so equal findings always serialise the same way. */
export function orderFindings(findings: readonly EngineFinding[]): EngineFinding[] {
  return [...findings].sort((a, b) =>
    ENFORCEMENT_RANK[b.enforcement] - ENFORCEMENT_RANK[a.enforcement]
    || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)
    || ((a.container ?? '') < (b.container ?? '') ? -1 : (a.container ?? '') > (b.container ?? '') ? 1 : 0));
}

/** The findings as the report holds them: at most REPORT_LIMITS.findings, each within the CRD's bounds. */
export function reportFindings(findings: readonly EngineFinding[]): { findings: AuditFinding[]; truncated: number } {
  const ordered = orderFindings(findings);
  const kept = ordered.slice(0, REPORT_LIMITS.findings).map((f): AuditFinding => ({
    rule: f.rule,
    ...(f.container ? { container: f.container } : {}),
    enforcement: f.enforcement,
    message: clip(f.message, REPORT_LIMITS.message),
    ...(f.policies.length > 0 ? { policies: f.policies.slice(0, REPORT_LIMITS.policiesPerFinding) } : {}),
  }));
  return { findings: kept, truncated: ordered.length - kept.length };
}

export function compliantCondition(findings: readonly AuditFinding[], truncated: number, matchedPolicies: number): Omit<ReportCondition, 'lastTransitionTime'> {
  if (matchedPolicies === 0) {
    return { type: CONDITION_POLICY_COMPLIANT, status: 'True', reason: 'NoMatchingPolicy', message: 'No policy matches this pod' };
  }
  if (findings.length === 0) {
    return {
      type: CONDITION_POLICY_COMPLIANT, status: 'True', reason: 'NoFindings',
      message: clip(`No finding from ${matchedPolicies} matching polic${matchedPolicies === 1 ? 'y' : 'ies'}`, REPORT_LIMITS.conditionMessage),
    };
  }
  const total = findings.length + truncated;
  const strictest = findings[0]!;
  return {
    type: CONDITION_POLICY_COMPLIANT, status: 'False', reason: `${strictest.enforcement}Findings`,
    message: clip(`${total} finding${total === 1 ? '' : 's'}, first ${strictest.rule}`, REPORT_LIMITS.conditionMessage),
  };
}

/**
 * The status this controller applies: status.audit and PolicyCompliant. `auditTime` moves only when the
 * findings (or the verdict's reason) change, so re-auditing an unchanged pod produces the identical
 * status (a suppressed write).
 */
export function desiredAuditStatus(
  engineFindings: readonly EngineFinding[], matchedPolicies: number, existing: ConcurrencyReport | undefined, now: Date,
): ConcurrencyReportStatus {
  const { findings, truncated } = reportFindings(engineFindings);
  const previousAudit = existing?.status?.audit;
  const sameFindings = previousAudit !== undefined
    && canonicalJson(previousAudit.findings ?? []) === canonicalJson(findings)
    && (previousAudit.truncatedFindings ?? 0) === truncated;
  const condition = compliantCondition(findings, truncated, matchedPolicies);
  // The verdict's reason changing (a pod leaving every policy's match: NoFindings → NoMatchingPolicy) is
  // news too, though the condition's status stays True and so keeps its lastTransitionTime: auditTime
  // moves, so the report's TTL counts from it.
  const sameReason = findCondition(existing?.status?.conditions, CONDITION_POLICY_COMPLIANT)?.reason === condition.reason;
  const auditTime = sameFindings && sameReason && previousAudit.auditTime ? previousAudit.auditTime : now.toISOString();
  const conditions = setCondition(existing?.status?.conditions, condition, now)
    .filter((c) => c.type === CONDITION_POLICY_COMPLIANT);
  return {
    conditions,
    audit: { auditTime, findings, ...(truncated > 0 ? { truncatedFindings: truncated } : {}) },
  };
}

/** True when the report already carries exactly this controller-owned status and the pod's node. */
export function reportIsCurrent(report: ConcurrencyReport, desired: ConcurrencyReportStatus, nodeName: string | undefined): boolean {
  if ((report.spec.nodeName ?? '') !== (nodeName ?? '')) return false;
  const audit = report.status?.audit;
  if (canonicalJson(audit ?? null) !== canonicalJson(desired.audit ?? null)) return false;
  const have = findCondition(report.status?.conditions, CONDITION_POLICY_COMPLIANT);
  const want = desired.conditions?.find((c) => c.type === CONDITION_POLICY_COMPLIANT);
  if (!have || !want) return have === want;
  return have.status === want.status && have.reason === want.reason && have.message === want.message;
}

/** Whether the report carries anything this controller wrote (status.audit or PolicyCompliant). */
export function hasControllerFields(report: ConcurrencyReport): boolean {
  return report.status?.audit !== undefined || findCondition(report.status?.conditions, CONDITION_POLICY_COMPLIANT) !== undefined;
}

export function hasFinding(report: ConcurrencyReport): boolean {
  return (report.status?.audit?.findings?.length ?? 0) > 0;
}

/** The agent's level; a report the agent never wrote to counts as OK. */
export function runtimeLevelOK(report: ConcurrencyReport): boolean {
  const level = report.status?.summary?.level;
  return level === undefined || level === 'OK';
}

/**
 * Since when the report has been quiet: no transition of any condition, no change of findings, and not
 * created, after this time. Read from the report itself, so a new leader keeps counting where the old
 * one was instead of starting the TTL over.
 */
export function quietSince(report: ConcurrencyReport): number {
  const times = [
    report.metadata.creationTimestamp,
    report.status?.audit?.auditTime,
    ...(report.status?.conditions ?? []).map((c) => c.lastTransitionTime),
  ].map((t) => Date.parse(t ?? '')).filter((t) => Number.isFinite(t));
  return times.length > 0 ? Math.max(...times) : 0;
}

/**
 * Whether a report is no longer worth keeping: no finding, the agent at OK, quiet for the TTL. Under
 * --reports=all a matched pod's report is wanted however quiet (deleting it would only make the agent or
 * the next audit recreate it), so there only reports of pods no policy matches expire.
 */
export function reportExpired(report: ConcurrencyReport, mode: ReportsMode, podMatched: boolean, ttlMs: number, now: number): boolean {
  if (hasFinding(report) || !runtimeLevelOK(report)) return false;
  if (mode === 'all' && podMatched) return false;
  return now - quietSince(report) >= ttlMs;
}
