// bench/webhook — the webhook against DESIGN.md's targets, as ratios to references measured in the same run.
//
//  1. HTTPS throughput and latency: our webhook (real admission, the realistic 3-container pod, 20
//     policies) next to the bare fastify server of bench/bare-fastify.ts. Each server runs pinned to one
//     core (`taskset -c 1`), the load generator (undici, 32 keep-alive connections) to the other; first a
//     closed loop for the maximum rate, then an open loop at half of it for the latency (measured from
//     each request's scheduled time, so queueing is not hidden).
//  2. Pod-create latency through a real kube-apiserver: no admission, our webhook (failurePolicy Fail),
//     and a ValidatingAdmissionPolicy doing the GOMAXPROCS literal rule.
//
// Usage: node bench/webhook.ts [--duration 10] [--connections 32] [--skip-apiserver] [--creates 400]
// (internal roles: serve-bare | serve-ours | load, started by the main role as pinned child processes).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import type { AddressInfo } from 'node:net';
import type { ConcurrencyPolicy } from '../src/api/index.ts';
import { createAdmit } from '../src/webhook/admission.ts';
import { BatchedLineWriter } from '../src/runtime/index.ts';
import { excludedNamespaces, HANDLED_KIND_KEYS } from '../src/webhook/configuration.ts';
import { admissionCompiler, engineEvaluate, type EngineState } from '../src/webhook/engine.ts';
import { WebhookMetrics } from '../src/webhook/metrics.ts';
import { parseAdmissionReview } from '../src/webhook/review.ts';
import { buildWebhookServer, type Admit } from '../src/webhook/server.ts';
import { startBareServer } from './bare-fastify.ts';
import { runApiServerBench } from './webhook-apiserver.ts';
import { createTestAuthority, realisticPodReviewBody } from '../test/unit/webhook-fixtures.ts';

const NODE = process.execPath;
const SELF = import.meta.filename;

interface LoadResult {
  /** Server CPU (user + system) per answered request, µs: robust where wall-clock rates are not. */
  serverMicrosPerRequest?: number;
  requests: number;
  errors: number;
  non200: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU the load generator itself used, as a fraction of its core: near 1 means it, not the server, limited. */
  loaderCpu: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

// ---- role: load ----

async function runLoad(args: { port: number; caFile: string; bodyFile: string; connections: number; seconds: number; warmupSeconds: number; rate: number }): Promise<LoadResult> {
  const body = readFileSync(args.bodyFile);
  const pool = new Pool(`https://127.0.0.1:${args.port}`, {
    connections: args.connections, pipelining: 1,
    connect: { ca: readFileSync(args.caFile, 'utf8') },
    keepAliveTimeout: 120_000,
  });
  const headers = { 'content-type': 'application/json' };
  let measuring = false;
  const latencies: number[] = [];
  let errors = 0;
  let non200 = 0;

  async function once(scheduledAt: number): Promise<void> {
    try {
      const res = await pool.request({ path: '/validate', method: 'POST', body, headers });
      await res.body.dump();
      if (measuring) {
        latencies.push(performance.now() - scheduledAt);
        if (res.statusCode !== 200) non200++;
      }
    } catch {
      if (measuring) errors++;
    }
  }

  const total = args.warmupSeconds + args.seconds;
  const startedAt = performance.now();
  const measureFrom = startedAt + args.warmupSeconds * 1000;
  const endAt = startedAt + total * 1000;
  let cpuAtMeasure = process.cpuUsage();
  setTimeout(() => { measuring = true; cpuAtMeasure = process.cpuUsage(); }, args.warmupSeconds * 1000);

  if (args.rate <= 0) {
    // Closed loop: every connection always has one request in flight.
    await Promise.all(Array.from({ length: args.connections }, async () => {
      while (performance.now() < endAt) await once(performance.now());
    }));
  } else {
    // Open loop at a fixed rate: request i is due at start + i/rate, whatever happened to earlier ones.
    const inFlight = new Set<Promise<void>>();
    const interval = 1000 / args.rate;
    let sent = 0;
    while (performance.now() < endAt) {
      const now = performance.now();
      while (startedAt + sent * interval <= now) {
        const due = startedAt + sent * interval;
        sent++;
        const p = once(due).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(1);
    }
    await Promise.all(inFlight);
  }
  const cpu = process.cpuUsage(cpuAtMeasure);
  const measuredSeconds = (performance.now() - measureFrom) / 1000;
  await pool.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length, errors, non200,
    seconds: measuredSeconds,
    rps: latencies.length / args.seconds,
    p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN,
    loaderCpu: (cpu.user + cpu.system) / 1e6 / measuredSeconds,
  };
}

// ---- roles: serve-bare, serve-ours ----

/**
 * Twenty policies as a platform team might write them: per-team and per-environment namespace
 * selectors, pod selectors, all three rule families with differing parameters and enforcements. The
 * realistic pod (namespace `shop`, team shop, env prod) is matched by about half of them.
 */
export function benchPolicies(): ConcurrencyPolicy[] {
  const teams = ['shop', 'payments', 'search', 'platform'];
  const policies: ConcurrencyPolicy[] = [];
  const policy = (name: string, spec: ConcurrencyPolicy['spec']): void => {
    policies.push({ apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name, generation: 1 }, spec });
  };
  policy('baseline-gomaxprocs', { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 0 } });
  policy('baseline-ulimits', { enforcement: 'Warn', ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn', runtimeDefaults: { nofile: { soft: 1024, hard: 524288 } } } });
  policy('baseline-sysctls', { enforcement: 'Deny', sysctls: { allowedUnsafe: ['net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.tcp_*'], minimums: { 'net.core.somaxconn': 4096 } } });
  for (const team of teams) {
    policy(`${team}-prod-gomaxprocs`, {
      match: { namespaceSelector: { matchLabels: { team, env: 'prod' } } }, enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: team === 'search' ? 1 : 0 },
    });
    policy(`${team}-ulimits`, {
      match: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: [team] }] }, podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } },
      enforcement: 'Warn', ulimits: { nofile: { minSoft: 32768, minPerCPU: 8192 }, nproc: { minPerCPU: 512 }, onUndeclared: 'Ignore' },
    });
    policy(`${team}-sysctls`, {
      match: { namespaceSelector: { matchLabels: { team } }, exclude: { namespaces: [`${team}-sandbox`] } },
      enforcement: 'Audit', sysctls: { allowedUnsafe: ['net.core.somaxconn'], minimums: { 'net.core.somaxconn': 1024 } },
    });
  }
  policy('dev-relaxed', { match: { namespaceSelector: { matchLabels: { env: 'dev' } } }, enforcement: 'Warn', gomaxprocs: { maxOverCPULimit: 4 } });
  policy('batch-jobs', { match: { podSelector: { matchLabels: { workload: 'batch' } } }, enforcement: 'Audit', gomaxprocs: { maxOverCPULimit: 2 }, ulimits: { nofile: { minSoft: 4096 } } });
  policy('checkout-strict', {
    match: { podSelector: { matchLabels: { app: 'checkout' } } }, enforcement: 'Deny',
    gomaxprocs: { maxOverCPULimit: 0, enforcement: 'Deny' }, ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn', enforcement: 'Warn' },
  });
  policy('edge-proxies', { match: { podSelector: { matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'In', values: ['edge', 'ingress'] }] } }, enforcement: 'Deny', sysctls: { minimums: { 'net.core.somaxconn': 8192 } } });
  policy('not-kube-public', { match: { exclude: { namespaces: ['kube-public'] } }, enforcement: 'Audit', gomaxprocs: { maxOverCPULimit: 1 } });
  return policies;
}

/** The namespace of the realistic pod, with a LimitRange as most multi-tenant clusters have. */
const BENCH_STATE_NAMESPACE_LABELS = { 'kubernetes.io/metadata.name': 'shop', team: 'shop', env: 'prod' };
const BENCH_LIMIT_RANGES = [{
  metadata: { name: 'defaults', namespace: 'shop' },
  spec: { limits: [{ type: 'Container', default: { cpu: '1', memory: '512Mi' }, defaultRequest: { cpu: '100m', memory: '128Mi' } }] },
}];

function benchAdmit(): Admit {
  const state: EngineState = {
    compiled: admissionCompiler(excludedNamespaces('concurrency-guard'))(benchPolicies()),
    namespaceLabels: (name) => (name === 'shop' ? BENCH_STATE_NAMESPACE_LABELS : { 'kubernetes.io/metadata.name': name }),
    limitRanges: (namespace) => (namespace === 'shop' ? BENCH_LIMIT_RANGES : []),
  };
  return createAdmit({ evaluate: (input) => engineEvaluate(state, input), excludedNamespaces: excludedNamespaces('concurrency-guard') });
}

const benchAdmission = {
  policyCount: benchPolicies().length,
  admit: benchAdmit(),
  async startServer(pair: { certPem: string; keyPem: string }): Promise<{ port: number; close: () => Promise<void>; registry: Registry }> {
    const registry = new Registry();
    // As in production: JSON lines through a buffered asynchronous destination (here /dev/null).
    // CG_BENCH_VARIANT switches costs off for A/B runs, joined by '+': no-log (level warn),
    // fastify-handler-timeout (fastify's per-request AbortController instead of our deadline), sonic-boom
    // (pino's asynchronous destination instead of BatchedLineWriter), trivial
    // (allow everything without evaluating: the server's own cost).
    const variant = new Set((process.env['CG_BENCH_VARIANT'] ?? '').split('+'));
    const logger = pino({ level: variant.has('no-log') ? 'warn' : 'info' }, variant.has('sonic-boom')
      ? pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 })
      : new BatchedLineWriter({ fd: openSync('/dev/null', 'w') }));
    const { app } = buildWebhookServer({
      certificate: pair, admit: variant.has('trivial') ? () => ({ allowed: true }) : this.admit, logger,
      metrics: new WebhookMetrics(registry, HANDLED_KIND_KEYS),
      readiness: () => ({ ready: true, reasons: [] }),
      ...(variant.has('fastify-handler-timeout') ? { fastifyHandlerTimeout: true } : {}),
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close(), registry };
  },
};

async function serve(kind: 'bare' | 'ours', certFile: string, keyFile: string): Promise<void> {
  const certPem = readFileSync(certFile, 'utf8');
  const keyPem = readFileSync(keyFile, 'utf8');
  const server: { port: number; close: () => Promise<void>; registry?: Registry } = kind === 'bare'
    ? await startBareServer({ certPem, keyPem })
    : await benchAdmission.startServer({ certPem, keyPem });
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  // The parent asks for our CPU time ("cpu") or our latency sums ("latency"), and closes stdin to stop us.
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.stdout.write(`${JSON.stringify({ cpuMicros: user + system })}\n`);
    } else if (line === 'latency') {
      // Our own view of each review: routing to answer, from the webhook's latency histogram.
      const text = server.registry ? await server.registry.metrics() : '';
      const read = (name: string): number => Number(new RegExp(`^${name}\\{webhook="/validate"\\} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
      process.stdout.write(`${JSON.stringify({ count: read('controller_runtime_webhook_latency_seconds_count'), sum: read('controller_runtime_webhook_latency_seconds_sum') })}\n`);
    }
  }
  await server.close();
}

// ---- role: main ----

function pinned(core: number, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn('taskset', ['-c', String(core), NODE, SELF, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return line;
  throw new Error('child exited before answering');
}

interface PinnedServer { port: number; cpuMicros: () => Promise<number>; stop: () => Promise<void> }

async function startPinnedServer(name: string, certFile: string, keyFile: string): Promise<PinnedServer> {
  const [kind, variant] = name.split(':');
  const child = pinned(1, ['serve', kind!, certFile, keyFile], variant ? { CG_BENCH_VARIANT: variant } : {});
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`server ${name} exited`);
    return value;
  };
  const { port } = JSON.parse(await nextLine()) as { port: number };
  return {
    port,
    cpuMicros: async () => {
      child.stdin!.write('cpu\n');
      return (JSON.parse(await nextLine()) as { cpuMicros: number }).cpuMicros;
    },
    stop: async () => {
      child.stdin!.end();
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function load(port: number, files: { caFile: string; bodyFile: string }, options: { connections: number; seconds: number; warmupSeconds: number; rate: number }): Promise<LoadResult> {
  const child = pinned(0, ['load', String(port), files.caFile, files.bodyFile, String(options.connections), String(options.seconds), String(options.warmupSeconds), String(options.rate)]);
  child.stdin!.end();
  return JSON.parse(await firstLine(child)) as LoadResult;
}

function row(name: string, r: LoadResult): string {
  const ms = (v: number): string => v.toFixed(2).padStart(7);
  const cpu = r.serverMicrosPerRequest === undefined ? ''.padStart(9) : r.serverMicrosPerRequest.toFixed(1).padStart(9);
  return `${name.padEnd(40)} ${r.rps.toFixed(0).padStart(7)} ${cpu} ${ms(r.p50)} ${ms(r.p99)} ${ms(r.max)} ${String(r.errors + r.non200).padStart(6)} ${(r.loaderCpu * 100).toFixed(0).padStart(5)}%`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '32' },
      'skip-apiserver': { type: 'boolean', default: false },
      'skip-https': { type: 'boolean', default: false },
      // Only the paired run of the HTTPS part (the sequential one is what DESIGN.md's figures describe).
      'skip-sequential': { type: 'boolean', default: false },
      // Also run bare and ours at the same time on the same core, each under its own closed loop: the
      // machine's other load then hits both alike, and server CPU per request compares them fairly.
      paired: { type: 'boolean', default: true },
      // What runs beside bare in the paired run (a CG_BENCH_VARIANT of ours for A/B, e.g. ours:trivial).
      'paired-with': { type: 'string', default: 'ours' },
      creates: { type: 'string', default: '400' },
      // Extra A/B servers, e.g. ours:trivial,ours:fastify-handler-timeout (see CG_BENCH_VARIANT).
      variants: { type: 'string', default: '' },
      // Rounds of (bare, ours): the machine is shared, so alternate and keep the median.
      rounds: { type: 'string', default: '1' },
    },
  });
  const seconds = Number(values.duration);
  const warmupSeconds = Number(values.warmup);
  const connections = Number(values.connections);
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-webhook-'));
  const authority = createTestAuthority('bench-ca');
  const serving = authority.issue('bench-webhook');
  const files = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), bodyFile: join(dir, 'review.json') };
  writeFileSync(files.caFile, authority.certPem);
  writeFileSync(files.certFile, serving.certPem);
  writeFileSync(files.keyFile, serving.keyPem);
  const body = realisticPodReviewBody();
  writeFileSync(files.bodyFile, body);

  console.log(`webhook bench: node ${process.version}, body ${body.length} B (3-container pod), ${benchAdmission.policyCount} policies, ${connections} connections, ${seconds} s per run after ${warmupSeconds} s warm-up`);
  console.log(`server pinned to core 1 (taskset -c 1), load generator to core 0; load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);

  if (!values['skip-https'] && !values['skip-sequential']) {
    const servers = ['bare', 'ours', ...values.variants.split(',').filter(Boolean)];
    const rounds = Number(values.rounds);
    const runs = new Map<string, { max: LoadResult; half: LoadResult }[]>();
    for (let round = 0; round < rounds; round++) {
      for (const name of servers) {
        const server = await startPinnedServer(name, files.certFile, files.keyFile);
        try {
          const cpuBefore = await server.cpuMicros();
          const max = await load(server.port, files, { connections, seconds: seconds + warmupSeconds, warmupSeconds: 0, rate: 0 });
          // Warm-up included on purpose here: the CPU figure covers exactly the requests counted.
          max.serverMicrosPerRequest = (await server.cpuMicros() - cpuBefore) / max.requests;
          const measured = await load(server.port, files, { connections, seconds, warmupSeconds: 1, rate: 0 });
          measured.serverMicrosPerRequest = max.serverMicrosPerRequest;
          max.rps = measured.rps; max.p50 = measured.p50; max.p99 = measured.p99; max.max = measured.max; max.loaderCpu = measured.loaderCpu;
          const half = await load(server.port, files, { connections, seconds, warmupSeconds: 1, rate: Math.round(max.rps / 2) });
          runs.set(name, [...(runs.get(name) ?? []), { max, half }]);
        } finally {
          await server.stop();
        }
      }
    }
    // Per server, the round with the median saturated throughput.
    const median = (name: string): { max: LoadResult; half: LoadResult } => {
      const sorted = [...runs.get(name)!].sort((a, b) => a.max.rps - b.max.rps);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
    const bare = median('bare');
    console.log(`${`HTTPS, 1 core${rounds > 1 ? `, median of ${rounds}` : ''}`.padEnd(40)} ${'req/s'.padStart(7)} ${'CPU µs/req'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)} ${'errors'.padStart(6)} ${'loader'.padStart(6)}`);
    for (const name of servers) {
      const r = median(name);
      const label = name === 'bare' ? 'bare fastify' : name === 'ours' ? 'concurrency-guard' : name;
      console.log(row(`${label}, saturated`, r.max));
      console.log(row(`${label}, at ${Math.round(r.max.rps / 2)}/s (half)`, r.half));
    }
    if (rounds > 1) {
      for (const name of servers) console.log(`  ${name} saturated req/s per round: ${runs.get(name)!.map((r) => r.max.rps.toFixed(0)).join(', ')}`);
    }
    const ours = median('ours');
    const ratio = ours.max.rps / bare.max.rps;
    const cpuRatio = bare.max.serverMicrosPerRequest! / ours.max.serverMicrosPerRequest!;
    console.log(`\nthroughput ratio ours/bare (measured req/s): ${(ratio * 100).toFixed(1)}% (target ≥ 90%) ${ratio >= 0.9 ? 'MET' : 'MISSED'}`);
    console.log(`throughput ratio ours/bare (server CPU per request, what one dedicated core would do): ${(cpuRatio * 100).toFixed(1)}% ${cpuRatio >= 0.9 ? 'MET' : 'MISSED'}`);
    for (const name of servers.slice(2)) {
      const r = median(name);
      console.log(`ratio ${name}/bare: measured ${((r.max.rps / bare.max.rps) * 100).toFixed(1)}%, by CPU ${((bare.max.serverMicrosPerRequest! / r.max.serverMicrosPerRequest!) * 100).toFixed(1)}%`);
    }
    console.log(`p99 at half of max: ${ours.half.p99.toFixed(2)} ms (target ≤ 5 ms) ${ours.half.p99 <= 5 ? 'MET' : 'MISSED'}; bare ${bare.half.p99.toFixed(2)} ms`);
    console.log(`p50 ratio ours/bare (saturated): ${(ours.max.p50 / bare.max.p50).toFixed(2)}, p99 ratio: ${(ours.max.p99 / bare.max.p99).toFixed(2)}\n`);
  }

  if (!values['skip-https'] && values.paired) {
    const rounds = Number(values.rounds);
    const ratios: number[] = [];
    for (let round = 0; round < Math.max(3, rounds); round++) {
      const servers = { bare: await startPinnedServer('bare', files.certFile, files.keyFile), ours: await startPinnedServer(values['paired-with'], files.certFile, files.keyFile) };
      try {
        const cpuBefore = { bare: await servers.bare.cpuMicros(), ours: await servers.ours.cpuMicros() };
        const [bare, ours] = await Promise.all([
          load(servers.bare.port, files, { connections, seconds, warmupSeconds: 0, rate: 0 }),
          load(servers.ours.port, files, { connections, seconds, warmupSeconds: 0, rate: 0 }),
        ]);
        const bareMicros = (await servers.bare.cpuMicros() - cpuBefore.bare) / bare.requests;
        const oursMicros = (await servers.ours.cpuMicros() - cpuBefore.ours) / ours.requests;
        ratios.push(bareMicros / oursMicros);
        console.log(`paired round ${round + 1}: bare ${bare.rps.toFixed(0)} req/s at ${bareMicros.toFixed(1)} µs CPU/req, ours ${ours.rps.toFixed(0)} req/s at ${oursMicros.toFixed(1)} µs CPU/req → ratio ${((bareMicros / oursMicros) * 100).toFixed(1)}%`);
      } finally {
        await servers.bare.stop();
        await servers.ours.stop();
      }
    }
    ratios.sort((a, b) => a - b);
    const ratio = ratios[Math.floor(ratios.length / 2)]!;
    console.log(`paired (same core, same time), median ratio of server CPU per request bare/${values['paired-with']}: ${(ratio * 100).toFixed(1)}% (target ≥ 90%) ${ratio >= 0.9 ? 'MET' : 'MISSED'}\n`);
  }

  if (!values['skip-apiserver']) {
    await runApiServerBench({ creates: Number(values.creates), authority, serving, log: (line) => console.log(line) });
  }
}

const role = process.argv[2];
if (role === 'load') {
  const [port, caFile, bodyFile, connections, seconds, warmupSeconds, rate] = process.argv.slice(3);
  const result = await runLoad({
    port: Number(port), caFile: caFile!, bodyFile: bodyFile!, connections: Number(connections),
    seconds: Number(seconds), warmupSeconds: Number(warmupSeconds), rate: Number(rate),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else if (role === 'probe') {
  // The decision for the bench's pod, and the admission logic's own cost per review (no HTTP, no parse).
  const parsed = parseAdmissionReview(JSON.parse(realisticPodReviewBody()));
  if (!parsed.ok) throw new Error(parsed.message);
  const admit = benchAdmit();
  console.log(JSON.stringify(admit(parsed.request), null, 1));
  for (let round = 0; round < 3; round++) {
    const n = 20_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) void admit(parsed.request);
    console.log(`admission logic: ${(((performance.now() - started) * 1000) / n).toFixed(1)} µs per review`);
  }
} else if (role === 'serve') {
  await serve(process.argv[3] as 'bare' | 'ours', process.argv[4]!, process.argv[5]!);
} else {
  await main();
}
