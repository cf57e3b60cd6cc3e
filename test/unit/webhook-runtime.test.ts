// The webhook process over real HTTPS sockets: waiting for a certificate, hot reload with
// setSecureContext (new connections see the new serial, a bad pair is refused), readiness, the metrics
// port, and the drain (readiness fails first, reviews are still answered, then the port closes).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { directorySource } from '../../src/webhook/certificate.ts';
import { WebhookMetrics } from '../../src/webhook/metrics.ts';
import { WebhookRuntime, type WebhookRuntimeOptions } from '../../src/webhook/runtime.ts';
import { admissionReview, createTestAuthority } from './webhook-fixtures.ts';

const authority = createTestAuthority();

function writePair(dir: string, pair: { certPem: string; keyPem: string }): void {
  // Like kubelet: the new content appears at once (rename), never half-written.
  writeFileSync(join(dir, 'tls.crt.tmp'), pair.certPem);
  writeFileSync(join(dir, 'tls.key.tmp'), pair.keyPem);
  renameSync(join(dir, 'tls.key.tmp'), join(dir, 'tls.key'));
  renameSync(join(dir, 'tls.crt.tmp'), join(dir, 'tls.crt'));
}

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber;
}

interface Answer { status: number; body: string; serial: string; reused: boolean }

function review(port: number, agent: Agent, body = JSON.stringify(admissionReview())): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, path: '/validate', method: 'POST', agent, ca: authority.certPem,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const socket = res.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      const reused = socket.isSessionReused();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, serial, reused }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function plainGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    }).on('error', reject).end();
  });
}

const runtimes: WebhookRuntime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.drainAndClose()));
});

async function start(dir: string, overrides: Partial<WebhookRuntimeOptions> = {}, signal?: AbortSignal): Promise<WebhookRuntime> {
  const registry = new Registry();
  const runtime = await WebhookRuntime.start({
    admit: () => ({ allowed: true }),
    certificateSource: directorySource(dir),
    certificatePollIntervalMs: 50,
    cachesSynced: () => true,
    logger: pino({ level: 'silent' }),
    registry,
    metrics: new WebhookMetrics(registry),
    host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0,
    drainDelayMs: 300,
    ...overrides,
  }, signal);
  runtimes.push(runtime);
  return runtime;
}

describe('webhook runtime', () => {
  it('waits for the certificate before opening the HTTPS port; the metrics port says why it is not ready', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-cert-'));
    let synced = false;
    const starting = start(dir, { cachesSynced: () => synced });
    await sleep(200);
    writePair(dir, authority.issue('webhook-1'));
    const runtime = await starting;
    const readyz = await plainGet(runtime.metricsPort, '/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body).toContain('caches not synced');
    synced = true;
    expect((await plainGet(runtime.metricsPort, '/readyz')).status).toBe(200);
    const agent = new Agent({ keepAlive: true });
    expect((await review(runtime.port, agent)).status).toBe(200);
    const metrics = await plainGet(runtime.metricsPort, '/metrics');
    expect(metrics.body).toContain('controller_runtime_webhook_requests_total{webhook="/validate",code="200"} 1');
    expect(metrics.body).toContain('concurrency_guard_webhook_ready 1');
    agent.destroy();
  });

  it('gives up waiting for a certificate when aborted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-cert-'));
    const controller = new AbortController();
    const starting = start(dir, {}, controller.signal);
    controller.abort(new Error('stop'));
    await expect(starting).rejects.toThrow('stop');
  });

  it('hot-reloads a rotated certificate for new connections, and refuses a pair whose key does not match', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-cert-'));
    const first = authority.issue('webhook-1');
    writePair(dir, first);
    const runtime = await start(dir);
    const keptAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await review(runtime.port, keptAlive)).serial).toBe(serialOf(first.certPem));

    const second = authority.issue('webhook-2');
    writePair(dir, second);
    await runtime.pollCertificate();
    expect(runtime.certificate?.serialNumber).toBe(serialOf(second.certPem));
    // A new connection presents the new serial; the kept-alive one answers once more (old certificate,
    // `Connection: close`), and the client's next request re-dials and sees the new one.
    const fresh = new Agent({ keepAlive: false });
    expect((await review(runtime.port, fresh)).serial).toBe(serialOf(second.certPem));
    const old = await review(runtime.port, keptAlive);
    expect(old.status).toBe(200);
    expect(old.serial).toBe(serialOf(first.certPem));
    const redialled = await review(runtime.port, keptAlive);
    expect(redialled.status).toBe(200);
    expect(redialled.serial).toBe(serialOf(second.certPem));

    // cert of one pair with the key of another: rejected, the second stays in use.
    const third = authority.issue('webhook-3');
    writePair(dir, { certPem: third.certPem, keyPem: second.keyPem });
    await runtime.pollCertificate();
    expect(runtime.certificate?.serialNumber).toBe(serialOf(second.certPem));
    expect((await review(runtime.port, new Agent({ keepAlive: false }))).serial).toBe(serialOf(second.certPem));
    const metrics = await plainGet(runtime.metricsPort, '/metrics');
    expect(metrics.body).toContain('concurrency_guard_webhook_certificate_reloads_total{result="invalid"} 1');
    expect(metrics.body).toContain('concurrency_guard_webhook_certificate_reloads_total{result="loaded"} 2');
    keptAlive.destroy();
  });

  it('drains: readiness fails first, reviews on open connections are still answered, then the port closes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-cert-'));
    writePair(dir, authority.issue('webhook-1'));
    const runtime = await start(dir, { drainDelayMs: 600 });
    const port = runtime.port;
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    expect((await review(port, agent)).status).toBe(200);
    const closed = runtime.drainAndClose();
    expect((await plainGet(runtime.metricsPort, '/readyz')).body).toContain('shutting down');
    const during = await review(port, agent);
    expect(during.status).toBe(200);
    expect(JSON.parse(during.body)).toMatchObject({ response: { allowed: true } });
    await closed;
    await expect(review(port, new Agent({ keepAlive: false }))).rejects.toThrow(/ECONNREFUSED/);
    agent.destroy();
  });
});
