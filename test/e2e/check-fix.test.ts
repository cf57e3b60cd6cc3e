// `check --fix` against the real API server: for every case of the rule table that has a mechanical fix,
// the fixed manifest (1) passes `check` — nothing fixable is left and nothing new appears — and (2) is
// accepted by kube-apiserver in a server-side dry run, as is the original. The policies themselves are
// dry-run against the installed CRD.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCheck } from '../../src/check/run.ts';
import type { CheckCommandOptions } from '../../src/check/command.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { CASES, DEFAULT_POLICY, policyObjects, type PolicyCase } from '../unit/policy-cases.ts';

interface CheckRun {
  code: number;
  stdout: string;
  stderr: string;
}

const workDir = mkdtempSync(join(tmpdir(), 'cg-check-fix-'));

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** The check command in process, exactly as the CLI runs it, with the manifest on stdin. */
async function check(manifest: string, c: PolicyCase, extra: Partial<CheckCommandOptions> = {}): Promise<CheckRun> {
  const policyFile = join(workDir, `${c.name.replace(/[^a-z0-9]+/gi, '-')}.policy.yaml`);
  writeFileSync(policyFile, policyObjects(c.policies ?? [DEFAULT_POLICY]).map((p) => stringify(p)).join('---\n'));
  const stdout = sink();
  const stderr = sink();
  const labels = c.namespaceLabels ? Object.entries(c.namespaceLabels).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
  const code = await runCheck(
    { filename: ['-'], policy: [policyFile], output: 'json', ...(labels ? { namespaceLabels: labels } : {}), ...extra },
    { stdout: stdout.stream, stderr: stderr.stream, stdin: Readable.from([manifest]) },
  );
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

interface JsonReport {
  results: { kind: string; findings: { rule: string; enforcement: string; container?: string; patch?: unknown[] }[] }[];
}

function manifestOf(c: PolicyCase): string {
  const docs: unknown[] = [...(c.limitRanges ?? []), c.object];
  return docs.map((d) => stringify(d)).join('---\n');
}

const identity = (f: { rule: string; container?: string }): string => `${f.rule}|${f.container ?? ''}`;

// Cases `check` can express (no admission context, no version override) whose findings carry a fix.
const candidates = CASES.filter((c) => !c.admission && !c.versions);

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
});

afterAll(async () => {
  await cluster?.stop();
});

describe('check --fix', () => {
  it('accepts every policy of the table as a ConcurrencyPolicy (server-side dry run)', async () => {
    const specs = [DEFAULT_POLICY, ...CASES.flatMap((c) => c.policies ?? [])];
    const yaml = policyObjects(specs).map((p, i) => stringify({ ...p, metadata: { name: `table-policy-${i}` } })).join('---\n');
    const result = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: yaml, allowFailure: true });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('fixes every fixable case so that check passes and the API server accepts it', async () => {
    let fixedCases = 0;
    const failures: string[] = [];
    for (const c of candidates) {
      const manifest = manifestOf(c);
      const before = await check(manifest, c);
      const report = JSON.parse(before.stdout) as JsonReport;
      const findings = report.results.flatMap((r) => r.findings);
      if (!findings.some((f) => f.patch)) continue;
      fixedCases++;

      const fixed = await check(manifest, c, { fix: true });
      const after = JSON.parse(fixed.stderr) as JsonReport;
      const unfixable = new Set(findings.filter((f) => !f.patch).map(identity));
      const left = after.results.flatMap((r) => r.findings).filter((f) => !unfixable.has(identity(f)));
      if (left.length > 0) failures.push(`${c.name}: after --fix still ${left.map((f) => f.rule).join(', ')}`);
      const expectedCode = after.results.some((r) => r.findings.some((f) => f.enforcement === 'Deny')) ? 1 : 0;
      if (fixed.code !== expectedCode) failures.push(`${c.name}: --fix exited ${fixed.code}`);

      if (c.notForApiServer) continue;
      for (const [label, yaml] of [['original', manifest], ['fixed', fixed.stdout]] as const) {
        const result = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: yaml, allowFailure: true });
        if (result.code !== 0) failures.push(`${c.name} (${label}): kubectl apply --dry-run=server: ${result.stderr.trim()}`);
      }
    }
    expect(failures).toEqual([]);
    expect(fixedCases).toBeGreaterThanOrEqual(25);
  });
});
