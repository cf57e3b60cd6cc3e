// Server-side apply with a fixed field manager per writer. `force: true` because every field a writer
// applies is its own by design (DESIGN.md "Who writes what"); a conflict would only mean an operator's
// manual edit, which the next apply must win.
import type { FIELD_MANAGER_CONTROLLER, FIELD_MANAGER_NODE_AGENT, FIELD_MANAGER_WEBHOOK } from '../api/index.ts';
import type { KubeClient, KubeObject } from './client.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';

export type FieldManager = typeof FIELD_MANAGER_CONTROLLER | typeof FIELD_MANAGER_NODE_AGENT | typeof FIELD_MANAGER_WEBHOOK;

/** The apply body: apiVersion and kind filled in from the resource. */
export interface ApplyBody {
  metadata: KubeObject['metadata'];
  [field: string]: unknown;
}

export class Applier {
  readonly client: KubeClient;
  readonly fieldManager: FieldManager;

  constructor(client: KubeClient, fieldManager: FieldManager) {
    this.client = client;
    this.fieldManager = fieldManager;
  }

  /** Applies metadata and spec (creating the object if absent). `status` in the body is ignored by the server. */
  apply<T extends KubeObject>(resource: ResourceType, body: ApplyBody): Promise<T> {
    return this.client.apply<T>(resource, this.withType(resource, body), { fieldManager: this.fieldManager, force: true });
  }

  /**
   * Applies to the /status subresource. Cannot create: a missing object is a 404. A `metadata.uid` in the
   * body makes the write conditional on the object's uid (409 when it differs).
   */
  applyStatus<T extends KubeObject>(resource: ResourceType, body: ApplyBody): Promise<T> {
    return this.client.apply<T>(resource, this.withType(resource, body), { fieldManager: this.fieldManager, force: true, subresource: 'status' });
  }

  private withType(resource: ResourceType, body: ApplyBody): KubeObject {
    return { apiVersion: apiVersionOf(resource), kind: resource.kind, ...body };
  }
}
