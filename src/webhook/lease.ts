// Each webhook replica announces, on its own Lease `concurrency-guard-webhook-<pod>`, the generation of
// every policy it is enforcing. The controller sets a policy Ready only when every live replica (Lease
// renewed within its duration) serves that policy's generation. Written by server-side apply with the
// webhook's field manager: on a change of the served set (debounced) and on every renewal.
import { FIELD_MANAGER_WEBHOOK, SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL, WEBHOOK_LEASE_PREFIX } from '../api/index.ts';
import { Applier, LEASES, canonicalJson, describeError, microTime, type KubeClient, type KubeLogger } from '../kube/index.ts';

export { SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL, WEBHOOK_LEASE_PREFIX };

export const DEFAULT_LEASE_DURATION_SECONDS = 60;
export const DEFAULT_LEASE_RENEW_MS = 20_000;
const CHANGE_DEBOUNCE_MS = 200;

export function webhookLeaseName(podName: string): string {
  // Lease names are DNS subdomains (≤ 253); pod names already are, so the prefix keeps them valid.
  return `${WEBHOOK_LEASE_PREFIX}${podName}`;
}

function renderServedGenerations(generations: ReadonlyMap<string, number>): string {
  return canonicalJson(Object.fromEntries(generations));
}

export interface ServedGenerationsLeaseOptions {
  client: KubeClient;
  namespace: string;
  podName: string;
  /** The pod's uid (downward API): makes the Lease an owned object, garbage-collected with the pod. */
  podUid?: string;
  servedGenerations: () => ReadonlyMap<string, number>;
  leaseDurationSeconds?: number;
  renewIntervalMs?: number;
  logger?: KubeLogger;
}

export class ServedGenerationsLease {
  readonly name: string;
  private readonly options: ServedGenerationsLeaseOptions;
  private readonly applier: Applier;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastWritten: string | undefined;
  private stopped = false;

  constructor(options: ServedGenerationsLeaseOptions) {
    this.options = options;
    this.name = webhookLeaseName(options.podName);
    this.applier = new Applier(options.client, FIELD_MANAGER_WEBHOOK);
  }

  /** The annotation value last written successfully. */
  get written(): string | undefined {
    return this.lastWritten;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
    this.timer = setInterval(() => this.schedule(0), this.options.renewIntervalMs ?? DEFAULT_LEASE_RENEW_MS);
    this.timer.unref();
  }

  /** Call when the served policies change; writes soon (coalescing bursts of policy events). */
  changed(): void {
    if (!this.stopped) this.schedule(CHANGE_DEBOUNCE_MS);
  }

  /** Writes now and resolves when done (tests, and a final write is not needed on shutdown). */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    return this.writing;
  }

  private schedule(delayMs: number): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (!this.stopped) void this.flush();
    }, delayMs);
    this.debounce.unref();
  }

  private async write(): Promise<void> {
    const { namespace, podName, podUid } = this.options;
    const served = renderServedGenerations(this.options.servedGenerations());
    try {
      await this.applier.apply(LEASES, {
        metadata: {
          name: this.name,
          namespace,
          labels: { [WEBHOOK_LEASE_LABEL]: 'true', 'app.kubernetes.io/name': 'concurrency-guard', 'app.kubernetes.io/component': 'webhook' },
          annotations: { [SERVED_GENERATIONS_ANNOTATION]: served },
          ...(podUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: podName, uid: podUid }] } : {}),
        },
        spec: {
          holderIdentity: podName,
          leaseDurationSeconds: this.options.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS,
          renewTime: microTime(Date.now()),
        },
      });
      if (served !== this.lastWritten) this.options.logger?.info({ lease: this.name, served }, 'served policy generations announced');
      this.lastWritten = served;
    } catch (error) {
      // The next renewal retries; a replica whose Lease lapses just stops counting towards Ready.
      this.options.logger?.warn({ lease: this.name, error: describeError(error) }, 'could not write the webhook Lease');
    }
  }
}
