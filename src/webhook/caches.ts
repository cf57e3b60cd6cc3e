// What admission reads besides the review itself, all from informer caches (never an API call per
// request): the policies, compiled once per change; namespace labels for namespaceSelector; LimitRanges
// indexed by namespace for template defaults. The served generations (what the Lease announces) are the
// generations of the policies in the compiled set in use.
import type { ConcurrencyPolicy, ObjectMeta } from '../api/index.ts';
import type { Informer, KubeLogger } from '../kube/index.ts';

export interface NamespaceObject {
  metadata: ObjectMeta;
}

export interface LimitRangeObject {
  metadata: ObjectMeta;
  spec?: { limits?: unknown[] };
}

export interface AdmissionCachesOptions<Compiled, LimitRange extends LimitRangeObject = LimitRangeObject> {
  policies: Informer<ConcurrencyPolicy>;
  namespaces: Informer<NamespaceObject>;
  limitRanges: Informer<LimitRange>;
  /** Turns the current policies into what evaluation uses; called on every policy change. */
  compile: (policies: ConcurrencyPolicy[]) => Compiled;
  /** After each recompilation (the Lease announces the new generations). */
  onPoliciesChanged?: () => void;
  logger?: KubeLogger;
}

export class AdmissionCaches<Compiled, LimitRange extends LimitRangeObject = LimitRangeObject> {
  private readonly options: AdmissionCachesOptions<Compiled, LimitRange>;
  private compiledPolicies: Compiled;
  private generations = new Map<string, number>();
  private readonly limitRangesByNamespace = new Map<string, Map<string, LimitRange>>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(options: AdmissionCachesOptions<Compiled, LimitRange>) {
    this.options = options;
    this.compiledPolicies = options.compile([]);
    // A relist delivers one event per policy; compiling the whole set once per event would be N² at
    // start-up and after every 410. Events in one turn share one compile, done before any request can
    // run (and before whenSynced's callbacks, which are queued after it).
    let queued = false;
    const recompile = (): void => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => {
        queued = false;
        this.recompile();
      });
    };
    this.unsubscribe.push(options.policies.on({ add: recompile, update: recompile, delete: recompile }));
    this.unsubscribe.push(options.limitRanges.on({
      add: (lr) => this.indexLimitRange(lr),
      update: (lr, old) => { this.unindexLimitRange(old); this.indexLimitRange(lr); },
      delete: (lr) => this.unindexLimitRange(lr),
    }));
    // Informers that were running before we subscribed (shared with the controller) already hold objects.
    for (const lr of options.limitRanges.list()) this.indexLimitRange(lr);
    if (options.policies.size > 0) this.recompile();
  }

  get compiled(): Compiled {
    return this.compiledPolicies;
  }

  /** Policy name → metadata.generation of the compiled set in use. */
  get servedGenerations(): ReadonlyMap<string, number> {
    return this.generations;
  }

  synced(): boolean {
    return this.options.policies.hasSynced && this.options.namespaces.hasSynced && this.options.limitRanges.hasSynced;
  }

  whenSynced(): Promise<void> {
    return Promise.all([this.options.policies.whenSynced, this.options.namespaces.whenSynced, this.options.limitRanges.whenSynced]).then(() => undefined);
  }

  /** undefined when the namespace is not (yet) in the cache. */
  namespaceLabels(name: string): Record<string, string> | undefined {
    const namespace = this.options.namespaces.get(undefined, name);
    return namespace ? namespace.metadata.labels ?? {} : undefined;
  }

  limitRanges(namespace: string): LimitRange[] {
    const byName = this.limitRangesByNamespace.get(namespace);
    return byName ? [...byName.values()] : [];
  }

  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private recompile(): void {
    const policies = this.options.policies.list();
    try {
      this.compiledPolicies = this.options.compile(policies);
      this.generations = new Map(policies.map((p) => [p.metadata.name ?? '', p.metadata.generation ?? 0]));
    } catch (error) {
      // The previous set stays in force (and announced), so Ready does not claim the new generation.
      this.options.logger?.error({ error: String(error) }, 'policies failed to compile; keeping the previous set');
      return;
    }
    this.options.onPoliciesChanged?.();
  }

  private indexLimitRange(lr: LimitRange): void {
    const namespace = lr.metadata.namespace ?? '';
    let byName = this.limitRangesByNamespace.get(namespace);
    if (!byName) this.limitRangesByNamespace.set(namespace, (byName = new Map<string, LimitRange>()));
    byName.set(lr.metadata.name ?? '', lr);
  }

  private unindexLimitRange(lr: LimitRange): void {
    const namespace = lr.metadata.namespace ?? '';
    const byName = this.limitRangesByNamespace.get(namespace);
    byName?.delete(lr.metadata.name ?? '');
    if (byName?.size === 0) this.limitRangesByNamespace.delete(namespace);
  }
}
