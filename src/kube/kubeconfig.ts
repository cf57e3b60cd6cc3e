// Where the API server is and how to authenticate to it: from a kubeconfig file, from the pod's service
// account (in-cluster), or given explicitly. A lean reader on purpose: client-node's KubeConfig pulls in
// its whole generated API (~80 MiB of RSS), and we need only server, CA, client certificate and bearer
// token; only users with credential plugins load it, lazily. `yaml` is imported lazily too, so the
// in-cluster path (production) never loads it.
import { readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Everything a client needs to reach one API server as one identity. */
export interface KubeConnection {
  /** https://host:port (or http:// for a local test server). */
  server: string;
  caPem?: string;
  insecureSkipTLSVerify?: boolean;
  /** Sent as SNI and checked against the serving certificate instead of the server's host. */
  tlsServerName?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  token?: string;
  /** Re-read when older than a minute: bound service-account tokens rotate. */
  tokenFile?: string;
  /**
   * For exec and auth-provider users (EKS, GKE, OIDC): the kubeconfig and context whose plugin gives the
   * bearer token. Plain data, so a connection can be posted to a worker thread.
   */
  credentialPlugin?: { kubeconfig: string; context: string };
  /** The namespace of the context (or of the pod, in-cluster); `default` when neither says. */
  namespace: string;
}

export interface KubeconfigSource {
  /** A kubeconfig file; default $KUBECONFIG (first existing path of the list), then ~/.kube/config. */
  path?: string;
  /** Kubeconfig text (tests). */
  text?: string;
  /** A context other than current-context. */
  context?: string;
}

export class KubeconfigError extends Error {
  override name = 'KubeconfigError';
}

interface NamedEntry<T> { name: string; [key: string]: unknown; cluster?: T; user?: T; context?: T }
type Fields = Record<string, unknown>;

function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function findNamed(list: unknown, name: string, field: 'cluster' | 'user' | 'context'): Fields | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = (list as NamedEntry<Fields>[]).find((e) => e?.name === name);
  return entry?.[field] ?? undefined;
}

function dataOrFile(fields: Fields, dataKey: string, fileKey: string, baseDir: string): string | undefined {
  const data = asString(fields[dataKey]);
  if (data) return Buffer.from(data, 'base64').toString('utf8');
  const file = asString(fields[fileKey]);
  if (file) return readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), 'utf8');
  return undefined;
}

/** Parses a kubeconfig's current (or given) context into a connection. */
export async function connectionFromKubeconfig(source: KubeconfigSource = {}, env: NodeJS.ProcessEnv = process.env): Promise<KubeConnection> {
  let text = source.text;
  let baseDir = process.cwd();
  if (text === undefined) {
    const path = source.path ?? defaultKubeconfigPath(env);
    if (!path) throw new KubeconfigError('no kubeconfig: $KUBECONFIG and ~/.kube/config are absent');
    text = readFileSync(path, 'utf8');
    baseDir = dirname(path);
  }
  const { parse } = await import('yaml');
  const config = parse(text) as Fields | null;
  if (!config || typeof config !== 'object') throw new KubeconfigError('kubeconfig is empty');
  const contextName = source.context ?? asString(config['current-context']);
  if (!contextName) throw new KubeconfigError('kubeconfig has no current-context');
  const context = findNamed(config['contexts'], contextName, 'context');
  if (!context) throw new KubeconfigError(`kubeconfig has no context ${contextName}`);
  const clusterName = asString(context['cluster']) ?? '';
  const cluster = findNamed(config['clusters'], clusterName, 'cluster');
  if (!cluster) throw new KubeconfigError(`kubeconfig has no cluster ${clusterName}`);
  const userName = asString(context['user']);
  const user = userName ? findNamed(config['users'], userName, 'user') ?? {} : {};
  const needsPlugin = Boolean(user['exec'] || user['auth-provider']);
  const server = asString(cluster['server']);
  if (!server) throw new KubeconfigError(`cluster ${clusterName} has no server`);
  const connection: KubeConnection = {
    server: server.replace(/\/+$/, ''),
    namespace: asString(context['namespace']) ?? 'default',
  };
  const caPem = dataOrFile(cluster, 'certificate-authority-data', 'certificate-authority', baseDir);
  if (caPem) connection.caPem = caPem;
  if (cluster['insecure-skip-tls-verify'] === true) connection.insecureSkipTLSVerify = true;
  const tlsServerName = asString(cluster['tls-server-name']);
  if (tlsServerName) connection.tlsServerName = tlsServerName;
  const certPem = dataOrFile(user, 'client-certificate-data', 'client-certificate', baseDir);
  const keyPem = dataOrFile(user, 'client-key-data', 'client-key', baseDir);
  if (certPem && keyPem) {
    connection.clientCertPem = certPem;
    connection.clientKeyPem = keyPem;
  }
  const token = asString(user['token']);
  if (token) connection.token = token;
  const tokenFile = asString(user['tokenFile']);
  if (tokenFile) connection.tokenFile = isAbsolute(tokenFile) ? tokenFile : resolve(baseDir, tokenFile);
  if (needsPlugin) connection.credentialPlugin = { kubeconfig: text, context: contextName };
  return connection;
}

/**
 * Runs exec / auth-provider plugins through client-node's KubeConfig, imported only here and only when
 * such a user is configured: it costs ~80 MiB of RSS, which in-cluster components never pay.
 */
export function pluginTokenProvider(kubeconfigText: string, contextName: string): () => Promise<string> {
  let loaded: Promise<{ applyAuthorizationHeader(opts: { headers?: Record<string, string> }): Promise<void> }> | undefined;
  return async () => {
    loaded ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigText);
      kc.setCurrentContext(contextName);
      return kc as unknown as { applyAuthorizationHeader(opts: { headers?: Record<string, string> }): Promise<void> };
    });
    const kc = await loaded;
    const opts: { headers: Record<string, string> } = { headers: {} };
    await kc.applyAuthorizationHeader(opts);
    const header = opts.headers['Authorization'] ?? opts.headers['authorization'];
    if (!header?.startsWith('Bearer ')) throw new KubeconfigError(`context ${contextName}: the credential plugin gave no bearer token`);
    return header.slice('Bearer '.length);
  };
}

export function defaultKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env['KUBECONFIG'];
  if (fromEnv) {
    // kubectl merges every file of the list; we take the first that exists (documented limitation).
    const first = fromEnv.split(':').find((p) => p.length > 0 && existsSync(p));
    if (first) return first;
  }
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? home : undefined;
}

/** The pod's service account, as client-go's rest.InClusterConfig reads it. */
export function connectionInCluster(env: NodeJS.ProcessEnv = process.env, dir = IN_CLUSTER_DIR): KubeConnection {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port) throw new KubeconfigError('not in a cluster: KUBERNETES_SERVICE_HOST/PORT are unset');
  const tokenFile = join(dir, 'token');
  if (!existsSync(tokenFile)) throw new KubeconfigError(`not in a cluster: ${tokenFile} is absent`);
  const namespaceFile = join(dir, 'namespace');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    tokenFile,
    namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : 'default',
  };
}

/**
 * The usual order: an explicit kubeconfig, else $KUBECONFIG / ~/.kube/config, else in-cluster. Unlike
 * client-node it never falls back to http://localhost:8080: no configuration is an error.
 */
export async function loadConnection(source: KubeconfigSource & { inCluster?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): Promise<KubeConnection> {
  if (source.inCluster) return connectionInCluster(env);
  if (source.path || source.text || defaultKubeconfigPath(env)) return connectionFromKubeconfig(source, env);
  return connectionInCluster(env);
}
