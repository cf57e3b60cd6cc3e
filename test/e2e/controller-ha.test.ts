// Issue 7, the high-availability half: two controller replicas in separate processes, each with its own
// client certificate (so the API server's audit log names who wrote what), the real webhook (in this
// process) serving the certificate the controller issues from the Secret, a VWC with failurePolicy Fail
// and no caBundle until the controller sets it.
// - policy status, reports, the Secret and the VWC are written by the leader only;
// - kill -9 of the leader: the other one leads within lease + retry + 1 s and carries on writing;
// - the API server restarted in place under the running leader: it converges without restarting and
//   without losing the change made just before the restart;
// - a forced CA rotation: the API server keeps calling the webhook without a single error across it
//   (every allowed dry-run is paired with a denied one, so "allowed" cannot mean "not called").
import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConcurrencyPolicy, ConcurrencyReport } from '../../src/api/index.ts';
import { ROTATED_ANNOTATION, ROTATE_ANNOTATION, SECRET_KEYS } from '../../src/controllers/index.ts';
import { renderValidatingWebhookConfiguration, runWebhook, type WebhookRuntime } from '../../src/webhook/index.ts';
import { startCluster, waitUntil, type AuditEvent, type Cluster } from '../support/cluster.ts';

const OWN = 'cg-ha-system';
const NS = 'ha-apps';
/** A namespace under a Deny policy: what the dry-runs that must be denied are sent to. */
const NS_DENY = 'ha-deny';
const POLICY = 'e2e-ha-policy';
const SECRET = 'cg-ha-webhook-tls';
const VWC = 'cg-ha-e2e';
const LEASE_MS = 4_000;
const RENEW_MS = 3_000;
const RETRY_MS = 1_000;
const ROOT = join(import.meta.dirname, '../..');

let cluster: Cluster;
let webhook: WebhookRuntime;
const webhookStop = new AbortController();
let webhookRunning: Promise<void>;
const webhookLog: { msg: string; level: number }[] = [];
const replicas: Replica[] = [];

interface LogLine { msg: string; level: number; identity?: string; time: string }

class Replica {
  readonly name: string;
  readonly user: string;
  readonly child: ChildProcess;
  readonly lines: { line: LogLine; receivedAt: number }[] = [];

  constructor(name: string, user: string, kubeconfig: string) {
    this.name = name;
    this.user = user;
    const config = {
      namespace: OWN, podName: name, leaderElect: true, reportTtl: 600_000, resync: 3600_000, reports: 'problems',
      certificates: 'controller', webhookConfiguration: VWC, webhookService: 'concurrency-guard-webhook', certSecret: SECRET,
      kubeconfig, statusCoalesceMs: 500,
      leaderElection: { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_MS, retryPeriodMs: RETRY_MS, leaseName: 'cg-ha-controller' },
      certificate: { bundlePropagationMs: 3_000, checkIntervalMs: 1_000, ipAddresses: ['127.0.0.1'] },
    };
    const script = `
      import { runController } from ${JSON.stringify(join(ROOT, 'src/controllers/index.ts'))};
      import { createLogger } from ${JSON.stringify(join(ROOT, 'src/runtime/index.ts'))};
      const controller = new AbortController();
      process.on('SIGTERM', () => controller.abort(new Error('SIGTERM')));
      await runController({ ...JSON.parse(process.env.CG_CONTROLLER_CONFIG), log: createLogger({ name: 'ha', level: 'info' }) }, controller.signal);
    `;
    this.child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, CG_CONTROLLER_CONFIG: JSON.stringify(config) }, stdio: ['ignore', 'inherit', 'pipe'],
    });
    createInterface({ input: this.child.stderr! }).on('line', (text) => {
      try {
        this.lines.push({ line: JSON.parse(text) as LogLine, receivedAt: Date.now() });
      } catch {
        process.stderr.write(`[${name}] ${text}\n`);
      }
    });
  }

  /** Times this replica said it started leading. */
  leadingSince(): number[] {
    return this.lines.filter((l) => l.line.msg.startsWith('leading:')).map((l) => l.receivedAt);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

function pod(name: string, cpuLimit: string, gomaxprocs: string, namespace = NS): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  nodeName: node-a
  containers: [{name: app, image: registry.k8s.io/pause:3.10, resources: {limits: {cpu: "${cpuLimit}"}}, env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]}]
`;
}

/** Writes to what only the leader may write: policy status, reports, the Secret, the VWC. */
function leaderOnlyWrites(event: AuditEvent): boolean {
  if (!['create', 'update', 'patch', 'delete'].includes(event.verb)) return false;
  const ref = event.objectRef;
  if (!ref) return false;
  return (ref.resource === 'concurrencypolicies' && ref.subresource === 'status')
    || ref.resource === 'concurrencyreports'
    || (ref.resource === 'secrets' && ref.name === SECRET)
    || (ref.resource === 'validatingwebhookconfigurations' && ref.name === VWC);
}

function writesBy(user: string, since = 0): AuditEvent[] {
  return cluster.auditEvents((e) => leaderOnlyWrites(e) && e.user.username === user && Date.parse(e.stageTimestamp) >= since);
}

async function policyStatus(): Promise<ConcurrencyPolicy['status']> {
  return (await cluster.getJson<ConcurrencyPolicy>(['ccp', POLICY])).status;
}

async function reportRules(name: string): Promise<string[] | undefined> {
  const result = await cluster.kubectl(['get', 'ccr', name, '-n', NS, '-o', 'json'], { allowFailure: true });
  if (result.code !== 0) return undefined;
  return (JSON.parse(result.stdout) as ConcurrencyReport).status?.audit?.findings?.map((f) => f.rule);
}

async function waitForViolating(count: number, timeoutMs = 60_000): Promise<void> {
  let last: ConcurrencyPolicy['status'];
  try {
    await waitUntil(`violatingPods ${count}`, async () => {
      last = await policyStatus();
      return last?.violatingPods === count && last.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    }, timeoutMs, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status ${JSON.stringify(last)}`);
  }
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(OWN);
  await cluster.createNamespace(NS, { team: 'ha' });
  await cluster.createNamespace(NS_DENY, { team: 'ha-deny' });
  const docs: string[] = [];
  for (let i = 0; i < 6; i++) docs.push(pod(`ok-${i}`, '2', '2'));
  for (let i = 0; i < 4; i++) docs.push(pod(`bad-${i}`, '1', '4'));
  await cluster.kubectl(['apply', '-f', '-'], { input: docs.join('---\n') });
  await cluster.apply(`apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: ${POLICY}}
spec:
  match: {namespaceSelector: {matchLabels: {team: ha}}}
  enforcement: Warn
  gomaxprocs: {maxOverCPULimit: 0}
---
apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: e2e-ha-deny}
spec:
  match: {namespaceSelector: {matchLabels: {team: ha-deny}}}
  enforcement: Deny
  gomaxprocs: {maxOverCPULimit: 0}
`);
  for (const [name, user] of [['ha-a', 'e2e-ha-controller-a'], ['ha-b', 'e2e-ha-controller-b']] as const) {
    const identity = await cluster.controlPlane.issueClient(user, ['system:masters']);
    const kubeconfig = await cluster.writeKubeconfig(join(cluster.controlPlane.workDir, `${name}.kubeconfig`), { certPem: identity.certPem, keyPem: identity.keyPem });
    replicas.push(new Replica(name, user, kubeconfig));
  }
  // The webhook serves whatever the Secret holds; it listens once the controller has written one.
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) webhookLog.push(JSON.parse(line) as { msg: string; level: number });
      callback();
    },
  });
  const listening = Promise.withResolvers<WebhookRuntime>();
  webhookRunning = runWebhook({
    namespace: OWN, podName: 'ha-webhook-0', port: 0, certDir: '/nonexistent', certSecret: SECRET, metricsPort: 0, healthPort: 0,
    host: '127.0.0.1', kubeconfig: cluster.kubeconfigPath, failurePolicy: 'Fail', drainDelayMs: 100, certificatePollIntervalMs: 250,
    log: pino({ level: 'info' }, sink), onListening: (r) => listening.resolve(r),
  }, webhookStop.signal);
  webhookRunning.catch((error: unknown) => listening.reject(error));
  webhook = await listening.promise;
  // Created without a caBundle, as Helm does: the controller fills it in.
  const vwc = renderValidatingWebhookConfiguration({ name: VWC, namespace: OWN, url: `https://127.0.0.1:${webhook.port}`, failurePolicy: 'Fail' });
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(vwc) });
});

afterAll(async () => {
  for (const replica of replicas) {
    // What went wrong in a replica, when something did: its warnings and errors.
    const problems = replica.lines.filter((l) => l.line.level >= 40).slice(0, 20);
    if (problems.length > 0) console.log(`${replica.name} warnings/errors:\n${problems.map((l) => JSON.stringify(l.line)).join('\n')}`);
    if (replica.alive) replica.child.kill('SIGKILL');
  }
  webhookStop.abort();
  await webhookRunning?.catch(() => undefined);
  await cluster?.stop();
});

async function dryRun(name: string, cpuLimit: string, gomaxprocs: string, namespace = NS): Promise<{ code: number; output: string }> {
  const result = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: pod(name, cpuLimit, gomaxprocs, namespace), allowFailure: true });
  return { code: result.code, output: `${result.stdout}${result.stderr}` };
}

describe('controller replicas', () => {
  let leader: Replica;
  let follower: Replica;

  it('one leads; it sets the caBundle, the policy goes Ready with the right counts, reports appear', async () => {
    await waitUntil('a leader', () => replicas.some((r) => r.leadingSince().length > 0), 60_000);
    leader = replicas.find((r) => r.leadingSince().length > 0)!;
    follower = replicas.find((r) => r !== leader)!;
    await waitForViolating(4);
    const status = await policyStatus();
    expect(status?.matchedPods).toBe(10);
    for (let i = 0; i < 4; i++) expect(await reportRules(`bad-${i}`)).toEqual(['gomaxprocs/above-cpu-limit']);
    expect(await reportRules('ok-0')).toBeUndefined();
    // The VWC carries the CA: the API server calls the webhook, which denies and allows.
    const denied = await dryRun('deny-me', '1', '4', NS_DENY);
    expect(denied.output).toContain('admission webhook "validate.concurrencyguard.io" denied the request');
    expect((await dryRun('allow-me', '2', '2')).code).toBe(0);
  });

  it('only the leader wrote policy status, reports, the Secret and the VWC', () => {
    const byLeader = writesBy(leader.user);
    expect(byLeader.filter((e) => e.objectRef?.resource === 'secrets').length).toBeGreaterThanOrEqual(1);
    expect(byLeader.filter((e) => e.objectRef?.resource === 'validatingwebhookconfigurations').length).toBeGreaterThanOrEqual(1);
    expect(byLeader.filter((e) => e.objectRef?.resource === 'concurrencyreports').length).toBeGreaterThanOrEqual(4);
    expect(byLeader.filter((e) => e.objectRef?.resource === 'concurrencypolicies').length).toBeGreaterThanOrEqual(1);
    expect(writesBy(follower.user)).toEqual([]);
    expect(follower.leadingSince()).toEqual([]);
  });

  it('kill -9 of the leader: the other leads within lease + retry + 1 s and carries on', async () => {
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await waitUntil('the follower leads', () => follower.leadingSince().length > 0, 20_000, 50);
    const handover = follower.leadingSince()[0]! - killedAt;
    console.log(`handover after kill -9: ${handover} ms (bound ${LEASE_MS + RETRY_MS + 1_000} ms)`);
    expect(handover).toBeLessThanOrEqual(LEASE_MS + RETRY_MS + 1_000);
    await cluster.kubectl(['apply', '-f', '-'], { input: pod('after-kill', '1', '8') });
    await waitForViolating(5);
    expect(await reportRules('after-kill')).toEqual(['gomaxprocs/above-cpu-limit']);
    expect(writesBy(follower.user, killedAt).some((e) => e.objectRef?.name === 'after-kill')).toBe(true);
    expect(writesBy(leader.user, killedAt + 1_000)).toEqual([]);
  });

  it('the API server restarted in place: the leader converges without restarting and loses no update', async () => {
    const survivor = follower;
    const pid = survivor.child.pid;
    await cluster.kubectl(['apply', '-f', '-'], { input: pod('before-restart', '1', '16') });
    await cluster.controlPlane.restartApiServer({ downtimeMs: 4_000 });
    await waitForViolating(6, 90_000);
    expect(await reportRules('before-restart')).toEqual(['gomaxprocs/above-cpu-limit']);
    await cluster.kubectl(['apply', '-f', '-'], { input: pod('after-restart', '1', '3') });
    await waitForViolating(7, 60_000);
    expect(survivor.alive).toBe(true);
    expect(survivor.child.pid).toBe(pid);
  });

  it('a forced CA rotation: the API server calls the webhook without an error across it', async () => {
    const before = await cluster.getJson<{ data: Record<string, string>; metadata: { annotations?: Record<string, string> } }>(['secret', SECRET, '-n', OWN]);
    await cluster.kubectl(['annotate', 'secret', SECRET, '-n', OWN, `${ROTATE_ANNOTATION}=r1`]);
    const failures: string[] = [];
    let calls = 0;
    let rotated = false;
    let after: typeof before | undefined;
    const deadline = Date.now() + 60_000;
    // Keep calling until the rotation is done, and a few seconds beyond (connections re-dialled).
    let extra = 0;
    while (Date.now() < deadline && extra < 10) {
      const allowed = await dryRun(`rot-ok-${calls}`, '2', '2');
      const denied = await dryRun(`rot-deny-${calls}`, '1', '4', NS_DENY);
      calls++;
      if (allowed.code !== 0) failures.push(`allowed: ${allowed.output}`);
      if (!denied.output.includes('admission webhook "validate.concurrencyguard.io" denied the request')) failures.push(`denied: ${denied.output}`);
      if (!rotated) {
        after = await cluster.getJson<typeof before>(['secret', SECRET, '-n', OWN]);
        rotated = after.metadata.annotations?.[ROTATED_ANNOTATION] === 'r1';
      } else extra++;
      await sleep(100);
    }
    console.log(`rotation: ${calls} allowed/denied pairs through the API server, ${failures.length} failures`);
    expect(failures).toEqual([]);
    expect(rotated).toBe(true);
    expect(after!.data[SECRET_KEYS.ca]).not.toBe(before.data[SECRET_KEYS.ca]);
    expect(after!.data[SECRET_KEYS.previousCa]).toBe(before.data[SECRET_KEYS.ca]);
    expect(webhookLog.some((l) => l.msg === 'serving certificate reloaded')).toBe(true);
    const bundle = Buffer.from((await cluster.getJson<{ webhooks: { clientConfig: { caBundle: string } }[] }>(['validatingwebhookconfiguration', VWC])).webhooks[0]!.clientConfig.caBundle, 'base64').toString();
    expect(bundle).toContain(Buffer.from(after!.data[SECRET_KEYS.ca]!, 'base64').toString().trim());
    expect(bundle).toContain(Buffer.from(before.data[SECRET_KEYS.ca]!, 'base64').toString().trim());
  });

  it('an operator\'s emergency edit of the VWC stands', async () => {
    await cluster.kubectl(['patch', 'validatingwebhookconfiguration', VWC, '--type=json', '-p', '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]']);
    await sleep(3_000);
    const vwc = await cluster.getJson<{ webhooks: { failurePolicy: string }[] }>(['validatingwebhookconfiguration', VWC]);
    expect(vwc.webhooks[0]!.failurePolicy).toBe('Ignore');
  });
});
