// Admission decisions around the policy engine: which reviews are ours to judge (DESIGN.md "Webhook"),
// what is never blocked (excluded namespaces, deletions, objects being deleted, `kubectl debug`), and how
// the engine's denials and warnings become an AdmissionReview answer. The engine itself decides which
// findings deny (children of admitted workloads warn, UPDATE denies only new violations).
import { HANDLED_KIND_KEYS, REGISTRATIONS, type Registration } from './configuration.ts';
import type { AdmissionRequest, JsonObject, StatusCause } from './review.ts';
import type { AdmissionDecision, Admit, FindingCount } from './server.ts';

/** One denying finding, as the engine reports it. */
export interface Denial {
  rule: string;
  message: string;
  container?: string;
  /** JSON path of the offending field, e.g. spec.template.spec.containers[0].env[1]. */
  field?: string;
}

export interface PolicyEvaluation {
  denials: readonly Denial[];
  /** Each ≤ 120 characters: rule id + short fix. */
  warnings: readonly string[];
  findings: readonly FindingCount[];
  /** The engine's own status.message for the denials; built from them when absent. */
  message?: string;
}

export interface EvaluationInput {
  kind: string;
  operation: 'CREATE' | 'UPDATE';
  subResource: string;
  namespace: string;
  object: JsonObject;
  oldObject?: JsonObject;
}

/** The engine, bound to the current caches (policies, namespace labels, LimitRanges). */
export type Evaluate = (input: EvaluationInput) => PolicyEvaluation;

export interface AdmissionOptions {
  evaluate: Evaluate;
  /** Namespaces never blocked, whatever the VWC's namespaceSelector says. */
  excludedNamespaces: readonly string[];
}

const ALLOWED: AdmissionDecision = { allowed: true };
const MAX_CAUSES = 16;
/** Room left under the API server's limits for the message kubectl prints. */
const MAX_MESSAGE_LENGTH = 4_000;

function registrationFor(request: AdmissionRequest): Registration | undefined {
  const subResource = request.subResource ?? '';
  return REGISTRATIONS.find((r) => r.group === request.resource.group && r.resource === request.resource.resource && r.subResource === subResource);
}

function hasDeletionTimestamp(object: JsonObject | undefined): boolean {
  const metadata = object?.['metadata'];
  return typeof metadata === 'object' && metadata !== null && Boolean((metadata as Record<string, unknown>)['deletionTimestamp']);
}

/** "denied: <first>; <second> (and N more)" — kubectl shows only status.message, so it must be complete. */
export function denialMessage(denials: readonly Denial[]): string {
  const lines = denials.map((d) => d.message);
  let message = lines.length === 1 ? lines[0]! : lines.map((line, i) => `(${i + 1}) ${line}`).join('; ');
  if (message.length > MAX_MESSAGE_LENGTH) message = `${message.slice(0, MAX_MESSAGE_LENGTH - 20)}… (${denials.length} findings)`;
  return message;
}

function causes(denials: readonly Denial[]): StatusCause[] {
  return denials.slice(0, MAX_CAUSES).map((d) => ({ reason: d.rule, message: d.message, ...(d.field ? { field: d.field } : {}) }));
}

export function createAdmit(options: AdmissionOptions): Admit {
  const excluded = new Set(options.excludedNamespaces);
  return (request) => {
    const registration = registrationFor(request);
    // A well-formed review of something we are not registered for (or an operation we do not judge):
    // allowed, so a misconfigured VWC can never turn into an outage.
    if (!registration || request.operation === 'DELETE' || request.operation === 'CONNECT') return ALLOWED;
    if (!registration.operations.includes(request.operation)) return ALLOWED;
    const namespace = request.namespace ?? '';
    if (excluded.has(namespace)) return ALLOWED;
    const object = request.object;
    if (!object || hasDeletionTimestamp(object)) return ALLOWED;

    const evaluation = options.evaluate({
      kind: registration.kind,
      operation: request.operation,
      subResource: registration.subResource,
      namespace,
      object,
      ...(request.oldObject ? { oldObject: request.oldObject } : {}),
    });
    const warnings = [...evaluation.warnings];
    // `kubectl debug` is never blocked: a denial on an ephemeral-container update is only a warning.
    const warnOnly = registration.subResource === 'ephemeralcontainers';
    if (evaluation.denials.length === 0 || warnOnly) {
      if (warnOnly) for (const d of evaluation.denials) warnings.push(shortWarning(d));
      return { allowed: true, warnings, findings: evaluation.findings };
    }
    return {
      allowed: false,
      message: evaluation.message ?? denialMessage(evaluation.denials),
      causes: causes(evaluation.denials),
      warnings,
      findings: evaluation.findings,
    };
  };
}

/** Warnings are ≤ 120 characters (DESIGN.md): rule id first, then as much of the message as fits. */
export function shortWarning(denial: Denial): string {
  const text = `${denial.rule}: ${denial.message}`;
  return text.length <= 120 ? text : `${text.slice(0, 119)}…`;
}

export { HANDLED_KIND_KEYS };
