// AdmissionReviews shaped like the ones kube-apiserver sends (defaults applied, managedFields present),
// shared by the webhook's unit tests and bench/webhook.ts so that the benchmark measures what the tests
// check. The 3-container pod review is ≈ 4.3 KB, the size DESIGN.md's reference figures use.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Json = Record<string, unknown>;

export interface ContainerSpec {
  name: string;
  image?: string;
  env?: { name: string; value?: string; valueFrom?: Json }[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  command?: string[];
  args?: string[];
  ports?: { name: string; containerPort: number; protocol: 'TCP' }[];
}

function defaultedContainer(c: ContainerSpec): Json {
  return {
    name: c.name,
    image: c.image ?? `registry.example.com/team/${c.name}:1.4.2`,
    ...(c.command ? { command: c.command } : {}),
    ...(c.args ? { args: c.args } : {}),
    ...(c.ports ? { ports: c.ports } : {}),
    ...(c.env ? { env: c.env } : {}),
    resources: c.resources ?? {},
    volumeMounts: [{ name: 'kube-api-access-7xk2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  };
}

export function podObject(options: { name?: string; namespace?: string; containers: ContainerSpec[]; labels?: Record<string, string>; ownerKind?: string }): Json {
  const namespace = options.namespace ?? 'shop';
  const name = options.name ?? 'checkout-7d9f8b6c5d-x2x9q';
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace,
      uid: randomUUID(),
      creationTimestamp: '2026-11-27T20:00:00Z',
      labels: options.labels ?? { app: 'checkout', 'app.kubernetes.io/part-of': 'shop', 'pod-template-hash': '7d9f8b6c5d' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-27T19:58:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' },
      ...(options.ownerKind ? {
        ownerReferences: [{ apiVersion: 'apps/v1', kind: options.ownerKind, name: 'checkout-7d9f8b6c5d', uid: randomUUID(), controller: true, blockOwnerDeletion: true }],
      } : {}),
      managedFields: [{
        manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', time: '2026-11-27T20:00:00Z', fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': { 'f:containers': Object.fromEntries(options.containers.map((c) => [`k:{"name":"${c.name}"}`, { '.': {}, 'f:image': {}, 'f:name': {}, 'f:resources': {} }])) },
        },
      }],
    },
    spec: {
      volumes: [{
        name: 'kube-api-access-7xk2p',
        projected: {
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
          ],
          defaultMode: 420,
        },
      }],
      containers: options.containers.map(defaultedContainer),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: { phase: 'Pending', qosClass: 'Burstable' },
  };
}

/** The realistic pod of the benchmark: a Go service with a literal GOMAXPROCS, a proxy and a log shipper. */
export const REALISTIC_CONTAINERS: ContainerSpec[] = [
  {
    name: 'checkout',
    env: [
      { name: 'GOMAXPROCS', value: '2' },
      { name: 'GOMEMLIMIT', value: '900MiB' },
      { name: 'LISTEN_ADDR', value: ':8080' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    ],
    resources: { limits: { cpu: '2', memory: '1Gi' }, requests: { cpu: '500m', memory: '512Mi' } },
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
  },
  {
    name: 'envoy',
    image: 'docker.io/envoyproxy/envoy:v1.36.2',
    args: ['--config-path', '/etc/envoy/envoy.yaml', '--concurrency', '2'],
    ports: [{ name: 'envoy-admin', containerPort: 9901, protocol: 'TCP' }],
    resources: { limits: { cpu: '1', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
  },
  {
    name: 'log-shipper',
    image: 'docker.io/fluent/fluent-bit:4.1.0',
    env: [{ name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { containerName: 'log-shipper', resource: 'limits.cpu', divisor: '1' } } }],
    resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '50m', memory: '64Mi' } },
  },
];

export interface ReviewOptions {
  uid?: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  namespace?: string;
  name?: string;
  object?: Json | null;
  oldObject?: Json | null;
  username?: string;
  dryRun?: boolean;
}

export function admissionReview(options: ReviewOptions = {}): Json {
  const object = options.object === undefined ? podObject({ containers: REALISTIC_CONTAINERS }) : options.object;
  const kind = options.kind ?? { group: '', version: 'v1', kind: 'Pod' };
  const resource = options.resource ?? { group: '', version: 'v1', resource: 'pods' };
  const metadata = (object?.['metadata'] ?? options.oldObject?.['metadata'] ?? {}) as { name?: string; namespace?: string };
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: options.uid ?? randomUUID(),
      kind, resource,
      ...(options.subResource ? { subResource: options.subResource } : {}),
      requestKind: kind, requestResource: resource,
      ...(options.subResource ? { requestSubResource: options.subResource } : {}),
      name: options.name ?? metadata.name ?? '',
      namespace: options.namespace ?? metadata.namespace ?? 'shop',
      operation: options.operation ?? 'CREATE',
      userInfo: { username: options.username ?? 'alice@example.com', groups: ['developers', 'system:authenticated'] },
      object,
      oldObject: options.oldObject ?? null,
      dryRun: options.dryRun ?? false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl' },
    },
  };
}

/** The benchmark's body: the realistic 3-container pod review, serialised once. */
export function realisticPodReviewBody(): string {
  return JSON.stringify(admissionReview({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002' }));
}

export interface TestAuthority {
  certPem: string;
  keyPem: string;
  /** A fresh serving certificate for 127.0.0.1 (and `dnsNames`), signed by this authority. */
  issue: (commonName: string, dnsNames?: string[]) => { certPem: string; keyPem: string };
}

/**
 * A CA and serving certificates made with the openssl CLI (ECDSA P-256), independent of the control
 * plane's pki module so the webhook's unit tests and bench need nothing but openssl.
 */
export function createTestAuthority(commonName = 'webhook-test-ca'): TestAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'cg-webhook-pki-'));
  const run = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }); };
  try {
    run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    run(['req', '-x509', '-new', '-key', 'ca.key', '-subj', `/CN=${commonName}`, '-days', '7', '-out', 'ca.crt',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const caCert = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const caKey = readFileSync(join(dir, 'ca.key'), 'utf8');
    return {
      certPem: caCert,
      keyPem: caKey,
      issue: (leafName, dnsNames = []) => {
        const leafDir = mkdtempSync(join(tmpdir(), 'cg-webhook-leaf-'));
        const leafRun = (args: string[]): void => { execFileSync('openssl', args, { cwd: leafDir, stdio: 'pipe' }); };
        try {
          writeFileSync(join(leafDir, 'ca.crt'), caCert);
          writeFileSync(join(leafDir, 'ca.key'), caKey);
          const san = ['IP:127.0.0.1', ...dnsNames.map((d) => `DNS:${d}`)].join(',');
          writeFileSync(join(leafDir, 'ext.cnf'), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
          leafRun(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.key']);
          leafRun(['req', '-new', '-key', 'leaf.key', '-subj', `/CN=${leafName}`, '-out', 'leaf.csr']);
          leafRun(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(12).toString('hex')}`,
            '-days', '7', '-extfile', 'ext.cnf', '-out', 'leaf.crt']);
          return { certPem: readFileSync(join(leafDir, 'leaf.crt'), 'utf8'), keyPem: readFileSync(join(leafDir, 'leaf.key'), 'utf8') };
        } finally {
          rmSync(leafDir, { recursive: true, force: true });
        }
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
