// Informer failure paths that a real API server produces only rarely, scripted on a loopback server:
// list answering 500 (client-node's informer stops for good on this), an ERROR 410 event inside a watch
// stream, a watch refused with 403. The real-server cases are in test/e2e/kube-informer.test.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient, type KubeObject } from '../../src/kube/client.ts';
import { Informer } from '../../src/kube/informer.ts';
import { CONFIG_MAPS } from '../../src/kube/resources.ts';

let server: Server | undefined;
const informers: Informer<KubeObject>[] = [];

afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const cm = (name: string, rv: string): KubeObject => ({ metadata: { namespace: 'ns', name, resourceVersion: rv, managedFields: [{ manager: 'x' }] } });

type Script = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

async function serve(script: Script): Promise<KubeClient> {
  server = createServer((req, res) => script(req, res, new URL(req.url ?? '/', 'http://x')));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return new KubeClient({ server: `http://127.0.0.1:${port}`, namespace: 'default' }, { requestTimeoutMs: 2_000 });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function counter(registry: Registry, event: string): Promise<number> {
  const metric = await registry.getSingleMetric('concurrency_guard_informer_lifecycle_events_total')!.get();
  return metric.values.find((v) => v.labels['event'] === event)?.value ?? 0;
}

function informer(client: KubeClient, registry: Registry): Informer<KubeObject> {
  const i = new Informer<KubeObject>({
    client, resource: CONFIG_MAPS, name: 'scripted', namespace: 'ns', registry,
    watchIdleTimeoutMs: 2_000, backoff: { initialMs: 10, maxMs: 50 },
  });
  informers.push(i);
  return i;
}

describe('Informer failure paths (scripted server)', () => {
  it('keeps going after a list answers 500, and syncs once it succeeds', async () => {
    let lists = 0;
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get('watch')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return; // open and quiet
      }
      lists++;
      if (lists <= 2) json(res, 500, { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd leader changed' });
      else json(res, 200, { metadata: { resourceVersion: '10' }, items: [cm('a', '5')] });
    });
    const registry = new Registry();
    const i = informer(client, registry);
    i.start();
    await i.whenSynced;
    expect(lists).toBe(3);
    expect(i.keys()).toEqual(['ns/a']);
    expect(i.get('ns', 'a')?.metadata.managedFields).toBeUndefined();
    expect(await counter(registry, 'restarted')).toBe(2);
  });

  it('relists on an ERROR 410 event inside the stream and delivers the difference', async () => {
    let lists = 0;
    let watches = 0;
    const watchRVs: string[] = [];
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get('watch')) {
        watches++;
        watchRVs.push(url.searchParams.get('resourceVersion') ?? '');
        expect(url.searchParams.get('allowWatchBookmarks')).toBe('true');
        res.writeHead(200, { 'content-type': 'application/json' });
        if (watches === 1) {
          res.write(`${JSON.stringify({ type: 'MODIFIED', object: cm('a', '11') })}\n`);
          res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } })}\n`);
          res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 12 (20)' } })}\n`);
        }
        return;
      }
      lists++;
      json(res, 200, lists === 1
        ? { metadata: { resourceVersion: '10' }, items: [cm('a', '5'), cm('b', '6')] }
        : { metadata: { resourceVersion: '21' }, items: [cm('a', '11'), cm('c', '20')] });
    });
    const registry = new Registry();
    const i = informer(client, registry);
    const events: string[] = [];
    i.on({
      add: (o) => { events.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`); },
      update: (o, old) => { events.push(`update ${o.metadata.name}@${old.metadata.resourceVersion}->${o.metadata.resourceVersion}`); },
      delete: (o) => { events.push(`delete ${o.metadata.name}`); },
    });
    i.start();
    await until(() => watches === 2);
    expect(lists).toBe(2);
    expect(watchRVs).toEqual(['10', '21']);
    // a@11 arrived by watch, so the relist shows no change for it; b vanished; c is new.
    expect(events).toEqual(['add a@5', 'add b@6', 'update a@5->11', 'add c@20', 'delete b']);
    expect(await counter(registry, 'relisted')).toBe(2);
    expect(await counter(registry, 'restarted')).toBe(0);
  });

  it('backs off and retries a watch refused with 403 from the same resourceVersion', async () => {
    let watches = 0;
    const watchRVs: string[] = [];
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get('watch')) {
        watches++;
        watchRVs.push(url.searchParams.get('resourceVersion') ?? '');
        if (watches <= 3) json(res, 403, { kind: 'Status', code: 403, reason: 'Forbidden', message: 'RBAC not yet propagated' });
        else res.writeHead(200, { 'content-type': 'application/json' });
        return;
      }
      json(res, 200, { metadata: { resourceVersion: '7' }, items: [] });
    });
    const registry = new Registry();
    const i = informer(client, registry);
    i.start();
    await until(() => watches === 4);
    expect(watchRVs).toEqual(['7', '7', '7', '7']);
    expect(await counter(registry, 'restarted')).toBe(3);
    expect(await counter(registry, 'relisted')).toBe(1);
  });
});
