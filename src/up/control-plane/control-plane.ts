// An embedded control plane: etcd + kube-apiserver (+ kube-controller-manager) on free loopback ports,
// built from Go modules by hack/build-control-plane.sh. Tests use it for every call that a real cluster
// would answer, and `concurrency-guard up` runs it for the demo. It can also be made to misbehave the way
// real clusters do: restart the API server in place, compact etcd so old resourceVersions get 410 Gone.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { locateBinaries, type ControlPlaneBinaries } from './binaries.ts';
import { ManagedProcess } from './managed-process.ts';
import { createAuthority, issueCertificate, type KeyAndCertificate } from '../../pki/index.ts';
import { createServiceAccountKeys } from './service-account-keys.ts';
import { freeLoopbackPort } from './ports.ts';
import { renderKubeconfig } from './kubeconfig.ts';

/** The controllers a real cluster runs that our behaviour depends on (DESIGN.md "Tests, honestly"). */
export const CONTROLLERS = [
  'namespace-controller',
  'garbage-collector-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'deployment-controller',
  'replicaset-controller',
  'job-controller',
  'cronjob-controller',
  // Aggregated ClusterRoles (view, edit, admin) are empty until this controller fills them.
  'clusterrole-aggregation-controller',
] as const;

export interface ControlPlaneOptions {
  /** Run kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** --feature-gates for kube-apiserver and kube-controller-manager. */
  featureGates?: Record<string, boolean>;
  /** Extra kube-apiserver flags, `--name=value`. */
  apiServerArgs?: string[];
  /** Where state and logs go; default a fresh folder on tmpfs. */
  workDir?: string;
  /** Readiness budget per component; 2-core machines need more than envtest's 20 s. */
  startTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface ClientIdentity extends KeyAndCertificate {
  user: string;
  groups: string[];
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi/*", "/metrics"]
  - level: Metadata
`;

// The kubernetes Service's endpoints are never reconciled (--endpoint-reconciler-type=none), so this
// documentation-range address (RFC 5737) is never dialled; it only spares the API server from needing
// a default route to derive one.
/** An embedded control plane lives for a test run or a demo; its certificates for a week. */
const WEEK_MS = 7 * 24 * 3600 * 1000;

const ADVERTISE_ADDRESS = '198.51.100.10';

export class ControlPlane {
  readonly workDir: string;
  readonly binaries: ControlPlaneBinaries;
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  readonly apiServerPort: number;
  readonly etcdPort: number;
  readonly ca: KeyAndCertificate;
  readonly admin: ClientIdentity;
  private readonly etcd: ManagedProcess;
  private readonly apiServer: ManagedProcess;
  private readonly controllerManager: ManagedProcess | undefined;
  private readonly startTimeoutMs: number;
  private readonly log: (message: string) => void;

  private constructor(init: {
    workDir: string; binaries: ControlPlaneBinaries; ca: KeyAndCertificate; admin: ClientIdentity;
    etcdPort: number; apiServerPort: number; etcd: ManagedProcess; apiServer: ManagedProcess;
    controllerManager: ManagedProcess | undefined; startTimeoutMs: number; log: (m: string) => void;
  }) {
    this.workDir = init.workDir;
    this.binaries = init.binaries;
    this.ca = init.ca;
    this.admin = init.admin;
    this.etcdPort = init.etcdPort;
    this.apiServerPort = init.apiServerPort;
    this.etcd = init.etcd;
    this.apiServer = init.apiServer;
    this.controllerManager = init.controllerManager;
    this.startTimeoutMs = init.startTimeoutMs;
    this.log = init.log;
    this.kubeconfigPath = join(init.workDir, 'admin.kubeconfig');
    this.auditLogPath = join(init.workDir, 'audit.log');
  }

  get apiServerUrl(): string {
    return `https://127.0.0.1:${this.apiServerPort}`;
  }

  get etcdUrl(): string {
    return `http://127.0.0.1:${this.etcdPort}`;
  }

  get apiServerPid(): number | undefined {
    return this.apiServer.pid;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    // Free-port picking races with other processes; a lost race shows as a failed start, so retry whole.
    let lastError: unknown;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const plane = await ControlPlane.create(options);
      try {
        await plane.boot(options);
        return plane;
      } catch (error) {
        lastError = error;
        plane.log(`control plane start attempt ${attempt} failed: ${String(error)}; logs in ${plane.workDir}`);
        await plane.stop({ keepWorkDir: true });
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private static async create(options: ControlPlaneOptions): Promise<ControlPlane> {
    const binaries = locateBinaries();
    // CG_WORK_ROOT lets a CI run find exactly its own leftovers; tmpfs keeps etcd fast without fsync.
    const base = process.env['CG_WORK_ROOT'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
    const workDir = options.workDir ?? mkdtempSync(join(base, 'cg-control-plane-'));
    mkdirSync(join(workDir, 'pki'), { recursive: true });
    const log = options.log ?? (() => undefined);
    const [etcdPort, etcdPeerPort, apiServerPort] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];

    const ca = await createAuthority('concurrency-guard-embedded-ca', WEEK_MS);
    const serving = await issueCertificate(ca, {
      commonName: 'kube-apiserver', usage: 'server', validityMs: WEEK_MS,
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1'],
    });
    const adminCert = await issueCertificate(ca, { commonName: 'admin', organizations: ['system:masters'], usage: 'client', validityMs: WEEK_MS });
    const admin: ClientIdentity = { ...adminCert, user: 'admin', groups: ['system:masters'] };
    // The controller-manager has its own identity and runs each controller under its own service account,
    // as real clusters do, so the audit log tells the garbage collector apart from a person.
    const controllerManagerCert = await issueCertificate(ca, { commonName: 'system:kube-controller-manager', usage: 'client', validityMs: WEEK_MS });
    const serviceAccount = createServiceAccountKeys();
    const pki = (name: string): string => join(workDir, 'pki', name);
    writeFileSync(pki('ca.crt'), ca.certPem);
    writeFileSync(pki('apiserver.crt'), serving.certPem);
    writeFileSync(pki('apiserver.key'), serving.keyPem, { mode: 0o600 });
    writeFileSync(pki('sa.pub'), serviceAccount.publicPem);
    writeFileSync(pki('sa.key'), serviceAccount.privatePem, { mode: 0o600 });
    writeFileSync(join(workDir, 'audit-policy.yaml'), AUDIT_POLICY);

    const gates = Object.entries(options.featureGates ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    const etcd = new ManagedProcess({
      name: 'etcd', command: binaries.etcd, logFile: join(workDir, 'etcd.log'),
      args: [
        '--name=embedded', `--data-dir=${join(workDir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=embedded=http://127.0.0.1:${etcdPeerPort}`,
        '--unsafe-no-fsync=true', '--log-level=warn',
      ],
    });
    const apiServer = new ManagedProcess({
      name: 'kube-apiserver', command: binaries.kubeApiserver, logFile: join(workDir, 'kube-apiserver.log'),
      args: [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        '--bind-address=127.0.0.1', `--secure-port=${apiServerPort}`,
        `--advertise-address=${ADVERTISE_ADDRESS}`, '--endpoint-reconciler-type=none',
        `--tls-cert-file=${pki('apiserver.crt')}`, `--tls-private-key-file=${pki('apiserver.key')}`,
        `--client-ca-file=${pki('ca.crt')}`,
        '--authorization-mode=Node,RBAC',
        '--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement',
        '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki('sa.pub')}`, `--service-account-signing-key-file=${pki('sa.key')}`,
        `--audit-policy-file=${join(workDir, 'audit-policy.yaml')}`, `--audit-log-path=${join(workDir, 'audit.log')}`,
        '--audit-log-format=json', '--audit-log-maxsize=0',
        ...(gates ? [`--feature-gates=${gates}`] : []),
        ...(options.apiServerArgs ?? []),
      ],
    });
    const kubeconfig = renderKubeconfig({
      server: `https://127.0.0.1:${apiServerPort}`, caPem: ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem,
    });
    writeFileSync(join(workDir, 'admin.kubeconfig'), kubeconfig, { mode: 0o600 });
    writeFileSync(join(workDir, 'kube-controller-manager.kubeconfig'), renderKubeconfig({
      server: `https://127.0.0.1:${apiServerPort}`, caPem: ca.certPem,
      certPem: controllerManagerCert.certPem, keyPem: controllerManagerCert.keyPem,
    }), { mode: 0o600 });
    const controllerManager = options.controllerManager === false ? undefined : new ManagedProcess({
      name: 'kube-controller-manager', command: binaries.kubeControllerManager,
      logFile: join(workDir, 'kube-controller-manager.log'),
      args: [
        `--kubeconfig=${join(workDir, 'kube-controller-manager.kubeconfig')}`, '--leader-elect=false', '--secure-port=0',
        '--use-service-account-credentials=true',
        `--controllers=${CONTROLLERS.join(',')}`,
        `--service-account-private-key-file=${pki('sa.key')}`, `--root-ca-file=${pki('ca.crt')}`,
        '--cluster-name=embedded',
        ...(gates ? [`--feature-gates=${gates}`] : []),
      ],
    });
    return new ControlPlane({
      workDir, binaries, ca, admin, etcdPort, apiServerPort, etcd, apiServer, controllerManager,
      startTimeoutMs: options.startTimeoutMs ?? 90_000, log,
    });
  }

  private async boot(_options: ControlPlaneOptions): Promise<void> {
    const started = Date.now();
    this.etcd.start();
    await this.waitFor('etcd', this.etcd, () => this.etcdHealthy());
    await this.startApiServer();
    if (this.controllerManager) {
      this.controllerManager.start();
      // The serviceaccount controller creating `default` is the sign that the controllers are running.
      await this.waitFor('kube-controller-manager', this.controllerManager,
        async () => (await this.getStatus('/api/v1/namespaces/default/serviceaccounts/default')) === 200);
    }
    this.log(`control plane ready in ${Date.now() - started} ms at ${this.apiServerUrl} (work dir ${this.workDir})`);
  }

  async startApiServer(): Promise<void> {
    this.apiServer.start();
    await this.waitFor('kube-apiserver', this.apiServer, async () => (await this.getStatus('/readyz')) === 200);
    // /readyz can pass a moment before the bootstrap namespaces exist.
    await this.waitFor('default namespace', this.apiServer,
      async () => (await this.getStatus('/api/v1/namespaces/default')) === 200);
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`. With the controller-manager connected, kube-apiserver 1.37's
   * graceful shutdown goes quiet after stopping its controllers and never exits on its own within 10 s;
   * clients see the same dropped connections either way, so restarts do not wait for it.
   */
  async stopApiServer(graceMs = 3_000): Promise<void> {
    await this.apiServer.stop(graceMs);
  }

  /** Same port, certificates and etcd data: what clients see when a control-plane node reboots. */
  async restartApiServer(options: { downtimeMs?: number } = {}): Promise<void> {
    await this.stopApiServer();
    if (options.downtimeMs) await sleep(options.downtimeMs);
    await this.startApiServer();
  }

  async killApiServer(): Promise<void> {
    await this.apiServer.kill();
  }

  /** etcd's current revision (the newest resourceVersion). */
  async etcdRevision(): Promise<number> {
    const body = await this.etcdCall('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 });
    return Number((body as { header: { revision: string } }).header.revision);
  }

  /** Compacts etcd at its current revision, so any older resourceVersion now gets 410 Gone from etcd. */
  async compactEtcd(): Promise<number> {
    const revision = await this.etcdRevision();
    await this.etcdCall('/v3/kv/compaction', { revision: String(revision), physical: true });
    return revision;
  }

  /** A client certificate for any user and groups, for RBAC tests, and a kubeconfig that uses it. */
  async issueClient(user: string, groups: string[] = []): Promise<ClientIdentity & { kubeconfig: string }> {
    const cert = await issueCertificate(this.ca, { commonName: user, organizations: groups, usage: 'client', validityMs: WEEK_MS });
    return { ...cert, user, groups, kubeconfig: this.kubeconfig({ certPem: cert.certPem, keyPem: cert.keyPem }) };
  }

  /** A kubeconfig for this control plane, optionally through another address (a proxy) or identity. */
  kubeconfig(overrides: { server?: string; certPem?: string; keyPem?: string; token?: string } = {}): string {
    return renderKubeconfig({
      server: overrides.server ?? this.apiServerUrl,
      caPem: this.ca.certPem,
      ...(overrides.token ? { token: overrides.token } : {
        certPem: overrides.certPem ?? this.admin.certPem, keyPem: overrides.keyPem ?? this.admin.keyPem,
      }),
    });
  }

  async stop(options: { keepWorkDir?: boolean } = {}): Promise<void> {
    await this.controllerManager?.stop(5_000);
    await this.apiServer.stop(10_000);
    await this.etcd.stop(5_000);
    if (!options.keepWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Admin GET; returns the HTTP status (0 when the connection fails). */
  async getStatus(path: string): Promise<number> {
    return new Promise((resolve) => {
      const req = httpsRequest({
        host: '127.0.0.1', port: this.apiServerPort, path, method: 'GET',
        ca: this.ca.certPem, cert: this.admin.certPem, key: this.admin.keyPem, timeout: 5_000,
      }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('timeout', () => req.destroy());
      req.once('error', () => resolve(0));
      req.end();
    });
  }

  private async etcdHealthy(): Promise<boolean> {
    try {
      const body = await this.etcdCall('/health', undefined) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  private etcdCall(path: string, payload: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const data = payload === undefined ? undefined : JSON.stringify(payload);
      const req = httpRequest({
        host: '127.0.0.1', port: this.etcdPort, path, method: data ? 'POST' : 'GET', timeout: 5_000,
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`etcd ${path}: ${res.statusCode} ${text}`));
          else {
            try { resolve(JSON.parse(text)); } catch (error) { reject(error instanceof Error ? error : new Error(String(error))); }
          }
        });
      });
      req.once('timeout', () => req.destroy(new Error(`etcd ${path}: timeout`)));
      req.once('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  private async waitFor(what: string, process: ManagedProcess, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    let exited = false;
    void process.whenExited().then(() => { exited = true; });
    while (Date.now() < deadline) {
      if (exited) throw new Error(`${what} exited during start; see ${process.logFile}`);
      if (await ready()) return;
      await sleep(100);
    }
    throw new Error(`${what} not ready after ${this.startTimeoutMs} ms; see ${process.logFile}`);
  }
}
