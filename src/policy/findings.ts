// What the engine reports: one Finding per rule, container and subject, carrying the strictest
// enforcement among the policies that raise it, and an RFC 6902 patch where a mechanical fix exists.
import type { Operation } from 'rfc6902';
import type { Enforcement } from '../api/index.ts';
import { ENFORCEMENT_RANK } from '../api/index.ts';

export interface Finding {
  /** Stable rule id, e.g. `gomaxprocs/above-cpu-limit` (used in messages, reports, metrics and docs). */
  rule: string;
  /** The container it concerns; absent for pod-level findings (sysctls). */
  container?: string;
  /** Field path in the admitted object, e.g. `spec.template.spec.containers[0].env[2].value`. */
  path: string;
  /** The conflicting values, named. */
  values: Readonly<Record<string, string | number | boolean>>;
  message: string;
  /** What to change, in words (the first sentence is short enough for a warning). */
  fix: string;
  enforcement: Enforcement;
  /** Names of the policies that raise it. */
  policies: string[];
  /**
   * The mechanical fix, relative to the admitted object; absent when none exists. Each patch is computed
   * on the object as evaluated, so two patches may rewrite the same field (one NRI annotation holding
   * nofile and nproc): apply one, re-evaluate, apply the next (what `check --fix` does).
   */
  patch?: Operation[];
  /** Identity across an UPDATE: rule + container + subject, independent of list positions. */
  key: string;
}

/** The weaker of two enforcements (used to cap a rule or a context at Warn). */
export function weaker(a: Enforcement, b: Enforcement): Enforcement {
  return ENFORCEMENT_RANK[a] <= ENFORCEMENT_RANK[b] ? a : b;
}

/** The stricter of two enforcements (several policies raising one finding). */
export function stricter(a: Enforcement, b: Enforcement): Enforcement {
  return ENFORCEMENT_RANK[a] >= ENFORCEMENT_RANK[b] ? a : b;
}

/** What a rule module hands back before policies and context are applied. */
export interface RawFinding {
  rule: string;
  container?: string;
  path: string;
  subject: string;
  values: Readonly<Record<string, string | number | boolean>>;
  message: string;
  fix: string;
  /** The rule's own ceiling: Warn for rules that can only ever warn. */
  cap: Enforcement;
  patch?: () => Operation[] | undefined;
}

export type Emit = (finding: RawFinding) => void;

const WARNING_LIMIT = 120;

/** A warning line: rule id + short fix, at most 120 characters (what kubectl shows). */
export function warningText(finding: Pick<Finding, 'rule' | 'container' | 'fix'>): string {
  const where = finding.container ? ` (${finding.container})` : '';
  const firstSentence = finding.fix.split(/(?<=\.)\s/)[0] ?? finding.fix;
  const text = `${finding.rule}${where}: ${firstSentence}`;
  return text.length <= WARNING_LIMIT ? text : `${text.slice(0, WARNING_LIMIT - 1)}…`;
}
