// Events (events.k8s.io/v1) on state changes a person should see in `kubectl describe` / `kubectl events`
// (the controller: a policy Ready or not, violations appearing or clearing; the agent: a pod turning
// Critical). One Event per change, never one per reconcile or tick. Cluster-scoped objects' events go to
// the `default` namespace, as client-go does.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from './client.ts';
import { describeError, type KubeLogger } from './logger.ts';
import { microTime } from './leader-election.ts';
import type { ResourceType } from './resources.ts';

export const EVENTS: ResourceType = { group: 'events.k8s.io', version: 'v1', kind: 'Event', plural: 'events', namespaced: true };

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  namespace?: string;
}

export interface EventRecorderOptions {
  client: KubeClient;
  /** events.k8s.io's reportingController, e.g. concurrencyguard.io/controller. */
  controller: string;
  /** events.k8s.io's action: what the reporter was doing (Reconcile, Scan). */
  action: string;
  /** This replica (pod name + suffix): events.k8s.io's reportingInstance. */
  instance: string;
  logger: KubeLogger;
}

export class EventRecorder {
  private readonly options: EventRecorderOptions;

  constructor(options: EventRecorderOptions) {
    this.options = options;
  }

  /** Best effort: an event that cannot be written is logged, never retried (the status says the same). */
  async record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    const namespace = target.namespace ?? 'default';
    try {
      await this.options.client.create(EVENTS, {
        apiVersion: 'events.k8s.io/v1', kind: 'Event',
        // client-go's naming (generateName may not end in '.'): the object's name and a unique suffix.
        metadata: { name: `${target.name}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`, namespace },
        eventTime: microTime(Date.now()),
        reportingController: this.options.controller,
        reportingInstance: this.options.instance.slice(0, 128),
        action: this.options.action,
        type, reason, note: note.slice(0, 1024),
        regarding: {
          apiVersion: target.apiVersion, kind: target.kind, name: target.name,
          ...(target.uid ? { uid: target.uid } : {}), ...(target.namespace ? { namespace: target.namespace } : {}),
        },
      } as never);
    } catch (error) {
      this.options.logger.warn({ target: target.name, reason, error: describeError(error) }, 'could not record an event');
    }
  }
}
