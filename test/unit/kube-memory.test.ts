// src/kube exists partly to avoid @kubernetes/client-node's import cost (its KubeConfig alone pulls in the
// whole generated API). Each figure comes from a fresh Node process that imports one thing and reports
// process.memoryUsage(). Type stripping of our .ts sources costs RSS of its own (the stripper is WASM whose
// memory grows with the source it has seen), which client-node's .js does not pay, so RSS is compared
// with that handicap and heap without it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function memoryAfterImport(specifier: string): { rssMiB: number; heapMiB: number } {
  const script = `${specifier ? `await import(${JSON.stringify(specifier)});` : ''}
await new Promise((r) => setTimeout(r, 300));
const m = process.memoryUsage();
console.log(JSON.stringify({ rssMiB: m.rss / 1048576, heapMiB: m.heapUsed / 1048576 }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { rssMiB: number; heapMiB: number };
}

describe('src/kube import cost', () => {
  it('does not import @kubernetes/client-node statically (only lazily, for credential plugins)', () => {
    const dir = join(root, 'src/kube');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/from '@kubernetes\/client-node/);
    }
  });

  it('costs far less memory than importing client-node', () => {
    const bare = memoryAfterImport('');
    const ours = memoryAfterImport(join(root, 'src/kube/index.ts'));
    const theirs = memoryAfterImport('@kubernetes/client-node');
    console.log(`[kube-memory] RSS MiB: bare ${bare.rssMiB.toFixed(1)}, src/kube ${ours.rssMiB.toFixed(1)} (type stripping included), client-node ${theirs.rssMiB.toFixed(1)}; heap MiB: bare ${bare.heapMiB.toFixed(1)}, src/kube ${ours.heapMiB.toFixed(1)}, client-node ${theirs.heapMiB.toFixed(1)}`);
    expect(ours.rssMiB).toBeLessThan(theirs.rssMiB - 15);
    expect(ours.heapMiB - bare.heapMiB).toBeLessThan((theirs.heapMiB - bare.heapMiB) / 2);
  });
});
