// Issue 4: the informer keeps an exact cache through what kills client-node's (API server restart, a
// compaction while disconnected → real 410, a half-open connection, a handler that throws), and the
// work queue turns 1,000 rapid updates of one object into a few serial reconciles. Real API server.
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { KubeClient, type KubeObject } from '../../src/kube/client.ts';
import { connectionFromKubeconfig } from '../../src/kube/kubeconfig.ts';
import { Informer, type InformerOptions } from '../../src/kube/informer.ts';
import { CONFIG_MAPS } from '../../src/kube/resources.ts';
import { WorkQueue } from '../../src/kube/workqueue.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let cluster: Cluster;
let proxy: TcpProxy;
let direct: KubeClient;
let proxied: KubeClient;
const informers: Informer<ConfigMap>[] = [];

beforeAll(async () => {
  cluster = await startCluster({ controllerManager: false });
  proxy = new TcpProxy(cluster.controlPlane.apiServerPort);
  await proxy.start();
  direct = new KubeClient(await connectionFromKubeconfig({ path: cluster.kubeconfigPath }));
  proxied = new KubeClient(await connectionFromKubeconfig({ text: cluster.controlPlane.kubeconfig({ server: proxy.url }) }));
});

afterAll(async () => {
  await Promise.all(informers.map((i) => i.stop()));
  direct?.close();
  proxied?.close();
  await proxy?.stop();
  await cluster?.stop();
});

async function namespace(name: string): Promise<string> {
  await cluster.kubectl(['create', 'namespace', name]);
  return name;
}

async function createConfigMaps(ns: string, names: string[], labels = 'suite=informer'): Promise<void> {
  const docs = names.map((name) => `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels.replace('=', ': ')}}}
data: {v: "1"}`).join('\n---\n');
  await cluster.apply(docs);
}

/** name → resourceVersion as the API server has it now, for the informer's selector. */
async function serverState(ns: string, selector = 'suite=informer'): Promise<Record<string, string>> {
  const list = await cluster.getJson<{ items: ConfigMap[] }>(['configmaps', '-n', ns, '-l', selector]);
  return Object.fromEntries(list.items.map((i) => [`${ns}/${i.metadata.name}`, i.metadata.resourceVersion!]));
}

function cacheState(informer: Informer<ConfigMap>): Record<string, string> {
  return Object.fromEntries(informer.list().map((i) => [`${i.metadata.namespace}/${i.metadata.name}`, i.metadata.resourceVersion!]));
}

async function lifecycle(registry: Registry, name: string, event: string): Promise<number> {
  const metric = await registry.getSingleMetric('concurrency_guard_informer_lifecycle_events_total')!.get();
  return metric.values.find((v) => v.labels['informer'] === name && v.labels['event'] === event)?.value ?? 0;
}

function startInformer(options: Omit<InformerOptions, 'resource'>): Informer<ConfigMap> {
  const informer = new Informer<ConfigMap>({
    resource: CONFIG_MAPS, labelSelector: 'suite=informer', watchIdleTimeoutMs: 4_000,
    backoff: { initialMs: 100, maxMs: 1_000, jitter: 0.5 }, ...options,
  });
  informers.push(informer);
  informer.start();
  return informer;
}

describe('informer against a real API server', () => {
  it('lists page by page with selectors, without managedFields, and signals synced', async () => {
    const ns = await namespace('informer-list');
    await createConfigMaps(ns, Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, '0')}`));
    await createConfigMaps(ns, ['other'], 'suite=unrelated');
    const registry = new Registry();
    const informer = startInformer({ client: direct, name: 'list', namespace: ns, pageSize: 10, registry });
    expect(informer.hasSynced).toBe(false);
    await informer.whenSynced;
    expect(informer.hasSynced).toBe(true);
    expect(informer.size).toBe(25);
    expect(informer.get(ns, 'other')).toBeUndefined();
    expect(informer.get(ns, 'page-07')?.data).toEqual({ v: '1' });
    expect(informer.list().every((o) => o.metadata.managedFields === undefined)).toBe(true);
    // 25 objects in pages of 10: the API server saw three list requests with limit=10.
    const pages = cluster.auditEvents((e) => e.verb === 'list' && e.objectRef?.namespace === ns && e.requestURI.includes('limit=10'));
    expect(pages).toHaveLength(3);
    expect(pages.filter((e) => e.requestURI.includes('continue='))).toHaveLength(2);
    expect((await registry.getSingleMetric('concurrency_guard_informer_synced')!.get()).values[0]!.value).toBe(1);

    const byField = startInformer({ client: direct, name: 'field', namespace: ns, fieldSelector: 'metadata.name=page-03' });
    await byField.whenSynced;
    expect(byField.keys()).toEqual([`${ns}/page-03`]);
    await byField.stop();
    await informer.stop();
  });

  it('keeps an exact cache across an API server restart in place', async () => {
    const ns = await namespace('informer-restart');
    await createConfigMaps(ns, ['a', 'b', 'c', 'd']);
    const registry = new Registry();
    const informer = startInformer({ client: direct, name: 'restart', namespace: ns, registry });
    await informer.whenSynced;
    expect(Object.keys(cacheState(informer)).sort()).toEqual([`${ns}/a`, `${ns}/b`, `${ns}/c`, `${ns}/d`]);
    const connectedBefore = await lifecycle(registry, 'restart', 'connected');

    await cluster.controlPlane.restartApiServer({ downtimeMs: 1_000 });
    await cluster.kubectl(['delete', 'configmap', 'b', '-n', ns]);
    await cluster.kubectl(['patch', 'configmap', 'c', '-n', ns, '--type=merge', '-p', '{"data":{"v":"2"}}']);
    await createConfigMaps(ns, ['e']);

    await waitUntil('informer cache to equal the server', async () =>
      JSON.stringify(cacheState(informer)) === JSON.stringify(await serverState(ns)), 30_000);
    expect(Object.keys(cacheState(informer)).sort()).toEqual([`${ns}/a`, `${ns}/c`, `${ns}/d`, `${ns}/e`]);
    expect(informer.get(ns, 'c')?.data).toEqual({ v: '2' });
    console.log(`[kube-informer] across the restart: ${await lifecycle(registry, 'restart', 'restarted')} restarts, ${await lifecycle(registry, 'restart', 'relisted') - 1} relists`);
    expect(await lifecycle(registry, 'restart', 'restarted')).toBeGreaterThanOrEqual(1);
    expect(await lifecycle(registry, 'restart', 'connected')).toBeGreaterThan(connectedBefore);
    await informer.stop();
  });

  it('relists after a compaction while disconnected (real 410) and delivers what it missed', async () => {
    const ns = await namespace('informer-gone');
    await createConfigMaps(ns, ['keep', 'change', 'remove']);
    const registry = new Registry();
    const seen: string[] = [];
    const informer = startInformer({ client: proxied, name: 'gone', namespace: ns, registry });
    informer.on({
      add: (o) => { seen.push(`add ${o.metadata.name}`); },
      update: (o, old) => { seen.push(`update ${o.metadata.name} ${old.data?.['v']}->${o.data?.['v']}`); },
      delete: (o) => { seen.push(`delete ${o.metadata.name}`); },
    });
    await informer.whenSynced;
    expect(await lifecycle(registry, 'gone', 'relisted')).toBe(1);
    seen.length = 0;

    proxy.blackhole(); // the informer is cut off; it does not know yet
    await cluster.kubectl(['delete', 'configmap', 'remove', '-n', ns]);
    await cluster.kubectl(['patch', 'configmap', 'change', '-n', ns, '--type=merge', '-p', '{"data":{"v":"2"}}']);
    await createConfigMaps(ns, ['new']);
    await cluster.controlPlane.compactEtcd();
    // The watch cache still holds recent events after etcd compacts; a restart drops it (see the
    // control-plane test), so the informer's resourceVersion is now truly gone.
    await cluster.controlPlane.restartApiServer();
    proxy.heal();

    await waitUntil('informer cache to equal the server', async () =>
      JSON.stringify(cacheState(informer)) === JSON.stringify(await serverState(ns)), 30_000);
    expect(await lifecycle(registry, 'gone', 'relisted')).toBe(2);
    expect(seen.sort()).toEqual(['add new', 'delete remove', 'update change 1->2']);
    // The API server answered the stale watch with 410 Gone, recorded in its audit log as a watch that
    // was followed by a fresh list.
    const lists = cluster.auditEvents((e) => e.verb === 'list' && e.objectRef?.namespace === ns && e.objectRef.resource === 'configmaps');
    expect(lists.length).toBeGreaterThanOrEqual(2);
    await informer.stop();
  });

  it('notices a half-open connection within its watch timeout and resumes', async () => {
    const ns = await namespace('informer-half-open');
    await createConfigMaps(ns, ['before']);
    const registry = new Registry();
    const idleMs = 4_000;
    const informer = startInformer({ client: proxied, name: 'half-open', namespace: ns, registry, watchIdleTimeoutMs: idleMs });
    await informer.whenSynced;
    await waitUntil('watch connected', async () => (await lifecycle(registry, 'half-open', 'connected')) >= 1, 10_000);
    const stalledBefore = await lifecycle(registry, 'half-open', 'stalled');

    proxy.blackhole();
    const cutAt = Date.now();
    await waitUntil('stall detected', async () => (await lifecycle(registry, 'half-open', 'stalled')) > stalledBefore, 3 * idleMs, 50);
    const noticedAfterMs = Date.now() - cutAt;
    console.log(`[kube-informer] half-open connection noticed after ${noticedAfterMs} ms (watch idle timeout ${idleMs} ms)`);
    expect(noticedAfterMs).toBeLessThanOrEqual(idleMs + 500);

    await createConfigMaps(ns, ['during']); // written while the informer is cut off
    proxy.heal();
    await waitUntil('informer to catch up', () => informer.get(ns, 'during') !== undefined, 20_000);
    expect(Object.keys(cacheState(informer)).sort()).toEqual([`${ns}/before`, `${ns}/during`]);
    await informer.stop();
  });

  it('survives a handler that throws on every third event; other handlers see everything', async () => {
    const ns = await namespace('informer-throw');
    const registry = new Registry();
    const informer = startInformer({ client: direct, name: 'throw', namespace: ns, registry });
    let calls = 0;
    const delivered: string[] = [];
    const onEvent = (what: string): void => {
      calls++;
      if (calls % 3 === 0) throw new Error(`handler failure on call ${calls}`);
      delivered.push(what);
    };
    informer.on({
      add: (o) => onEvent(`add ${o.metadata.name}`),
      update: (o) => onEvent(`update ${o.metadata.name}`),
      delete: (o) => onEvent(`delete ${o.metadata.name}`),
    });
    const everything: string[] = [];
    informer.on({
      add: (o) => { everything.push(`add ${o.metadata.name}`); },
      update: (o) => { everything.push(`update ${o.metadata.name}`); },
      delete: (o) => { everything.push(`delete ${o.metadata.name}`); },
    });
    // An async handler that rejects must not become an unhandledRejection (vitest fails the run if it does).
    const rejecting = informer.on({ add: async () => { await sleep(1); throw new Error('async handler failure'); } });
    await informer.whenSynced;
    const names = ['t0', 't1', 't2', 't3', 't4', 't5'];
    await createConfigMaps(ns, names);
    for (const name of names) await cluster.kubectl(['patch', 'configmap', name, '-n', ns, '--type=merge', '-p', '{"data":{"v":"2"}}']);
    await cluster.kubectl(['delete', 'configmap', '-n', ns, ...names]);
    await waitUntil('18 events', () => everything.length === 18, 30_000);
    rejecting();
    expect(calls).toBe(18);
    expect(delivered).toHaveLength(12);
    expect(everything.filter((e) => e.startsWith('add'))).toHaveLength(6);
    expect(everything.filter((e) => e.startsWith('update'))).toHaveLength(6);
    expect(everything.filter((e) => e.startsWith('delete'))).toHaveLength(6);
    await sleep(50);
    // 6 throws (every third of 18 calls) and 6 rejections (one per add) from the async handler.
    const errors = (await registry.getSingleMetric('concurrency_guard_informer_handler_errors_total')!.get()).values[0]!.value;
    expect(errors).toBe(12);
    expect(informer.size).toBe(0);
    expect(await lifecycle(registry, 'throw', 'restarted')).toBe(0);
    await informer.stop();
  });
});

describe('work queue fed by an informer', () => {
  it('turns 1,000 rapid updates of one ConfigMap into few reconciles, never two at once, ending on the last value', async () => {
    const ns = await namespace('queue-storm');
    await createConfigMaps(ns, ['hot']);
    const registry = new Registry();
    const informer = startInformer({ client: direct, name: 'storm', namespace: ns, registry });
    let reconciles = 0;
    let running = 0;
    let maxRunning = 0;
    let lastSeen = '';
    const queue = new WorkQueue({
      name: 'storm', registry, concurrency: 4,
      reconcile: async (key) => {
        reconciles++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(50); // a reconcile that does some API work
        lastSeen = informer.getByKey(key)?.data?.['v'] ?? '';
        running--;
      },
    });
    let updates = 0;
    informer.on({ update: (o) => { updates++; queue.add(`${o.metadata.namespace}/${o.metadata.name}`); } });
    await informer.whenSynced;
    queue.start();
    const started = Date.now();
    for (let i = 1; i <= 1000; i++) {
      await direct.patch(CONFIG_MAPS, ns, 'hot', { data: { v: `n${i}` } }, 'merge');
    }
    const writeMs = Date.now() - started;
    await waitUntil('last value reconciled', () => lastSeen === 'n1000' && queue.inFlight === 0 && queue.length === 0, 30_000);
    console.log(`[kube-informer] 1000 updates in ${writeMs} ms → ${updates} update events → ${reconciles} reconciles (max ${maxRunning} at once for the key)`);
    expect(updates).toBe(1000);
    expect(maxRunning).toBe(1);
    expect(reconciles).toBeGreaterThanOrEqual(2);
    expect(reconciles).toBeLessThanOrEqual(100);
    const text = await registry.metrics();
    expect(text).toContain(`controller_runtime_reconcile_total{controller="storm",result="success"} ${reconciles}`);
    expect(text).toContain('workqueue_adds_total{name="storm",controller="storm"} 1000');
    await queue.stop();
    await informer.stop();
  });
});
