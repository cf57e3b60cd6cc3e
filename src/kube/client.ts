// A small REST client for the verbs we use — get, list (paginated), watch, create, replace, apply,
// patch, delete — on node:https with a keep-alive agent. Written instead of using client-node's
// generated API, whose import alone costs ~80 MiB of RSS (README "Memory"). Every request has a
// deadline; a watch has an inactivity deadline instead, which is what notices a half-open connection.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { ObjectMeta } from '../api/index.ts';
import { pluginTokenProvider, type KubeConnection } from './kubeconfig.ts';
import { resourcePath, type ResourceType } from './resources.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** metav1.Status, as the API server returns it with an error or a watch ERROR event. */
export interface KubeStatus {
  kind?: 'Status';
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; retryAfterSeconds?: number; causes?: { reason?: string; message?: string; field?: string }[] };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T | KubeStatus;
}

/** A non-2xx answer from the API server. `message` is the Status message, never the whole body. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly body: KubeStatus | undefined;
  constructor(status: number, body: KubeStatus | undefined, method: string, path: string, retryAfterHeader?: string) {
    super(`${method} ${path}: ${status} ${body?.reason ?? ''} ${body?.message ?? ''}`.trim());
    this.status = status;
    this.reason = body?.reason;
    this.body = body;
    const retry = Number(retryAfterHeader ?? body?.details?.retryAfterSeconds);
    this.retryAfterSeconds = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  }
}

/** The request got no complete answer within its deadline. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
}

/** A watch received no bytes (not even a bookmark) for its idle timeout: treated as a dead connection. */
export class WatchStalledError extends Error {
  override name = 'WatchStalledError';
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}
export function isConflict(error: unknown): boolean {
  return error instanceof ApiError && error.status === 409;
}
export function isGone(error: unknown): boolean {
  return error instanceof ApiError && error.status === 410;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ListOptions {
  namespace?: string;
  signal?: AbortSignal;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Server-side end of the watch; the server closes it cleanly after this. */
  timeoutSeconds?: number;
  /** No bytes for this long → WatchStalledError. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Called when the server accepts the watch (200), before any event. */
  onConnected?: () => void;
}

export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
  subresource?: string;
}

export interface ApplyOptions extends WriteOptions {
  fieldManager: string;
  /** Take ownership of fields another manager set; right for fields that are ours by design. */
  force?: boolean;
}

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};
export const APPLY_CONTENT_TYPE = 'application/apply-patch+yaml';

export interface DeleteOptions {
  /** Delete only this incarnation of the object (and/or this version of it). */
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
}

export interface ClientOptions {
  /** Deadline for a request that is not a watch. */
  requestTimeoutMs?: number;
  userAgent?: string;
}

const TOKEN_FILE_MAX_AGE_MS = 60_000;

function encodeQuery(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function parseStatus(text: string): KubeStatus | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return text ? { message: text.slice(0, 200) } : undefined;
  }
}

export class KubeClient {
  readonly connection: KubeConnection;
  private readonly url: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private cachedToken: { value: string; readAt: number } | undefined;
  private readonly tokenProvider: (() => Promise<string>) | undefined;

  constructor(connection: KubeConnection, options: ClientOptions = {}) {
    this.connection = connection;
    this.url = new URL(connection.server);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'concurrency-guard';
    const plugin = connection.credentialPlugin;
    this.tokenProvider = plugin ? pluginTokenProvider(plugin.kubeconfig, plugin.context) : undefined;
    if (this.url.protocol === 'https:') {
      this.agent = new HttpsAgent({
        keepAlive: true,
        ...(connection.caPem ? { ca: connection.caPem } : {}),
        ...(connection.clientCertPem ? { cert: connection.clientCertPem, key: connection.clientKeyPem } : {}),
        ...(connection.tlsServerName ? { servername: connection.tlsServerName } : {}),
        rejectUnauthorized: connection.insecureSkipTLSVerify !== true,
      });
    } else {
      const hasToken = Boolean(connection.token || connection.tokenFile || connection.credentialPlugin);
      if (connection.clientCertPem || (hasToken && connection.insecureSkipTLSVerify !== true)) {
        // Same rule as client-node: credentials never travel over plain HTTP unless asked for explicitly.
        throw new Error(`refusing to send credentials to ${connection.server} over plain HTTP`);
      }
      this.agent = new HttpAgent({ keepAlive: true });
    }
  }

  /** Closes idle keep-alive sockets; in-flight requests finish. */
  close(): void {
    this.agent.destroy();
  }

  private async bearerToken(): Promise<string | undefined> {
    if (this.tokenProvider) return this.tokenProvider();
    if (this.connection.token) return this.connection.token;
    const file = this.connection.tokenFile;
    if (!file) return undefined;
    const now = Date.now();
    if (!this.cachedToken || now - this.cachedToken.readAt > TOKEN_FILE_MAX_AGE_MS) {
      try {
        this.cachedToken = { value: readFileSync(file, 'utf8').trim(), readAt: now };
      } catch (error) {
        // A rotation in progress can leave the file briefly missing; keep the token we had.
        if (!this.cachedToken) throw error;
      }
    }
    return this.cachedToken.value;
  }

  private async open(method: string, pathAndQuery: string, headers: Record<string, string>): Promise<ClientRequest> {
    const token = await this.bearerToken();
    const requestFn = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return requestFn({
      protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port,
      path: `${this.url.pathname === '/' ? '' : this.url.pathname}${pathAndQuery}`,
      method, agent: this.agent,
      headers: {
        accept: 'application/json', 'user-agent': this.userAgent,
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
    });
  }

  /** One request and its JSON answer; non-2xx → ApiError; no answer within the deadline → RequestTimeoutError. */
  async request<T>(options: RequestOptions): Promise<T> {
    const pathAndQuery = `${options.path}${encodeQuery(options.query)}`;
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    if (options.signal?.aborted) throw options.signal.reason as Error;
    const req = await this.open(options.method, pathAndQuery, payload === undefined ? {} : {
      'content-type': options.contentType ?? 'application/json',
      'content-length': String(Buffer.byteLength(payload)),
    });
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        req.destroy(new RequestTimeoutError(`${options.method} ${options.path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => { req.destroy(options.signal?.reason as Error); };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      // `on`, not `once`: a destroyed socket can emit a second error, which must not go uncaught.
      req.on('error', (error) => { finish(); reject(error); });
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => { finish(); reject(error); });
        res.once('end', () => {
          finish();
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const retryAfter = res.headers['retry-after'];
            reject(new ApiError(status, parseStatus(text), options.method, options.path, typeof retryAfter === 'string' ? retryAfter : undefined));
            return;
          }
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      });
      req.end(payload);
    });
  }

  get<T extends KubeObject>(resource: ResourceType, namespace: string | undefined, name: string, subresource?: string): Promise<T> {
    return this.request<T>({ method: 'GET', path: resourcePath(resource, namespace, name, subresource) });
  }

  /** The object, or undefined when it does not exist. */
  async getIfExists<T extends KubeObject>(resource: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(resource, namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  listPage<T extends KubeObject>(resource: ResourceType, options: ListOptions = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>({
      method: 'GET', path: resourcePath(resource, options.namespace),
      ...(options.signal ? { signal: options.signal } : {}),
      query: {
        labelSelector: options.labelSelector, fieldSelector: options.fieldSelector,
        limit: options.limit, continue: options.continue, resourceVersion: options.resourceVersion,
      },
    });
  }

  /**
   * Every object, page by page (limit/continue), all from one consistent snapshot. When the snapshot is
   * compacted away mid-list (410 on a continue token), starts over.
   */
  async list<T extends KubeObject>(resource: ResourceType, options: ListOptions & { pageSize?: number } = {}): Promise<KubeList<T>> {
    const pageSize = options.pageSize ?? 500;
    for (let attempt = 0; ; attempt++) {
      const items: T[] = [];
      let continueToken: string | undefined;
      let resourceVersion: string | undefined;
      try {
        do {
          const page = await this.listPage<T>(resource, { ...options, limit: pageSize, ...(continueToken ? { continue: continueToken } : {}) });
          items.push(...page.items);
          resourceVersion ??= page.metadata.resourceVersion;
          continueToken = page.metadata.continue || undefined;
        } while (continueToken);
        return { metadata: resourceVersion ? { resourceVersion } : {}, items };
      } catch (error) {
        if (isGone(error) && continueToken && attempt < 3) continue;
        throw error;
      }
    }
  }

  create<T extends KubeObject>(resource: ResourceType, object: T, options: WriteOptions = {}): Promise<T> {
    return this.request<T>({
      method: 'POST', path: resourcePath(resource, object.metadata.namespace),
      query: { fieldManager: options.fieldManager, dryRun: options.dryRun ? 'All' : undefined }, body: object,
    });
  }

  /** PUT: optimistic concurrency through metadata.resourceVersion (409 when someone wrote in between). */
  replace<T extends KubeObject>(resource: ResourceType, object: T, options: WriteOptions = {}): Promise<T> {
    const name = object.metadata.name;
    if (!name) throw new Error('replace needs metadata.name');
    return this.request<T>({
      method: 'PUT', path: resourcePath(resource, object.metadata.namespace, name, options.subresource),
      query: { fieldManager: options.fieldManager, dryRun: options.dryRun ? 'All' : undefined }, body: object,
    });
  }

  /**
   * Server-side apply of `object` (with apiVersion, kind, metadata.name) to the object or its subresource.
   * A `metadata.uid` in the body is a precondition: the server answers 409 when the object's uid differs.
   */
  apply<T extends KubeObject>(resource: ResourceType, object: KubeObject, options: ApplyOptions): Promise<T> {
    const name = object.metadata.name;
    if (!name) throw new Error('apply needs metadata.name');
    return this.request<T>({
      method: 'PATCH', path: resourcePath(resource, object.metadata.namespace, name, options.subresource),
      query: { fieldManager: options.fieldManager, force: options.force ? true : undefined, dryRun: options.dryRun ? 'All' : undefined },
      body: object, contentType: APPLY_CONTENT_TYPE,
    });
  }

  patch<T extends KubeObject>(resource: ResourceType, namespace: string | undefined, name: string, patch: unknown, type: PatchType, options: WriteOptions = {}): Promise<T> {
    return this.request<T>({
      method: 'PATCH', path: resourcePath(resource, namespace, name, options.subresource),
      query: { fieldManager: options.fieldManager, dryRun: options.dryRun ? 'All' : undefined },
      body: patch, contentType: PATCH_CONTENT_TYPES[type],
    });
  }

  /** Deletes; with preconditions a different uid/resourceVersion is a 409 and nothing is deleted. */
  delete(resource: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions = {}): Promise<KubeObject | KubeStatus> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.preconditions) body['preconditions'] = options.preconditions;
    if (options.propagationPolicy) body['propagationPolicy'] = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body['gracePeriodSeconds'] = options.gracePeriodSeconds;
    return this.request({ method: 'DELETE', path: resourcePath(resource, namespace, name), body });
  }

  /**
   * Watch events as they arrive. Ends when the server closes the stream; throws ApiError for a non-200
   * answer, WatchStalledError after `idleTimeoutMs` without a byte, or the abort reason of `signal`.
   */
  async *watch<T extends KubeObject>(resource: ResourceType, options: WatchOptions): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const path = resourcePath(resource, options.namespace);
    const pathAndQuery = `${path}${encodeQuery({
      watch: 1, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector,
      resourceVersion: options.resourceVersion, allowWatchBookmarks: options.allowWatchBookmarks ? true : undefined,
      timeoutSeconds: options.timeoutSeconds,
    })}`;
    if (options.signal?.aborted) throw options.signal.reason as Error;
    const req = await this.open('GET', pathAndQuery, {});
    let res: IncomingMessage | undefined;
    // Errors after the response are surfaced through `res` (destroyed with the same error); this
    // listener keeps a late socket error (or one from destroying an unsent request) from going uncaught.
    req.on('error', (error) => { res?.destroy(error); });
    const fail = (error: Error): void => {
      res?.destroy(error);
      req.destroy(error);
    };
    const idle = setTimeout(() => {
      fail(new WatchStalledError(`watch ${path}: no bytes for ${options.idleTimeoutMs} ms`));
    }, options.idleTimeoutMs);
    const onAbort = (): void => fail(options.signal?.reason as Error);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
        req.end();
      });
      idle.refresh();
      if (res.statusCode === 200) options.onConnected?.();
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        const retryAfter = res.headers['retry-after'];
        throw new ApiError(res.statusCode ?? 0, parseStatus(Buffer.concat(chunks).toString('utf8')), 'WATCH', path, typeof retryAfter === 'string' ? retryAfter : undefined);
      }
      res.setEncoding('utf8');
      let pending = '';
      for await (const chunk of res) {
        idle.refresh();
        pending += chunk as string;
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim()) yield JSON.parse(line) as WatchEvent<T>;
          newline = pending.indexOf('\n');
        }
      }
      if (pending.trim()) yield JSON.parse(pending) as WatchEvent<T>;
    } finally {
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', onAbort);
      // Ended early by the consumer (return/throw) or done: either way this connection is finished.
      if (!req.destroyed) req.destroy();
    }
  }
}

/** `namespace/name` for namespaced objects, `name` for cluster-scoped ones (client-go's MetaNamespaceKey). */
export function objectKey(object: { metadata: ObjectMeta }): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : name ?? '';
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
