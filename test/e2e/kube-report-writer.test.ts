// Issue 4: the ConcurrencyReport writer on a real API server with the project's CRDs and the real garbage
// collector. Two writers (controller, node agent) each with its own field manager and its own client
// certificate, so the audit log says who wrote what; a pod recreated under the same name; a deleted pod;
// no-op writes that never reach the API server.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { ApiError, KubeClient, type KubeObject } from '../../src/kube/client.ts';
import { CONCURRENCY_REPORTS } from '../../src/kube/resources.ts';
import { connectionFromKubeconfig } from '../../src/kube/kubeconfig.ts';
import { ReportWriter, type ReportPod } from '../../src/kube/report-writer.ts';
import { FIELD_MANAGER_CONTROLLER, FIELD_MANAGER_NODE_AGENT, type ConcurrencyReport, type ConcurrencyReportStatus } from '../../src/api/index.ts';

let cluster: Cluster;
let controllerClient: KubeClient;
let agentClient: KubeClient;
const ns = 'reports';

async function clientAs(user: string): Promise<KubeClient> {
  const identity = await cluster.controlPlane.issueClient(user, ['system:masters']);
  const path = join(cluster.controlPlane.workDir, `${user}.kubeconfig`);
  writeFileSync(path, identity.kubeconfig, { mode: 0o600 });
  return new KubeClient(await connectionFromKubeconfig({ path }));
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(ns);
  controllerClient = await clientAs('controller-writer');
  agentClient = await clientAs('agent-writer');
});

afterAll(async () => {
  controllerClient?.close();
  agentClient?.close();
  await cluster?.stop();
});

async function createPod(name: string, nodeName?: string): Promise<ReportPod> {
  await cluster.apply(`apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  ${nodeName ? `nodeName: ${nodeName}\n  ` : ''}containers: [{name: app, image: registry.invalid/app:1}]
`);
  const pod = await cluster.getJson<{ metadata: { uid: string } }>(['pod', name, '-n', ns]);
  return { namespace: ns, name, uid: pod.metadata.uid, ...(nodeName ? { nodeName } : {}) };
}

async function report(name: string): Promise<ConcurrencyReport | undefined> {
  const result = await cluster.kubectl(['get', 'concurrencyreport', name, '-n', ns, '-o', 'json', '--show-managed-fields'], { allowFailure: true });
  return result.code === 0 ? JSON.parse(result.stdout) as ConcurrencyReport : undefined;
}

/** Writes to this report as the API server recorded them: [user, verb, subresource]. */
function writesTo(name: string): string[] {
  return cluster.auditEvents((e) => e.objectRef?.resource === 'concurrencyreports' && e.objectRef.namespace === ns
    && e.objectRef.name === name && ['create', 'update', 'patch', 'delete'].includes(e.verb))
    .map((e) => `${e.user.username} ${e.verb}${e.objectRef?.subresource ? ` ${e.objectRef.subresource}` : ''} ${e.responseStatus?.code}`);
}

const T0 = '2026-11-27T20:00:00Z';
const T1 = '2026-11-27T20:05:00Z';

const controllerStatus = (compliant: boolean): ConcurrencyReportStatus => ({
  audit: compliant ? { auditTime: T1, findings: [] } : {
    auditTime: T0,
    findings: [{ rule: 'gomaxprocs/above-cpu-limit', container: 'app', enforcement: 'Warn', message: 'GOMAXPROCS=8 > ceil(limits.cpu)=2: set it from limits.cpu' }],
  },
  conditions: [{ type: 'PolicyCompliant', status: compliant ? 'True' : 'False', reason: compliant ? 'NoFindings' : 'Findings', message: '', lastTransitionTime: compliant ? T1 : T0 }],
});

const agentStatus = (percent: number, withThreads: boolean): ConcurrencyReportStatus => ({
  runtime: { observedTime: T1, fileDescriptors: { level: percent >= 80 ? 'Warning' : 'OK', open: percent * 10, limit: 1000, percent } },
  summary: { level: percent >= 80 ? 'Warning' : 'OK', fds: `${percent * 10}/1k`, fdPercent: percent },
  conditions: [
    { type: 'FileDescriptorPressure', status: percent >= 80 ? 'True' : 'False', reason: percent >= 80 ? 'AboveWarning' : 'BelowWarning', message: `${percent}% of soft limit`, lastTransitionTime: T0 },
    ...(withThreads ? [{ type: 'ThreadPressure' as const, status: 'False' as const, reason: 'BelowWarning', message: '', lastTransitionTime: T0 }] : []),
  ],
});

describe('report writer', () => {
  it('two field managers end in exactly the union of their latest writes; no-op writes send nothing', async () => {
    const pod = await createPod('api-0', 'node-a');
    const controller = new ReportWriter({ client: controllerClient, fieldManager: FIELD_MANAGER_CONTROLLER });
    const agent = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });

    expect(await agent.write(pod, agentStatus(85, true))).toBe('created');
    expect(await controller.write(pod, controllerStatus(false))).toBe('updated');
    expect(await agent.write(pod, agentStatus(40, false))).toBe('updated'); // drops ThreadPressure
    expect(await controller.write(pod, controllerStatus(true))).toBe('updated');
    const writesBefore = writesTo('api-0').length;
    expect(await agent.write(pod, agentStatus(40, false))).toBe('unchanged');
    expect(await controller.write(pod, controllerStatus(true))).toBe('unchanged');

    const final = (await report('api-0'))!;
    expect(final.spec).toEqual({ podName: 'api-0', podUID: pod.uid, nodeName: 'node-a' });
    expect(final.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'api-0', uid: pod.uid }]);
    expect(final.status).toEqual({
      audit: { auditTime: T1, findings: [] },
      runtime: { observedTime: T1, fileDescriptors: { level: 'OK', open: 400, limit: 1000, percent: 40 } },
      summary: { level: 'OK', fds: '400/1k', fdPercent: 40 },
      conditions: [
        { type: 'FileDescriptorPressure', status: 'False', reason: 'BelowWarning', message: '40% of soft limit', lastTransitionTime: T0 },
        { type: 'PolicyCompliant', status: 'True', reason: 'NoFindings', message: '', lastTransitionTime: T1 },
      ],
    });
    const managers = (final.metadata.managedFields as { manager: string; subresource?: string }[])
      .map((m) => `${m.manager}${m.subresource ? `/${m.subresource}` : ''}`).sort();
    expect(managers).toEqual([
      `${FIELD_MANAGER_CONTROLLER}`, `${FIELD_MANAGER_CONTROLLER}/status`,
      `${FIELD_MANAGER_NODE_AGENT}`, `${FIELD_MANAGER_NODE_AGENT}/status`,
    ]);
    // Who wrote, per the API server: the agent created (apply) and wrote status; the controller applied
    // its spec once (first write of that writer) and wrote status twice; the two no-op writes never came.
    await sleep(200);
    const writes = writesTo('api-0');
    expect(writes).toHaveLength(writesBefore);
    expect(writes).toEqual([
      'agent-writer patch 201',
      'agent-writer patch status 200',
      'controller-writer patch 200',
      'controller-writer patch status 200',
      'agent-writer patch status 200',
      'controller-writer patch status 200',
    ]);
  });

  it('replaces the report of an earlier pod with the same name, and a writer that is behind cannot undo that', async () => {
    const first = await createPod('web-0', 'node-a');
    const controller = new ReportWriter({ client: controllerClient, fieldManager: FIELD_MANAGER_CONTROLLER });
    const agent = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });
    expect(await agent.write(first, agentStatus(90, true))).toBe('created');
    expect(await controller.write(first, controllerStatus(false))).toBe('updated');
    const firstReport = (await report('web-0'))!;

    // The pod goes and its report stays, as when the StatefulSet controller recreates web-0 before the
    // garbage collector got to the report (here made certain by taking the owner reference away first).
    await cluster.kubectl(['patch', 'concurrencyreport', 'web-0', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/metadata/ownerReferences"}]']);
    await cluster.kubectl(['delete', 'pod', 'web-0', '-n', ns, '--grace-period=0', '--force']);
    await waitUntil('old pod gone', async () => (await cluster.kubectl(['get', 'pod', 'web-0', '-n', ns], { allowFailure: true })).code !== 0, 30_000);
    expect((await report('web-0'))?.spec.podUID).toBe(first.uid);
    const second = await createPod('web-0', 'node-b');
    expect(second.uid).not.toBe(first.uid);

    expect(await agent.write(second, agentStatus(10, false))).toBe('recreated');
    // The controller's informer still has the old pod. Its last write for it is suppressed as a no-op;
    // a new one reads the report, sees another podUID, finds the pod is another incarnation now, and
    // writes nothing.
    expect(await controller.write(first, controllerStatus(false))).toBe('unchanged');
    expect(await controller.write(first, controllerStatus(true))).toBe('pod-gone');
    expect(await controller.write(second, controllerStatus(true))).toBe('updated');

    const final = (await report('web-0'))!;
    expect(final.metadata.uid).not.toBe(firstReport.metadata.uid);
    expect(final.spec).toEqual({ podName: 'web-0', podUID: second.uid, nodeName: 'node-b' });
    expect(final.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'web-0', uid: second.uid }]);
    expect(final.status).toEqual({
      runtime: { observedTime: T1, fileDescriptors: { level: 'OK', open: 100, limit: 1000, percent: 10 } },
      summary: { level: 'OK', fds: '100/1k', fdPercent: 10 },
      audit: { auditTime: T1, findings: [] },
      conditions: [
        { type: 'FileDescriptorPressure', status: 'False', reason: 'BelowWarning', message: '10% of soft limit', lastTransitionTime: T0 },
        { type: 'PolicyCompliant', status: 'True', reason: 'NoFindings', message: '', lastTransitionTime: T1 },
      ],
    });
    // Every write, as the API server saw it: one delete, of the old incarnation, by the agent; nothing
    // from the controller while it was behind.
    expect(writesTo('web-0')).toEqual([
      'agent-writer patch 201', 'agent-writer patch status 200',
      'controller-writer patch 200', 'controller-writer patch status 200',
      'admin patch 200', // the test removing the owner reference
      'agent-writer delete 200', 'agent-writer patch 201', 'agent-writer patch status 200',
      'controller-writer patch 200', 'controller-writer patch status 200',
    ]);
  });

  it('deletes only the incarnation named by the uid precondition', async () => {
    const pod = await createPod('db-0');
    const agent = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });
    expect(await agent.write(pod, agentStatus(50, false))).toBe('created');
    const current = (await report('db-0'))!;
    expect(await agent.deleteReport(ns, 'db-0', '00000000-0000-0000-0000-000000000000')).toBe(false);
    expect((await report('db-0'))?.metadata.uid).toBe(current.metadata.uid);
    expect(writesTo('db-0').filter((w) => w.includes(' delete '))).toEqual(['agent-writer delete 409']);
    expect(await agent.deleteReport(ns, 'db-0', current.metadata.uid!)).toBe(true);
    expect(await report('db-0')).toBeUndefined();
  });

  it('leaves no report for a deleted pod: the garbage collector removes it and writers do not bring it back', async () => {
    const pod = await createPod('job-x');
    const controller = new ReportWriter({ client: controllerClient, fieldManager: FIELD_MANAGER_CONTROLLER });
    const agent = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });
    expect(await agent.write(pod, agentStatus(95, true))).toBe('created');
    expect(await controller.write(pod, controllerStatus(false))).toBe('updated');
    expect((await report('job-x'))?.spec.podUID).toBe(pod.uid);

    await cluster.kubectl(['delete', 'pod', 'job-x', '-n', ns, '--wait=true']);
    await waitUntil('garbage collector to delete the report', async () => (await report('job-x')) === undefined, 60_000);
    // Late writes from informers that have not seen the deletion yet:
    expect(await agent.write(pod, agentStatus(96, true))).toBe('pod-gone');
    expect(await controller.write(pod, controllerStatus(true))).toBe('pod-gone');
    expect(await report('job-x')).toBeUndefined();
    // After the garbage collector's delete, neither writer created the report again.
    const writes = writesTo('job-x');
    const gcDelete = writes.findIndex((w) => w.includes(' delete '));
    expect(gcDelete).toBeGreaterThan(0);
    // The garbage collector (its own service account, or admin if the harness's controller-manager runs
    // without per-controller credentials); this test itself never deletes reports.
    expect(writes[gcDelete]).toMatch(/^(system:serviceaccount:kube-system:generic-garbage-collector|admin) delete 200$/);
    expect(writes.slice(gcDelete + 1)).toEqual([]);
  });

  it('relies on these API server facts: /status ignores metadata.uid in an apply, but enforces resourceVersion', async () => {
    const pod = await createPod('facts-0');
    const agent = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });
    expect(await agent.write(pod, agentStatus(20, false))).toBe('created');
    const current = (await report('facts-0'))!;
    const apply = (metadata: Record<string, string>) => agentClient.apply(CONCURRENCY_REPORTS, {
      apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyReport',
      metadata: { name: 'facts-0', namespace: ns, ...metadata },
      status: agentStatus(30, false),
    } as KubeObject, { fieldManager: FIELD_MANAGER_NODE_AGENT, force: true, subresource: 'status' });
    // A wrong uid is not a precondition on /status: the write lands.
    await expect(apply({ uid: '00000000-0000-0000-0000-000000000000' })).resolves.toMatchObject({ metadata: { uid: current.metadata.uid } });
    // A stale resourceVersion is: 409 Conflict.
    const error = await apply({ resourceVersion: current.metadata.resourceVersion! }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(409);
  });
});
