// The agent's metrics: pod series carry only namespace and pod (bounded by this node's pods) and go
// away with the pod; nothing else is a label.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/node-agent/metrics.ts';

describe('agent metrics', () => {
  it('labels pod series by namespace and pod only, and removes them when the pod leaves', async () => {
    const registry = new Registry();
    const metrics = new AgentMetrics(registry);
    metrics.setPod('shop', 'api-0', { level: 'Critical', matched: true, fdPercent: 96.4, threadPercent: 12, threads: 37, dropsPerMinute: 6, gomaxprocsMismatch: true, throttledPercent: 40 });
    metrics.setPod('shop', 'api-1', { level: 'OK', matched: false });
    metrics.crash('fd-exhaustion');
    let text = await registry.metrics();
    expect(text).toContain('concurrency_guard_pod_fd_percent{namespace="shop",pod="api-0"} 96.4');
    expect(text).toContain('concurrency_guard_pod_pressure_level{namespace="shop",pod="api-0"} 2');
    expect(text).toContain('concurrency_guard_pod_policy_matched{namespace="shop",pod="api-1"} 0');
    expect(text).toContain('concurrency_guard_container_crashes_total{class="fd-exhaustion"} 1');
    const labelNames = new Set([...text.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]));
    expect([...labelNames].sort()).toEqual(['class', 'le', 'namespace', 'pod']); // le: the tick histogram's buckets
    metrics.keepPods(new Set(['shop/api-1']));
    text = await registry.metrics();
    expect(text).not.toContain('pod="api-0"');
    expect(text).toContain('concurrency_guard_pod_pressure_level{namespace="shop",pod="api-1"} 0');
  });
});
