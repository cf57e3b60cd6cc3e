// The agent's side of bench/agent.ts, in a process of its own that imports nothing but src/node-agent,
// so its RSS is what the agent's collection costs. Reads pod targets from a JSON file, prints one JSON
// line of figures. Not a benchmark to run alone.
import fs from 'node:fs';
import type { PodTarget } from '../src/node-agent/index.ts';
import { Scanner } from '../src/node-agent/index.ts';

export interface Timings {
  cpuMs: number[];
  wallMs: number[];
}

export interface ScanReport {
  processes: number;
  fds: number;
  threads: number;
  warm: Timings;
  readdir: Timings;
  cold: Timings;
  limitsReadsPerWarmTick: number;
  rssMiB: number;
  rssAtStartMiB: number;
  heapUsedMiB: number;
}

function measure(ticks: number, run: () => void): Timings {
  const cpuMs: number[] = [];
  const wallMs: number[] = [];
  for (let i = 0; i < ticks; i++) {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    run();
    wallMs.push(Number(process.hrtime.bigint() - start) / 1e6);
    const used = process.cpuUsage(cpu);
    cpuMs.push((used.user + used.system) / 1000);
  }
  return { cpuMs, wallMs };
}

const rssAtStartMiB = process.memoryUsage().rss / 2 ** 20;
const [targetsFile, ticksText] = process.argv.slice(2);
if (!targetsFile) throw new Error('usage: agent-scan-worker <targets.json> [ticks]');
const ticks = Number(ticksText ?? 30);
const pods = JSON.parse(fs.readFileSync(targetsFile, 'utf8')) as PodTarget[];
const scanner = new Scanner();
const first = scanner.tick(pods); // confirms identities, reads comm and limits once
const reads = scanner.limits.reads;
const warm = measure(ticks, () => scanner.tick(pods));
const limitsReadsPerWarmTick = (scanner.limits.reads - reads) / ticks;
const rssMiB = process.memoryUsage().rss / 2 ** 20;
const heapUsedMiB = process.memoryUsage().heapUsed / 2 ** 20;
scanner.close();
const readdirScanner = new Scanner({ fdCountMethod: 'readdir' });
readdirScanner.tick(pods);
const readdir = measure(Math.min(ticks, 5), () => readdirScanner.tick(pods));
readdirScanner.close();
const cold = measure(Math.min(ticks, 5), () => {
  const fresh = new Scanner();
  fresh.tick(pods);
  fresh.close();
});
const all = first.pods.flatMap((p) => p.processes);
const report: ScanReport = {
  processes: all.length,
  fds: all.reduce((sum, p) => sum + p.fds, 0),
  threads: all.reduce((sum, p) => sum + p.threads, 0),
  warm,
  readdir,
  cold,
  limitsReadsPerWarmTick,
  rssMiB,
  rssAtStartMiB,
  heapUsedMiB,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
