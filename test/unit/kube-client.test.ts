// The lean client's pieces that need no API server: kubeconfig parsing, URL building, errors, the watch
// stream's framing and idle deadline (against a loopback HTTP server), MicroTime, canonical JSON, backoff.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, KubeClient, WatchStalledError, objectKey, splitKey } from '../../src/kube/client.ts';
import { connectionFromKubeconfig, connectionInCluster, loadConnection, KubeconfigError } from '../../src/kube/kubeconfig.ts';
import { CONCURRENCY_REPORTS, LEASES, PODS, resourcePath } from '../../src/kube/resources.ts';
import { microTime } from '../../src/kube/leader-election.ts';
import { canonicalJson } from '../../src/kube/report-writer.ts';
import { backoffDelay } from '../../src/kube/backoff.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('kubeconfig', () => {
  const text = `apiVersion: v1
kind: Config
current-context: b
clusters:
  - name: one
    cluster: {server: "https://10.0.0.1:6443/", certificate-authority-data: ${b64('CA-PEM')}}
  - name: two
    cluster: {server: "https://10.0.0.2:6443", insecure-skip-tls-verify: true, tls-server-name: api.example}
users:
  - name: cert
    user: {client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}}
  - name: token
    user: {token: abc.def}
  - name: plugin
    user: {exec: {command: aws}}
contexts:
  - name: a
    context: {cluster: one, user: cert}
  - name: b
    context: {cluster: two, user: token, namespace: team}
  - name: c
    context: {cluster: one, user: plugin}
`;

  it('reads the current context', async () => {
    expect(await connectionFromKubeconfig({ text })).toEqual({
      server: 'https://10.0.0.2:6443', insecureSkipTLSVerify: true, tlsServerName: 'api.example', token: 'abc.def', namespace: 'team',
    });
  });

  it('reads another context, decoding CA and client certificate data', async () => {
    expect(await connectionFromKubeconfig({ text, context: 'a' })).toEqual({
      server: 'https://10.0.0.1:6443', caPem: 'CA-PEM', clientCertPem: 'CERT', clientKeyPem: 'KEY', namespace: 'default',
    });
  });

  it('refuses a missing context with a clear error', async () => {
    await expect(connectionFromKubeconfig({ text, context: 'nope' })).rejects.toThrow(KubeconfigError);
  });

  it('runs an exec credential plugin only for users that have one, and sends its token', async () => {
    const plain = await connectionFromKubeconfig({ text, context: 'a' });
    expect(plain.credentialPlugin).toBeUndefined();
    let authorization: string | undefined;
    const server = createServer((req, res) => {
      authorization = req.headers.authorization;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"metadata":{"name":"p"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'from-plugin' } });
    const execConfig = `current-context: x
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users:
  - name: u
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1beta1
        command: ${JSON.stringify(process.execPath)}
        args: ["-e", ${JSON.stringify(`console.log(${JSON.stringify(credential)})`)}]
contexts: [{name: x, context: {cluster: c, user: u}}]
`;
    const connection = await connectionFromKubeconfig({ text: execConfig });
    // Plain data (posted to worker threads as is); the client runs the plugin.
    expect(structuredClone(connection)).toEqual(connection);
    expect(connection.credentialPlugin?.context).toBe('x');
    const client = new KubeClient(connection);
    try {
      await client.get(PODS, 'ns', 'p');
      expect(authorization).toBe('Bearer from-plugin');
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reads files relative to the kubeconfig, and KUBECONFIG before the home directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-test-'));
    writeFileSync(join(dir, 'ca.crt'), 'FILE-CA');
    writeFileSync(join(dir, 'config'), `current-context: x
clusters: [{name: c, cluster: {server: "https://h:1", certificate-authority: ca.crt}}]
users: [{name: u, user: {tokenFile: tok}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
`);
    const connection = await loadConnection({}, { KUBECONFIG: `/nonexistent:${join(dir, 'config')}` });
    expect(connection).toEqual({ server: 'https://h:1', caPem: 'FILE-CA', tokenFile: join(dir, 'tok'), namespace: 'default' });
  });

  it('reads the service account in-cluster, and says so when not in a cluster', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sa-'));
    writeFileSync(join(dir, 'token'), 'tkn');
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    writeFileSync(join(dir, 'namespace'), 'guard\n');
    expect(connectionInCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir)).toEqual({
      server: 'https://[fd00::1]:443', caPem: 'SA-CA', tokenFile: join(dir, 'token'), namespace: 'guard',
    });
    expect(() => connectionInCluster({}, dir)).toThrow(/not in a cluster/);
  });
});

describe('resource paths and keys', () => {
  it('builds core, group, namespaced, cluster-wide and subresource paths', () => {
    expect(resourcePath(PODS)).toBe('/api/v1/pods');
    expect(resourcePath(PODS, 'ns')).toBe('/api/v1/namespaces/ns/pods');
    expect(resourcePath(LEASES, 'kube-system', 'a b')).toBe('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/a%20b');
    expect(resourcePath(CONCURRENCY_REPORTS, 'ns', 'web-0', 'status')).toBe('/apis/concurrencyguard.io/v1alpha1/namespaces/ns/concurrencyreports/web-0/status');
    expect(() => resourcePath(PODS, undefined, 'x')).toThrow(/namespace is required/);
  });

  it('keys objects as namespace/name', () => {
    expect(objectKey({ metadata: { namespace: 'ns', name: 'a' } })).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'cluster-wide' } })).toBe('cluster-wide');
    expect(splitKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(splitKey('x')).toEqual({ namespace: undefined, name: 'x' });
  });
});

describe('small pure helpers', () => {
  it('formats MicroTime with six fractional digits', () => {
    expect(microTime(Date.UTC(2026, 10, 27, 20, 1, 2, 345))).toBe('2026-11-27T20:01:02.345000Z');
  });

  it('canonical JSON ignores key order but not array order', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, 1] } })).toBe('{"a":{"c":[3,1],"d":2},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });

  it('backs off exponentially with jitter, capped', () => {
    const opts = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };
    expect([1, 2, 3, 4, 10].map((n) => backoffDelay(n, opts, () => 0))).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect(backoffDelay(3, opts, () => 1)).toBe(1000);
  });
});

describe('KubeClient against a loopback server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<KubeClient> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return new KubeClient({ server: `http://127.0.0.1:${port}`, namespace: 'default' }, { requestTimeoutMs: 2_000 });
  }

  it('turns a Status body into an ApiError with code and reason, not the whole body', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(409, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409, message: 'the object has been modified' }));
    });
    const error = await client.get(PODS, 'ns', 'p').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(409);
    expect((error as ApiError).reason).toBe('Conflict');
    expect((error as ApiError).retryAfterSeconds).toBe(3);
    client.close();
  });

  it('sends SSA with the apply content type, field manager and force', async () => {
    let seen: { method?: string; url?: string; type?: string; body?: string } = {};
    const client = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        seen = { method: req.method, url: req.url, type: req.headers['content-type'], body };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await client.apply(CONCURRENCY_REPORTS, { metadata: { name: 'web-0', namespace: 'ns' } }, { fieldManager: 'concurrency-guard-node-agent', force: true, subresource: 'status' });
    expect(seen).toEqual({
      method: 'PATCH',
      url: '/apis/concurrencyguard.io/v1alpha1/namespaces/ns/concurrencyreports/web-0/status?fieldManager=concurrency-guard-node-agent&force=true',
      type: 'application/apply-patch+yaml',
      body: '{"metadata":{"name":"web-0","namespace":"ns"}}',
    });
    client.close();
  });

  it('frames watch events split across chunks, and ends when the server closes', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const lines = [
        { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } },
        { type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } },
      ].map((e) => `${JSON.stringify(e)}\n`).join('');
      res.write(lines.slice(0, 17));
      setTimeout(() => { res.end(lines.slice(17)); }, 20);
    });
    const events = [];
    for await (const event of client.watch(PODS, { idleTimeoutMs: 1_000 })) events.push(event);
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK']);
    client.close();
  });

  it('aborts a watch that receives no bytes within its idle timeout', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } })}\n`);
      // …and then silence, connection open.
    });
    const started = Date.now();
    const types: string[] = [];
    const error = await (async () => {
      for await (const event of client.watch(PODS, { idleTimeoutMs: 300 })) types.push(event.type);
    })().catch((e: unknown) => e);
    expect(types).toEqual(['ADDED']);
    expect(error).toBeInstanceOf(WatchStalledError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(2_000);
    client.close();
  });

  it('gives a request that gets no answer a deadline', async () => {
    const client = await serve(() => { /* never answers */ });
    await expect(client.get(PODS, 'ns', 'p')).rejects.toThrow(/no answer within 2000 ms/);
    client.close();
  });
});
