// src/runtime: the logger's shape and redaction, Go-style durations, and the shutdown signal driven by
// real signals sent to a real child process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, exitCodeForSignal, parseDuration } from '../../src/runtime/index.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['2h0m5s', 7_205_000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '10', 'ten minutes', '5x', '-1s', '1d', 'm'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/invalid duration/);
  });
});

describe('createLogger', () => {
  it('writes one JSON line per call with level, ISO time, name and bindings, and redacts tokens', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
    const log = createLogger({ name: 'concurrency-guard-test', level: 'debug', bindings: { node: 'n1' }, destination: sink });
    log.debug({ user: { token: 'secret-token' }, headers: { authorization: 'Bearer abc' } }, 'hello');
    log.trace('not at debug');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 20, name: 'concurrency-guard-test', node: 'n1', msg: 'hello', user: { token: '[redacted]' }, headers: { authorization: '[redacted]' } });
    expect(String(line['time'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[0]).not.toContain('secret-token');
  });

  it('keeps a work-queue key readable but redacts a private key nested in an object', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
    createLogger({ name: 'concurrency-guard-test', destination: sink }).info({ key: 'shop/api-0', tls: { key: 'PRIVATE KEY' } }, 'reconciled');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ key: 'shop/api-0', tls: { key: '[redacted]' } });
  });
});

describe('handleShutdownSignals', () => {
  const child = join(import.meta.dirname, 'fixtures', 'shutdown-child.ts');

  /**
   * Starts the child; sends the first signal once it is ready and the second once it has seen the first
   * (two identical signals sent back to back may be merged by the kernel into one).
   */
  function runChild(signals: NodeJS.Signals[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const signalsTotal = signals.length;
      const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const seen = (stdout.includes('ready\n') ? 1 : 0) + (stdout.includes('aborted') ? 1 : 0);
        const sent = signalsTotal - signals.length;
        if (sent < seen && signals.length > 0) proc.kill(signals.shift());
      });
      proc.on('error', reject);
      proc.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('turns SIGTERM into an aborted signal; the work drains and the process exits 0', async () => {
    const run = await runChild(['SIGTERM']);
    expect(run.stdout).toBe('ready\naborted: ShutdownRequested SIGTERM\ndrained\n');
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('"msg":"shutting down (send the signal again to exit at once)"');
  });

  it('turns SIGINT into the same', async () => {
    const run = await runChild(['SIGINT']);
    expect(run.stdout).toBe('ready\naborted: ShutdownRequested SIGINT\ndrained\n');
    expect(run.code).toBe(0);
  });

  it('exits at once with 128 + 15 on a second SIGTERM, before the drain finishes', async () => {
    const run = await runChild(['SIGTERM', 'SIGTERM']);
    expect(run.code).toBe(exitCodeForSignal('SIGTERM'));
    expect(run.code).toBe(143);
    expect(run.stdout).not.toContain('drained');
  });
});
