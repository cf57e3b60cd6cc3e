// The admission server's wire behaviour: strict review parsing with clear 400s, size limits, the handler
// timeout answering with an explicit decision, probes, metrics and one log line per review.
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { WebhookMetrics } from '../../src/webhook/metrics.ts';
import { buildWebhookServer, type Admit, type WebhookServerOptions } from '../../src/webhook/server.ts';
import { admissionReview, createTestAuthority, podObject, REALISTIC_CONTAINERS } from './webhook-fixtures.ts';

const serving = createTestAuthority().issue('webhook');

function logCapture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(chunk.toString()); cb(); } });
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const allowAll: Admit = () => ({ allowed: true });

function server(overrides: Partial<WebhookServerOptions> = {}) {
  const registry = new Registry();
  const metrics = new WebhookMetrics(registry, ['/Pod']);
  const logs = logCapture();
  const { app } = buildWebhookServer({
    certificate: serving, admit: allowAll, logger: logs.logger, metrics,
    readiness: () => ({ ready: true, reasons: [] }), ...overrides,
  });
  return { app, registry, logs };
}

async function post(app: ReturnType<typeof server>['app'], payload: string | object) {
  const res = await app.inject({
    method: 'POST', url: '/validate', headers: { 'content-type': 'application/json' },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
}

describe('webhook server: bad input gets a 400 with a clear message, never a crash', () => {
  const { app } = server();
  afterAll(() => app.close());
  const body = JSON.stringify(admissionReview());

  it.each([
    ['truncated JSON', body.slice(0, body.length - 40), 'not valid JSON'],
    ['an empty body', '', 'empty'],
    ['a JSON array', '[]', 'must be a JSON object'],
    ['a JSON string', '"review"', 'must be a JSON object'],
    ['apiVersion v1beta1', JSON.stringify({ ...admissionReview(), apiVersion: 'admission.k8s.io/v1beta1' }), 'only admission.k8s.io/v1'],
    ['no apiVersion', JSON.stringify({ ...admissionReview(), apiVersion: undefined }), 'apiVersion null'],
    ['kind Pod', JSON.stringify({ ...admissionReview(), kind: 'Pod' }), 'expected AdmissionReview'],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 'request is missing'],
    ['no request.uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: {} } }), 'request.uid is missing'],
    ['an unknown operation', JSON.stringify(admissionReview({ operation: 'PATCH' as 'CREATE' })), 'not one of CREATE'],
    ['object as a string', JSON.stringify(admissionReview({ object: 'pod' as unknown as Record<string, unknown> })), 'request.object must be an object'],
  ])('%s → 400', async (_what, payload, message) => {
    const res = await post(app, payload);
    expect(res.status).toBe(400);
    expect(res.body['message']).toContain(message);
  });

  it('a content type other than JSON → 415', async () => {
    const res = await app.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/yaml' }, payload: 'a: 1' });
    expect(res.statusCode).toBe(415);
  });

  it('a 5 MiB body: malformed → 400, well-formed → a decision; 9 MiB → 413', async () => {
    const filler = 'x'.repeat(5 * 1024 * 1024);
    const big = admissionReview({ object: podObject({ containers: REALISTIC_CONTAINERS, name: 'big' }) });
    ((big['request'] as Record<string, Record<string, Record<string, Record<string, string>>>>)['object']!['metadata']!['annotations']!)['filler'] = filler;
    const wellFormed = JSON.stringify(big);
    expect(wellFormed.length).toBeGreaterThan(5 * 1024 * 1024);
    const ok = await post(app, wellFormed);
    expect(ok.status).toBe(200);
    expect(ok.body['response']).toMatchObject({ allowed: true });
    const malformed = await post(app, wellFormed.slice(0, -2));
    expect(malformed.status).toBe(400);
    const tooBig = await post(app, JSON.stringify({ ...big, pad: 'y'.repeat(4 * 1024 * 1024) }));
    expect(tooBig.status).toBe(413);
  });

  it('unknown paths → 404 naming the admission path', async () => {
    const res = await app.inject({ method: 'POST', url: '/mutate', payload: {} });
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('POST /validate');
  });
});

describe('webhook server: answers', () => {
  it('echoes the uid with allowed, warnings, and denials in status.message and details.causes', async () => {
    const admit: Admit = (request) => request.name === 'bad'
      ? { allowed: false, message: 'container app: GOMAXPROCS=16 exceeds limits.cpu 2; set GOMAXPROCS=2', causes: [{ reason: 'gomaxprocs-above-limit', message: 'GOMAXPROCS=16 > 2', field: 'spec.containers[0].env[0]' }], warnings: ['w1'] }
      : { allowed: true, warnings: request.name === 'warn' ? ['gomaxprocs-above-limit: set GOMAXPROCS=2'] : [] };
    const { app } = server({ admit });
    const good = await post(app, admissionReview({ uid: 'u-1', name: 'good' }));
    expect(good.body).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
    const warned = await post(app, admissionReview({ uid: 'u-2', name: 'warn' }));
    expect(warned.body['response']).toEqual({ uid: 'u-2', allowed: true, warnings: ['gomaxprocs-above-limit: set GOMAXPROCS=2'] });
    const denied = await post(app, admissionReview({ uid: 'u-3', name: 'bad' }));
    expect(denied.status).toBe(200);
    expect(denied.body['response']).toEqual({
      uid: 'u-3', allowed: false, warnings: ['w1'],
      status: {
        status: 'Failure', code: 403, reason: 'Forbidden',
        message: 'container app: GOMAXPROCS=16 exceeds limits.cpu 2; set GOMAXPROCS=2',
        details: { causes: [{ reason: 'gomaxprocs-above-limit', message: 'GOMAXPROCS=16 > 2', field: 'spec.containers[0].env[0]' }] },
      },
    });
    await app.close();
  });

  it('an evaluation that throws gets the explicit failure answer, not a 500', async () => {
    const { app } = server({ admit: () => { throw new Error('boom'); } });
    const res = await post(app, admissionReview({ uid: 'u-4' }));
    expect(res.status).toBe(200);
    expect(res.body['response']).toMatchObject({ uid: 'u-4', allowed: true });
    const { app: failing } = server({ admit: () => { throw new Error('boom'); }, failurePolicy: 'Fail' });
    const denied = await post(failing, admissionReview({ uid: 'u-5' }));
    expect(denied.body['response']).toMatchObject({ uid: 'u-5', allowed: false });
    await app.close();
    await failing.close();
  });

  it('the handler timeout answers before timeoutSeconds with an explicit decision', async () => {
    const slow: Admit = async () => { await sleep(2_000); return { allowed: false, message: 'late' }; };
    const { app } = server({ admit: slow, timeoutSeconds: 1 });
    const started = Date.now();
    const res = await post(app, admissionReview({ uid: 'u-6' }));
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.body['response']).toMatchObject({ uid: 'u-6', allowed: true });
    expect((res.body['response'] as { warnings: string[] }).warnings[0]).toContain('timed out after 500 ms');
    expect(elapsed).toBeLessThan(1_000);
    const { app: failing } = server({ admit: slow, timeoutSeconds: 1, failurePolicy: 'Fail' });
    const denied = await post(failing, admissionReview({ uid: 'u-7' }));
    expect(denied.body['response']).toMatchObject({ uid: 'u-7', allowed: false, status: { code: 403 } });
    await sleep(1_600); // let the abandoned evaluations finish: their late answers must be dropped quietly
    await app.close();
    await failing.close();
  });
});

describe('webhook server: probes, metrics, logs', () => {
  it('/healthz is 200; /readyz is 503 with reasons until ready', async () => {
    let ready = false;
    const { app } = server({ readiness: () => ready ? { ready, reasons: [] } : { ready, reasons: ['caches not synced'] } });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const notReady = await app.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.body).toContain('caches not synced');
    ready = true;
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    await app.close();
  });

  it('counts requests by code, decisions and findings by rule, with a latency histogram', async () => {
    const admit: Admit = () => ({ allowed: false, message: 'no', findings: [{ rule: 'gomaxprocs-above-limit', enforcement: 'Deny' }] });
    const { app, registry } = server({ admit });
    await post(app, admissionReview());
    await post(app, admissionReview({ kind: { group: '', version: 'v1', kind: 'ConfigMap' } }));
    await post(app, '{');
    const text = await registry.metrics();
    expect(text).toContain('controller_runtime_webhook_requests_total{webhook="/validate",code="200"} 2');
    expect(text).toContain('controller_runtime_webhook_requests_total{webhook="/validate",code="400"} 1');
    expect(text).toContain('controller_runtime_webhook_latency_seconds_count{webhook="/validate"} 3');
    expect(text).toContain('concurrency_guard_webhook_findings_total{rule="gomaxprocs-above-limit",enforcement="Deny"} 2');
    expect(text).toContain('concurrency_guard_webhook_decisions_total{kind="/Pod",operation="CREATE",decision="denied"} 1');
    // Kinds outside the known set are folded, so a flood of odd kinds cannot grow the label set.
    expect(text).toContain('concurrency_guard_webhook_decisions_total{kind="other",operation="CREATE",decision="denied"} 1');
    await app.close();
  });

  it('writes one log line per review with uid, kind, op, allowed and latency', async () => {
    const { app, logs } = server();
    await post(app, admissionReview({ uid: 'log-1' }));
    const reviewLines = logs.lines().filter((l) => l['msg'] === 'review');
    expect(reviewLines).toHaveLength(1);
    expect(reviewLines[0]).toMatchObject({ uid: 'log-1', kind: '/Pod', op: 'CREATE', allowed: true });
    expect(typeof reviewLines[0]!['ms']).toBe('number');
    // fastify's own per-request lines are off.
    expect(logs.lines().filter((l) => l['msg'] === 'incoming request' || l['msg'] === 'request completed')).toHaveLength(0);
    await app.close();
  });
});
