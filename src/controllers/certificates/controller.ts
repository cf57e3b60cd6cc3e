// Keeps the webhook's certificate Secret and the VWC's caBundle current (leader only). Each run reads the
// Secret and the VWC, takes at most one step of ./rotation.ts, then makes every webhook's
// clientConfig.caBundle equal the bundle the Secret implies — by JSON patch of exactly those fields, so an
// operator's emergency edit of anything else in the VWC (failurePolicy, namespaceSelector) stands.
// Secret writes are PUTs with the resourceVersion read: a stale leader's write fails instead of undoing
// a newer one.
import { FIELD_MANAGER_CONTROLLER } from '../../api/index.ts';
import {
  SECRETS, VALIDATING_WEBHOOK_CONFIGURATIONS, WorkQueue, describeError, isConflict, isNotFound,
  type KubeClient, type KubeLogger, type KubeObject, type ReconcileResult,
} from '../../kube/index.ts';
import type { Registry } from 'prom-client';
import type { EventRecorder } from '../../kube/index.ts';
import { createAuthority, issueServingCertificate } from '../../pki/index.ts';
import {
  NEXT_CA_PUBLISHED_ANNOTATION, ROTATED_ANNOTATION, ROTATE_ANNOTATION, SECRET_KEYS, desiredBundle, planCertificates,
  type CertificateAction, type CertificateSettings, type SecretState,
} from './rotation.ts';

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface WebhookConfiguration extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export interface CertificateControllerOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  webhookConfiguration: string;
  settings: CertificateSettings;
  /** How often to look even when nothing is due (a deleted Secret, an edited caBundle). */
  checkIntervalMs: number;
  events?: EventRecorder;
  registry?: Registry;
  logger: KubeLogger;
  now?: () => number;
}

const KEY = 'certificate';

function decode(data: Record<string, string> | undefined): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function encode(data: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) if (v !== undefined) out[k] = Buffer.from(v).toString('base64');
  return out;
}

export class CertificateController {
  private readonly options: CertificateControllerOptions;
  private readonly queue: WorkQueue;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** Steps taken (tests read it; the API server's audit log is the judge of who wrote). */
  readonly steps: CertificateAction['kind'][] = [];

  constructor(options: CertificateControllerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.queue = new WorkQueue({
      name: 'certificates', reconcile: (_key, signal) => this.reconcile(signal), logger: options.logger,
      baseDelayMs: 500, maxDelayMs: 30_000, ...(options.registry ? { registry: options.registry } : {}),
    });
  }

  start(): void {
    this.queue.start();
    this.queue.add(KEY);
    this.timer = setInterval(() => this.queue.add(KEY), this.options.checkIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.queue.stop();
  }

  /** Runs a check now (after a change the caller knows of). */
  poke(): void {
    this.queue.add(KEY);
  }

  private async reconcile(signal: AbortSignal): Promise<ReconcileResult> {
    const { client, namespace, secretName, settings } = this.options;
    let secret = await client.getIfExists<SecretObject>(SECRETS, namespace, secretName);
    const now = this.now();
    const state: SecretState | undefined = secret
      ? { data: decode(secret.data), annotations: { ...secret.metadata.annotations } }
      : undefined;
    const action = planCertificates(state, settings, now);
    if (action.kind !== 'none') {
      const next = await this.step(action, state, now);
      // Generating keys takes a while: leadership may have ended meanwhile, and then nothing is written.
      if (signal.aborted) return {};
      secret = await this.writeSecret(secret, next);
      this.steps.push(action.kind);
      this.options.logger.info({ secret: secretName, step: action.kind, reason: action.reason }, 'webhook certificate changed');
    }
    const data = decode(secret!.data);
    if (signal.aborted) return {};
    const bundlePublished = await this.ensureBundle(desiredBundle(data));
    const annotations = secret!.metadata.annotations ?? {};
    if (bundlePublished && data[SECRET_KEYS.nextCa] && !annotations[NEXT_CA_PUBLISHED_ANNOTATION]) {
      // From now on the API servers have bundlePropagationMs to load the bundle before the new CA signs.
      await this.writeSecret(secret, { data, annotations: { ...annotations, [NEXT_CA_PUBLISHED_ANNOTATION]: new Date(this.now()).toISOString() } });
      return { requeueAfterMs: settings.bundlePropagationMs };
    }
    const after = planCertificates({ data, annotations }, settings, this.now());
    if (after.kind !== 'none') return { requeueAfterMs: 1 };
    return { requeueAfterMs: Math.min(after.recheckInMs, this.options.checkIntervalMs) };
  }

  private async step(action: Exclude<CertificateAction, { kind: 'none' }>, state: SecretState | undefined, now: number): Promise<SecretState> {
    const { settings } = this.options;
    const data = { ...state?.data };
    const annotations = { ...state?.annotations };
    const leafRequest = { commonName: settings.dnsNames[0] ?? this.options.webhookConfiguration, dnsNames: settings.dnsNames, ipAddresses: settings.ipAddresses, validityMs: settings.leafValidityMs };
    switch (action.kind) {
      case 'create': {
        const ca = await createAuthority(`${this.options.webhookConfiguration}-ca-${new Date(now).toISOString().slice(0, 10)}`, settings.caValidityMs, now);
        const leaf = await issueServingCertificate(ca, leafRequest, now);
        for (const key of Object.values(SECRET_KEYS)) delete data[key];
        Object.assign(data, { [SECRET_KEYS.ca]: ca.certPem, [SECRET_KEYS.caKey]: ca.keyPem, [SECRET_KEYS.cert]: leaf.certPem, [SECRET_KEYS.key]: leaf.keyPem });
        delete annotations[NEXT_CA_PUBLISHED_ANNOTATION];
        break;
      }
      case 'publish-next-ca': {
        const ca = await createAuthority(`${this.options.webhookConfiguration}-ca-${new Date(now).toISOString().slice(0, 19)}`, settings.caValidityMs, now);
        data[SECRET_KEYS.nextCa] = ca.certPem;
        data[SECRET_KEYS.nextCaKey] = ca.keyPem;
        delete annotations[NEXT_CA_PUBLISHED_ANNOTATION];
        break;
      }
      case 'promote-next-ca': {
        const ca = { certPem: data[SECRET_KEYS.nextCa]!, keyPem: data[SECRET_KEYS.nextCaKey]! };
        const leaf = await issueServingCertificate(ca, leafRequest, now);
        data[SECRET_KEYS.previousCa] = data[SECRET_KEYS.ca];
        data[SECRET_KEYS.ca] = ca.certPem;
        data[SECRET_KEYS.caKey] = ca.keyPem;
        data[SECRET_KEYS.cert] = leaf.certPem;
        data[SECRET_KEYS.key] = leaf.keyPem;
        delete data[SECRET_KEYS.nextCa];
        delete data[SECRET_KEYS.nextCaKey];
        delete annotations[NEXT_CA_PUBLISHED_ANNOTATION];
        if (annotations[ROTATE_ANNOTATION]) annotations[ROTATED_ANNOTATION] = annotations[ROTATE_ANNOTATION];
        break;
      }
      case 'renew-leaf': {
        const leaf = await issueServingCertificate({ certPem: data[SECRET_KEYS.ca]!, keyPem: data[SECRET_KEYS.caKey]! }, leafRequest, now);
        data[SECRET_KEYS.cert] = leaf.certPem;
        data[SECRET_KEYS.key] = leaf.keyPem;
        break;
      }
      case 'retire-previous-ca':
        delete data[SECRET_KEYS.previousCa];
        break;
    }
    return { data, annotations };
  }

  private async writeSecret(current: SecretObject | undefined, next: SecretState): Promise<SecretObject> {
    const { client, namespace, secretName } = this.options;
    const annotations = Object.fromEntries(Object.entries(next.annotations).filter((e): e is [string, string] => e[1] !== undefined));
    const body: SecretObject = {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: {
        ...(current?.metadata ?? {}),
        name: secretName, namespace,
        labels: { ...current?.metadata.labels, 'app.kubernetes.io/name': 'concurrency-guard', 'app.kubernetes.io/component': 'webhook-certificate' },
        annotations,
      },
      data: encode(next.data),
    };
    try {
      return current
        ? await client.replace<SecretObject>(SECRETS, body, { fieldManager: FIELD_MANAGER_CONTROLLER })
        : await client.create<SecretObject>(SECRETS, body, { fieldManager: FIELD_MANAGER_CONTROLLER });
    } catch (error) {
      // Someone wrote in between (an earlier leader, an operator): read again and decide again.
      if (isConflict(error) || (isNotFound(error) && current)) throw new Error(`certificate Secret changed under us: ${describeError(error)}`, { cause: error });
      throw error;
    }
  }

  /** Patches each webhook's caBundle that differs; true when every webhook carries `bundle`. */
  private async ensureBundle(bundle: string): Promise<boolean> {
    const { client, webhookConfiguration } = this.options;
    const vwc = await client.getIfExists<WebhookConfiguration>(VALIDATING_WEBHOOK_CONFIGURATIONS, undefined, webhookConfiguration);
    if (!vwc) {
      this.options.logger.warn({ webhookConfiguration }, 'ValidatingWebhookConfiguration not found; its caBundle will be set once it exists (Helm or `up` creates it)');
      return false;
    }
    const encoded = Buffer.from(bundle).toString('base64');
    const operations: unknown[] = [];
    (vwc.webhooks ?? []).forEach((webhook, index) => {
      if (webhook.clientConfig?.caBundle === encoded) return;
      // The name test makes the patch fail rather than land on another webhook if the list was reordered.
      operations.push({ op: 'test', path: `/webhooks/${index}/name`, value: webhook.name });
      operations.push({ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: encoded });
    });
    if (operations.length === 0) return true;
    await client.patch(VALIDATING_WEBHOOK_CONFIGURATIONS, undefined, webhookConfiguration, operations, 'json', { fieldManager: FIELD_MANAGER_CONTROLLER });
    this.options.logger.info({ webhookConfiguration, webhooks: operations.length / 2 }, 'caBundle updated');
    return true;
  }
}
