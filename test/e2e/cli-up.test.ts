// `concurrency-guard up` as a user runs it: the real CLI in a child process, a real embedded control plane,
// and a real SIGINT/SIGTERM that must stop every process it started and exit 0.
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { locateBinaries } from '../../src/up/index.ts';
import { waitUntil } from '../support/cluster.ts';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'cg-cli-up-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Up { proc: ChildProcessByStdio<null, Readable, Readable>; stdout: () => string; stderr: () => string; exit: Promise<number | null> }

function startUp(kubeconfig: string, env: Record<string, string> = {}): Up {
  const proc = spawn(process.execPath, [CLI, 'up', '--write-kubeconfig', kubeconfig], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return { proc, stdout: () => stdout, stderr: () => stderr, exit };
}

describe('concurrency-guard up', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('serves the CRDs on an embedded control plane and stops it all on %s, exiting 0', async (signal) => {
    const kubeconfig = join(dir, `${signal}.kubeconfig`);
    // A kubeconfig in the environment must not matter: up touches an existing cluster only when told to.
    const up = startUp(kubeconfig, { KUBECONFIG: join(dir, 'production.kubeconfig') });
    try {
      await waitUntil('up to print that the control plane is up', () => up.stdout().includes('Press Ctrl-C to stop it'), 120_000, 200);
      expect(up.stdout()).toContain(`export KUBECONFIG=${kubeconfig}`);
      const crds = execFileSync(locateBinaries().kubectl, [`--kubeconfig=${kubeconfig}`, 'get', 'crd', '-o', 'name'], { encoding: 'utf8' });
      expect(crds.trim().split('\n').sort()).toEqual([
        'customresourcedefinition.apiextensions.k8s.io/concurrencypolicies.concurrencyguard.io',
        'customresourcedefinition.apiextensions.k8s.io/concurrencyreports.concurrencyguard.io',
      ]);
      // What the printed instructions promise: the example policy refuses the demo pod.
      const kubectl = (args: string[]): { code: number; stderr: string } => {
        try {
          execFileSync(locateBinaries().kubectl, [`--kubeconfig=${kubeconfig}`, ...args], { encoding: 'utf8', stdio: 'pipe' });
          return { code: 0, stderr: '' };
        } catch (error) {
          return { code: 1, stderr: String((error as { stderr?: string }).stderr) };
        }
      };
      const examples = join(import.meta.dirname, '../../examples');
      expect(kubectl(['apply', '-f', join(examples, 'go-services.yaml')]).code).toBe(0);
      expect(kubectl(['label', 'namespace', 'default', 'concurrency-guard.io/enabled=true']).code).toBe(0);
      await waitUntil('the webhook to serve the example policy', () => {
        const attempt = kubectl(['apply', '--dry-run=server', '-f', join(examples, 'demo/gomaxprocs-above-limit.yaml')]);
        return attempt.code !== 0 && attempt.stderr.includes('gomaxprocs/above-cpu-limit');
      }, 60_000, 500);
      const denied = kubectl(['apply', '-f', join(examples, 'demo/gomaxprocs-above-limit.yaml')]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('denied the request');
      expect(denied.stderr).toContain('GOMAXPROCS=16');

      const children = childPids(up.proc.pid!);
      expect(children.length).toBeGreaterThanOrEqual(2);

      up.proc.kill(signal);
      expect(await up.exit).toBe(0);
      const lines = up.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; signal?: string });
      expect(lines.find((l) => l.signal === signal)?.msg).toBe('shutting down (send the signal again to exit at once)');
      expect(lines.at(-1)?.msg).toBe('stopping the embedded control plane');
      expect(children.filter(alive)).toEqual([]);
    } finally {
      if (up.proc.exitCode === null) up.proc.kill('SIGKILL');
    }
  });
});
