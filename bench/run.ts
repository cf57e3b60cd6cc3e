// `npm run bench`: every benchmark in turn, each in its own process (they pin cores, start control
// planes and spawn thousands of processes, so they must not overlap). They print figures and ratios;
// none asserts a time. Name some to run only those: `npm run bench -- policy webhook`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BENCHMARKS: Record<string, { file: string; what: string }> = {
  policy: { file: 'policy.ts', what: 'policy engine alone: decisions per CPU-second' },
  webhook: { file: 'webhook.ts', what: 'webhook vs bare fastify over HTTPS; pod creates through the API server' },
  agent: { file: 'agent.ts', what: 'agent scan: 1000 processes / 205k fds vs lsof' },
  'agent-runtime': { file: 'agent-runtime.ts', what: 'whole agent: RSS, steady CPU, report writes per pod per minute' },
  controller: { file: 'controller.ts', what: 'controller: 10k pods and 100 policies' },
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in BENCHMARKS));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const [name, { file, what }] of Object.entries(BENCHMARKS)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`\n=== ${name}: ${what}`);
  const result = spawnSync(process.execPath, [join(import.meta.dirname, file)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.log(`=== ${name} exited ${result.status ?? result.signal}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
