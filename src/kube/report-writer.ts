// Writes a pod's ConcurrencyReport the way DESIGN.md says, for either writer (controller or agent):
// 1. ensure the report exists by applying metadata + spec (SSA on /status cannot create), with an
//    ownerReference to the Pod (uid set, no blockOwnerDeletion) so the garbage collector removes it with
//    the pod; a report left by an earlier pod of the same name (StatefulSet web-0) is deleted with a uid
//    precondition first, so its stale status never leaks into the new pod's report;
// 2. apply status with the writer's field manager, after reading the report and checking its podUID,
//    conditional on the resourceVersion read (409 if it changed since), so a write can never land on a
//    report that now belongs to another pod. (A metadata.uid in the body cannot do this on /status: the
//    API server's status strategy replaces the request's metadata with the stored one.)
// A write identical to what this writer last applied to the same pod's report is skipped: report volume
// is what takes etcd down.
import { createHash } from 'node:crypto';
import type { ConcurrencyReport, ConcurrencyReportStatus } from '../api/index.ts';
import { Applier, type FieldManager } from './apply.ts';
import { isConflict, isNotFound, type KubeClient, type KubeObject } from './client.ts';
import { silentLogger, type KubeLogger } from './logger.ts';
import { CONCURRENCY_REPORTS, PODS } from './resources.ts';

export interface ReportPod {
  namespace: string;
  name: string;
  uid: string;
  /** Empty until scheduled. */
  nodeName?: string;
}

export type ReportWriteOutcome =
  | 'created'     // no report existed: created, then status applied
  | 'recreated'   // a report of an earlier pod with this name was deleted, a new one created
  | 'updated'     // status applied to the existing report
  | 'unchanged'   // same as this writer's last write: nothing sent
  | 'pod-gone';   // the pod no longer exists (or is another incarnation): nothing written

export interface ReportWriterOptions {
  client: KubeClient;
  fieldManager: FieldManager;
  logger?: KubeLogger;
}

/** JSON with object keys sorted, so equal values compare equal whatever order they were built in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export class ReportWriter {
  private readonly client: KubeClient;
  private readonly applier: Applier;
  private readonly log: KubeLogger;
  /** Per report key: the report (uid) we made sure belongs to this pod uid. */
  private readonly ensured = new Map<string, { podUID: string; reportUID: string; nodeName: string }>();
  /** Per report key: a digest of what we last applied to its status. */
  private readonly lastApplied = new Map<string, { podUID: string; status: string }>();

  constructor(options: ReportWriterOptions) {
    this.client = options.client;
    this.applier = new Applier(options.client, options.fieldManager);
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Applies this writer's part of the pod's report status (only the fields this writer owns: the
   * server removes fields this manager applied before and leaves out now).
   */
  async write(pod: ReportPod, status: ConcurrencyReportStatus): Promise<ReportWriteOutcome> {
    const key = `${pod.namespace}/${pod.name}`;
    // A digest, not the JSON: the controller keeps one per pod (10k pods × a few KiB would be tens of MiB).
    const statusDigest = createHash('sha256').update(canonicalJson(status)).digest('base64');
    const last = this.lastApplied.get(key);
    const ensured = this.ensured.get(key);
    if (last && last.podUID === pod.uid && last.status === statusDigest
      && ensured?.podUID === pod.uid && ensured.nodeName === (pod.nodeName ?? '')) return 'unchanged';
    let outcome: ReportWriteOutcome = 'updated';
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        let resourceVersion: string | undefined;
        const target = this.ensured.get(key);
        if (!target || target.podUID !== pod.uid || target.nodeName !== (pod.nodeName ?? '')) {
          const result = await this.ensure(pod);
          if (result.outcome === 'pod-gone') {
            this.forget(pod.namespace, pod.name);
            return 'pod-gone';
          }
          if (result.outcome !== 'updated') outcome = result.outcome;
          resourceVersion = result.resourceVersion;
        } else {
          // The podUID check of this write. metadata.uid in a /status apply cannot do it: the status
          // strategy copies the stored metadata over the request's, so a uid there is silently ignored.
          // The resourceVersion is enforced, so read, check, and write against exactly what we checked.
          const current = await this.client.getIfExists<ConcurrencyReport>(CONCURRENCY_REPORTS, pod.namespace, pod.name);
          if (!current || current.spec.podUID !== pod.uid) {
            this.forget(pod.namespace, pod.name);
            continue;
          }
          resourceVersion = current.metadata.resourceVersion;
        }
        await this.applier.applyStatus(CONCURRENCY_REPORTS, {
          metadata: { name: pod.name, namespace: pod.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
          status,
        });
        this.lastApplied.set(key, { podUID: pod.uid, status: statusDigest });
        return outcome;
      } catch (error) {
        // 404: deleted since we looked (pod gone, or the controller's TTL); 409: written since we looked
        // (usually the other writer; possibly replaced for another pod). Look again.
        if (!isNotFound(error) && !isConflict(error)) throw error;
        this.log.debug({ report: key, status: (error as { status?: number }).status }, 'report changed under us; looking again');
        if (isNotFound(error)) this.forget(pod.namespace, pod.name);
      }
    }
    throw new Error(`report ${key}: gave up after 4 attempts (it keeps changing under us)`);
  }

  /** Makes sure the report exists for exactly this pod; 'pod-gone' when the pod (this uid) is gone. */
  private async ensure(pod: ReportPod): Promise<{ outcome: Exclude<ReportWriteOutcome, 'unchanged'>; resourceVersion?: string }> {
    const key = `${pod.namespace}/${pod.name}`;
    let existing = await this.client.getIfExists<ConcurrencyReport>(CONCURRENCY_REPORTS, pod.namespace, pod.name);
    let replaced = false;
    if (!existing || existing.spec.podUID !== pod.uid) {
      // Creating or replacing is the one time we read the pod: a report must not outlive its pod, a stale
      // informer can hand us a pod deleted a moment ago, and a writer that is behind must never delete
      // the report of the pod that replaced the one it knows.
      const current = await this.client.getIfExists<KubeObject>(PODS, pod.namespace, pod.name);
      if (!current || current.metadata.uid !== pod.uid || current.metadata.deletionTimestamp) return { outcome: 'pod-gone' };
      if (existing) {
        const deleted = await this.deleteReport(pod.namespace, pod.name, existing.metadata.uid!);
        this.log.info({ report: key, deleted }, 'report of an earlier pod with this name deleted');
        existing = undefined;
        replaced = true;
      }
    }
    const spec: Record<string, string> = { podName: pod.name, podUID: pod.uid };
    if (pod.nodeName) spec['nodeName'] = pod.nodeName;
    const applied = await this.applier.apply<ConcurrencyReport>(CONCURRENCY_REPORTS, {
      metadata: {
        name: pod.name, namespace: pod.namespace,
        // On an existing report, apply to exactly the version we checked (409 if it changed since).
        ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid }],
      },
      spec,
    });
    if (applied.spec.podUID !== pod.uid) {
      // Someone recreated it for yet another pod between our read and our apply: try again next time.
      throw new Error(`report ${key} belongs to pod ${applied.spec.podUID}, not ${pod.uid}`);
    }
    this.ensured.set(key, { podUID: pod.uid, reportUID: applied.metadata.uid!, nodeName: pod.nodeName ?? '' });
    const resourceVersion = applied.metadata.resourceVersion;
    const outcome = existing ? 'updated' : replaced ? 'recreated' : 'created';
    return resourceVersion ? { outcome, resourceVersion } : { outcome };
  }

  /**
   * Deletes the report only if it is still the incarnation with this uid (DeleteOptions.preconditions):
   * true when deleted, false when it was already gone or is another incarnation now.
   */
  async deleteReport(namespace: string, name: string, reportUID: string): Promise<boolean> {
    this.forget(namespace, name);
    try {
      await this.client.delete(CONCURRENCY_REPORTS, namespace, name, { preconditions: { uid: reportUID } });
      return true;
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return false;
      throw error;
    }
  }

  /** Drops what we remember about a report (call when an informer sees it deleted). */
  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.ensured.delete(key);
    this.lastApplied.delete(key);
  }
}
