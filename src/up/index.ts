// src/up — `concurrency-guard up`: the embedded control plane (control-plane/) and everything else of
// concurrency-guard on one machine. Top of the layers below src/cli.ts: may import every src/ layer.
export { runEmbeddedUp, type UpOptions } from './up.ts';
export * from './control-plane/index.ts';
