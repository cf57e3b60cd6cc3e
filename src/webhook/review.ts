// admission.k8s.io/v1 AdmissionReview: strict parsing of what the API server sends and the responses we
// send back. Parsing never throws: a malformed review yields a message for a 400, because anything the
// API server itself sends is well-formed and a 400 therefore points at a caller that is not the API server.

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_REVIEW_KIND = 'AdmissionReview';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
const OPERATIONS: ReadonlySet<string> = new Set<Operation>(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
}

/** A JSON object as decoded from the wire; the admission logic narrows it further. */
export type JsonObject = Record<string, unknown>;

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: JsonObject;
  oldObject?: JsonObject;
  dryRun?: boolean;
}

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface AdmissionStatus {
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
  details?: { causes: StatusCause[] };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_REVIEW_KIND;
  response: AdmissionResponse;
}

export type ParsedReview =
  | { ok: true; request: AdmissionRequest }
  | { ok: false; message: string; uid?: string };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): value is string | undefined {
  return value === undefined || typeof value === 'string';
}

function fail(message: string, uid?: string): ParsedReview {
  return uid === undefined ? { ok: false, message } : { ok: false, message, uid };
}

/**
 * Validates the envelope of an AdmissionReview (apiVersion, kind, request.uid, kind/resource/operation,
 * the shape of object/oldObject). The object's own schema is the admission logic's business: a review of
 * a kind we do not handle must still be answered, so nothing here depends on the kind.
 */
export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isObject(body)) return fail('malformed AdmissionReview: the body must be a JSON object');
  const { apiVersion, kind, request } = body;
  if (apiVersion !== ADMISSION_API_VERSION) {
    return fail(`unsupported AdmissionReview apiVersion ${JSON.stringify(apiVersion ?? null)}: only ${ADMISSION_API_VERSION} is served (set admissionReviewVersions: [v1])`);
  }
  if (kind !== ADMISSION_REVIEW_KIND) {
    return fail(`malformed AdmissionReview: kind is ${JSON.stringify(kind ?? null)}, expected ${ADMISSION_REVIEW_KIND}`);
  }
  if (!isObject(request)) return fail('malformed AdmissionReview: request is missing');
  const { uid } = request;
  if (typeof uid !== 'string' || uid.length === 0) return fail('malformed AdmissionReview: request.uid is missing');

  const gvk = request['kind'];
  if (!isObject(gvk) || typeof gvk['kind'] !== 'string' || typeof gvk['version'] !== 'string' || !optionalString(gvk['group'])) {
    return fail('malformed AdmissionReview: request.kind must be {group, version, kind}', uid);
  }
  const gvr = request['resource'];
  if (!isObject(gvr) || typeof gvr['resource'] !== 'string' || typeof gvr['version'] !== 'string' || !optionalString(gvr['group'])) {
    return fail('malformed AdmissionReview: request.resource must be {group, version, resource}', uid);
  }
  const operation = request['operation'];
  if (typeof operation !== 'string' || !OPERATIONS.has(operation)) {
    return fail(`malformed AdmissionReview: request.operation ${JSON.stringify(operation ?? null)} is not one of CREATE, UPDATE, DELETE, CONNECT`, uid);
  }
  const { subResource, name, namespace, object, oldObject, dryRun } = request;
  if (!optionalString(subResource) || !optionalString(name) || !optionalString(namespace)) {
    return fail('malformed AdmissionReview: request.subResource, name and namespace must be strings', uid);
  }
  if (object !== undefined && object !== null && !isObject(object)) {
    return fail('malformed AdmissionReview: request.object must be an object or null', uid);
  }
  if (oldObject !== undefined && oldObject !== null && !isObject(oldObject)) {
    return fail('malformed AdmissionReview: request.oldObject must be an object or null', uid);
  }
  if (dryRun !== undefined && typeof dryRun !== 'boolean') {
    return fail('malformed AdmissionReview: request.dryRun must be a boolean', uid);
  }
  const userInfo = isObject(request['userInfo']) ? request['userInfo'] : {};

  const parsed: AdmissionRequest = {
    uid,
    kind: { group: gvk['group'] ?? '', version: gvk['version'], kind: gvk['kind'] },
    resource: { group: gvr['group'] ?? '', version: gvr['version'], resource: gvr['resource'] },
    operation: operation as Operation,
    userInfo: {
      ...(typeof userInfo['username'] === 'string' ? { username: userInfo['username'] } : {}),
      ...(Array.isArray(userInfo['groups']) ? { groups: userInfo['groups'].filter((g): g is string => typeof g === 'string') } : {}),
    },
  };
  if (subResource) parsed.subResource = subResource;
  if (name) parsed.name = name;
  if (namespace) parsed.namespace = namespace;
  if (isObject(object)) parsed.object = object;
  if (isObject(oldObject)) parsed.oldObject = oldObject;
  if (dryRun) parsed.dryRun = true;
  return { ok: true, request: parsed };
}

export function reviewResponse(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_REVIEW_KIND, response };
}

export function allow(uid: string, warnings: readonly string[] = []): AdmissionResponse {
  return warnings.length > 0 ? { uid, allowed: true, warnings: [...warnings] } : { uid, allowed: true };
}

/**
 * A denial. The API server prefixes `message` with "admission webhook … denied the request: " and passes
 * status (code, reason, details.causes) through to the client, so kubectl prints the message.
 */
export function deny(uid: string, message: string, causes: readonly StatusCause[], warnings: readonly string[] = []): AdmissionResponse {
  const response: AdmissionResponse = {
    uid,
    allowed: false,
    status: {
      status: 'Failure',
      code: 403,
      reason: 'Forbidden',
      message,
      ...(causes.length > 0 ? { details: { causes: [...causes] } } : {}),
    },
  };
  if (warnings.length > 0) response.warnings = [...warnings];
  return response;
}

/** The key admission logic dispatches on: `apps/Deployment`, `/Pod` (core group is empty). */
export function kindKey(kind: GroupVersionKind): string {
  return `${kind.group}/${kind.kind}`;
}
