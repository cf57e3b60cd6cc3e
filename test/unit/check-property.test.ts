// Property: whatever bytes arrive, `check` answers with an exit code of 0, 1 or 2 and never throws —
// arbitrary text, arbitrary YAML values, and manifests with arbitrary values in every field.
import fc from 'fast-check';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCheck } from '../../src/check/run.ts';

function sink(): Writable {
  return new Writable({ write(_chunk, _encoding, done) { done(); } });
}

async function exitCode(text: string, fix: boolean): Promise<number> {
  return runCheck({ filename: ['-'], policy: [], output: 'json', ...(fix ? { fix: true } : {}) }, { stdout: sink(), stderr: sink(), stdin: Readable.from([text]) });
}

const manifest = fc.record({
  apiVersion: fc.constantFrom('v1', 'apps/v1', 'batch/v1'),
  kind: fc.oneof(fc.constantFrom('Pod', 'Deployment', 'CronJob', 'Namespace', 'LimitRange', 'List', 'ConcurrencyPolicy'), fc.string({ maxLength: 5 })),
  metadata: fc.oneof(fc.record({ name: fc.string({ maxLength: 5 }), namespace: fc.string({ maxLength: 5 }) }), fc.anything({ maxDepth: 1 })),
  spec: fc.anything({ maxDepth: 3 }),
  items: fc.anything({ maxDepth: 2 }),
}, { requiredKeys: ['kind'] });

describe('check on arbitrary input', () => {
  it('exits 0, 1 or 2 and never throws', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 200 }), fc.anything({ maxDepth: 3 }).map((v) => stringify(v)), fc.array(manifest, { maxLength: 3 }).map((docs) => docs.map((d) => stringify(d)).join('---\n'))),
        fc.boolean(),
        async (text, fix) => [0, 1, 2].includes(await exitCode(text, fix)),
      ),
      { numRuns: 3_000, seed: 5 },
    );
    expect(await exitCode('kind: [', false)).toBe(2);
  }, 60_000);
});
