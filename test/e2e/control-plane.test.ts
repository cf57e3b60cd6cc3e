// Issue 2: the embedded control plane behaves like a real cluster in the ways later tests depend on.
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

let cluster: Cluster;

beforeAll(async () => {
  // ConfigMaps bypass the watch cache here, so a watch from an old resourceVersion is answered by etcd
  // itself: the 410 below then comes from the compaction, not from a cache that forgot. (With the cache,
  // the default for everything else, an API server restart alone expires old resourceVersions.)
  cluster = await startCluster({ apiServerArgs: ['--watch-cache-sizes=configmaps#0'] });
});

afterAll(async () => {
  await cluster?.stop();
});

const ns = 'foundation';

/** A raw admin GET so the test sees the status code and body the API server sent. */
function adminGet(path: string, port = cluster.controlPlane.apiServerPort, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  const { ca, admin } = cluster.controlPlane;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca: ca.certPem, cert: admin.certPem, key: admin.keyPem, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('embedded control plane', () => {
  it('creates a namespace whose default ServiceAccount appears (serviceaccount controller)', async () => {
    await cluster.createNamespace(ns);
    const sa = await cluster.getJson<{ metadata: { name: string } }>(['serviceaccount', 'default', '-n', ns]);
    expect(sa.metadata.name).toBe('default');
  });

  it('turns a Deployment into a ReplicaSet and Pods through the real controller-manager', async () => {
    await cluster.apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${ns}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: registry.invalid/web:1}]
`);
    await waitUntil('2 pods of web', async () => {
      const pods = await cluster.getJson<{ items: { metadata: { ownerReferences?: { kind: string }[] } }[] }>(['pods', '-n', ns, '-l', 'app=web']);
      return pods.items.length === 2 && pods.items.every((p) => p.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet');
    });
    const replicaSets = await cluster.getJson<{ items: { metadata: { ownerReferences: { kind: string; name: string }[] } }[] }>(['replicasets', '-n', ns, '-l', 'app=web']);
    expect(replicaSets.items).toHaveLength(1);
    expect(replicaSets.items[0]!.metadata.ownerReferences[0]).toMatchObject({ kind: 'Deployment', name: 'web' });
  });

  it('garbage-collects an object whose owner is deleted', async () => {
    await cluster.kubectl(['create', 'configmap', 'owner', '-n', ns]);
    const owner = await cluster.getJson<{ metadata: { uid: string } }>(['configmap', 'owner', '-n', ns]);
    await cluster.apply(`apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  namespace: ${ns}
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: ${owner.metadata.uid}}]
`);
    await cluster.kubectl(['delete', 'configmap', 'owner', '-n', ns, '--wait=true']);
    await waitUntil('dependent to be garbage-collected', async () =>
      (await cluster.kubectl(['get', 'configmap', 'dependent', '-n', ns], { allowFailure: true })).code !== 0);
    const gone = await cluster.kubectl(['get', 'configmap', 'dependent', '-n', ns], { allowFailure: true });
    expect(gone.stderr).toContain('NotFound');
    const deleters = cluster.auditEvents((e) => e.verb === 'delete' && e.objectRef?.name === 'dependent').map((e) => e.user.username);
    expect(deleters).toEqual(['system:serviceaccount:kube-system:generic-garbage-collector']);
  });

  it('issues a token with kubectl create token, and RBAC refuses the unbound account', async () => {
    await cluster.kubectl(['create', 'serviceaccount', 'nobody', '-n', ns]);
    const { stdout: token } = await cluster.kubectl(['create', 'token', 'nobody', '-n', ns, '--duration=10m']);
    expect(token.trim().split('.')).toHaveLength(3);
    const asNobody = await cluster.writeKubeconfig(`${cluster.controlPlane.workDir}/nobody.kubeconfig`, { token: token.trim() });
    const whoami = await cluster.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: asNobody });
    expect(whoami.stdout).toBe(`system:serviceaccount:${ns}:nobody`);
    const denied = await cluster.kubectl(['get', 'pods', '-n', ns], { kubeconfig: asNobody, allowFailure: true });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Forbidden');
    // Bound, the same token is allowed: the refusal above was RBAC, not a broken token.
    await cluster.kubectl(['create', 'rolebinding', 'nobody-view', '--clusterrole=view', `--serviceaccount=${ns}:nobody`, '-n', ns]);
    await waitUntil('RBAC to allow the bound account', async () =>
      (await cluster.kubectl(['get', 'pods', '-n', ns], { kubeconfig: asNobody, allowFailure: true })).code === 0, 10_000);
  });

  it('restarts the API server in place and keeps its data', async () => {
    await cluster.kubectl(['create', 'configmap', 'survivor', '-n', ns, '--from-literal=k=v']);
    const pidBefore = cluster.controlPlane.apiServerPid;
    await cluster.controlPlane.restartApiServer({ downtimeMs: 500 });
    expect(cluster.controlPlane.apiServerPid).not.toBe(pidBefore);
    const survivor = await cluster.getJson<{ data: Record<string, string> }>(['configmap', 'survivor', '-n', ns]);
    expect(survivor.data).toEqual({ k: 'v' });
  });

  it('answers a watch from a compacted resourceVersion with 410 Gone', async () => {
    await cluster.kubectl(['create', 'configmap', 'before-compaction', '-n', ns]);
    const old = await cluster.getJson<{ metadata: { resourceVersion: string } }>(['configmap', 'before-compaction', '-n', ns]);
    for (let i = 0; i < 5; i++) await cluster.kubectl(['create', 'configmap', `after-${i}`, '-n', ns]);
    const fresh = await adminGet(`/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${old.metadata.resourceVersion}&timeoutSeconds=1`);
    expect(fresh.body).not.toContain('"code":410');
    await cluster.controlPlane.compactEtcd();
    const stale = await adminGet(`/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${old.metadata.resourceVersion}&timeoutSeconds=5`);
    expect(stale.status).toBe(200);
    expect(stale.body).toContain('"code":410');
  });

  it('fronts the API server with a proxy whose blackhole is a real half-open connection', async () => {
    const proxy = new TcpProxy(cluster.controlPlane.apiServerPort);
    await proxy.start();
    try {
      expect((await adminGet('/readyz', proxy.port)).status).toBe(200);
      proxy.blackhole();
      const started = Date.now();
      await expect(adminGet('/readyz', proxy.port, 1_500)).rejects.toThrow('timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
      proxy.heal();
      expect((await adminGet('/readyz', proxy.port)).status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });

  it('records every write in the audit log with the user who made it', () => {
    const creates = cluster.auditEvents((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps' && e.objectRef.name === 'survivor');
    expect(creates).toHaveLength(1);
    expect(creates[0]!.user.username).toBe('admin');
  });
});
