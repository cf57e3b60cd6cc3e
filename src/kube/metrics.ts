// Metrics live in a Registry the caller injects (never prom-client's global one, which breaks when a
// module is loaded twice, e.g. under Vitest). Several informers or queues share one registry, so each
// metric is created once per registry and reused.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

export function counterIn<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return existing<Counter<L>>(registry, name) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
}

export function gaugeIn<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  return existing<Gauge<L>>(registry, name) ?? new Gauge<L>({ name, help, labelNames, registers: [registry] });
}

export function histogramIn<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], buckets?: number[]): Histogram<L> {
  return existing<Histogram<L>>(registry, name)
    ?? new Histogram<L>({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) });
}

/** controller-runtime's workqueue buckets: 1 µs to 10 s in powers of ten. */
export const WORKQUEUE_BUCKETS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
