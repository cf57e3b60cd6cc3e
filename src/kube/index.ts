// src/kube — the one way this project talks to the API server: a lean REST client and kubeconfig loader,
// informers that survive restarts, 410s and half-open connections, a work queue, Lease-based leader
// election, server-side apply with fixed field managers, and the ConcurrencyReport writer.
// May import only src/api (and src/runtime, if it exists) plus npm packages. It deliberately does not
// import @kubernetes/client-node, whose KubeConfig alone loads the whole generated API (~80 MiB of RSS),
// except lazily, for kubeconfig users with exec / auth-provider credential plugins (kubeconfig.ts).
export * from './client.ts';
export * from './kubeconfig.ts';
export * from './resources.ts';
export * from './backoff.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './informer.ts';
export * from './workqueue.ts';
export * from './leader-election.ts';
export * from './apply.ts';
export * from './report-writer.ts';
export { createClient, createClientFor, type ClientSource } from './factory.ts';
export { EVENTS, EventRecorder, type EventRecorderOptions, type EventTarget } from './events.ts';
