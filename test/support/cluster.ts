// A real control plane for one test file, with the helpers every e2e test needs: kubectl, apply,
// namespaces that are ready for pods, and the API server's audit log as the judge of who wrote what.
import { execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlane, type ControlPlaneOptions } from '../../src/up/control-plane/index.ts';

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface KubectlOptions {
  input?: string;
  allowFailure?: boolean;
  kubeconfig?: string;
  timeoutMs?: number;
}

/** One line of the API server's JSON audit log (the fields tests read). */
export interface AuditEvent {
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  stage: string;
  stageTimestamp: string;
}

export class Cluster {
  readonly controlPlane: ControlPlane;

  constructor(controlPlane: ControlPlane) {
    this.controlPlane = controlPlane;
  }

  get kubeconfigPath(): string {
    return this.controlPlane.kubeconfigPath;
  }

  get auditLogPath(): string {
    return this.controlPlane.auditLogPath;
  }

  get kubectlPath(): string {
    return this.controlPlane.binaries.kubectl;
  }

  /** Runs the real kubectl; throws with its output on a non-zero exit unless allowFailure. */
  kubectl(args: string[], options: KubectlOptions = {}): Promise<KubectlResult> {
    const kubeconfig = options.kubeconfig ?? this.kubeconfigPath;
    return new Promise((resolve, reject) => {
      const child = execFile(this.kubectlPath, [`--kubeconfig=${kubeconfig}`, ...args], {
        timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024,
      }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const result = { stdout, stderr, code };
        if (code !== 0 && !options.allowFailure) {
          reject(new Error(`kubectl ${args.join(' ')} exited ${code}\n${stderr}${stdout}`));
        } else resolve(result);
      });
      child.stdin?.end(options.input ?? '');
    });
  }

  async apply(yaml: string, extraArgs: string[] = []): Promise<KubectlResult> {
    return this.kubectl(['apply', '--server-side', '--field-manager=e2e-test', '-f', '-', ...extraArgs], { input: yaml });
  }

  async getJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
    const { stdout } = await this.kubectl(['get', ...args, '-o', 'json']);
    return JSON.parse(stdout) as T;
  }

  /** A namespace whose default ServiceAccount exists, so pods can be created in it at once. */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    const labelLines = Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`).join('\n');
    await this.apply(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${labelLines ? `  labels:\n${labelLines}\n` : ''}`);
    await waitUntil(`default ServiceAccount in ${name}`, async () =>
      (await this.controlPlane.getStatus(`/api/v1/namespaces/${name}/serviceaccounts/default`)) === 200);
  }

  /** Installs the project's CRDs and waits until the API server serves them. */
  async installCRDs(dir = join(import.meta.dirname, '../../crds')): Promise<void> {
    await this.kubectl(['apply', '--server-side', '--field-manager=e2e-test', '-f', dir]);
    await this.kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', dir]);
  }

  /** Every audit event so far (ResponseComplete stage), optionally filtered. */
  auditEvents(filter: (event: AuditEvent) => boolean = () => true): AuditEvent[] {
    if (!existsSync(this.auditLogPath)) return [];
    return readFileSync(this.auditLogPath, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as AuditEvent)
      .filter((event) => event.stage === 'ResponseComplete' && filter(event));
  }

  async writeKubeconfig(path: string, overrides: Parameters<ControlPlane['kubeconfig']>[0] = {}): Promise<string> {
    await writeFile(path, this.controlPlane.kubeconfig(overrides), { mode: 0o600 });
    return path;
  }

  async stop(): Promise<void> {
    await this.controlPlane.stop();
  }
}

/** Polls until `check` returns true; throws naming what it waited for. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}

/**
 * Starts a control plane for a test file. Call in beforeAll and `stop()` in afterAll; the children die
 * with the test process even when it is killed (parent-death signal).
 */
export async function startCluster(options: ControlPlaneOptions = {}): Promise<Cluster> {
  const log = process.env['CG_TEST_VERBOSE'] ? (m: string) => console.error(m) : undefined;
  const controlPlane = await ControlPlane.start({ ...(log ? { log } : {}), ...options });
  return new Cluster(controlPlane);
}
