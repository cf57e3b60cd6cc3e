// `concurrency-guard check`: exit codes (0 clean or warnings only, 1 deny, 2 bad input), the use of
// Namespace and LimitRange documents from the input, --namespace-labels, -o json, `kind: List`, and
// --fix keeping comments and passing check afterwards. One test runs the real CLI entry point.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCheck } from '../../src/check/run.ts';
import type { CheckCommandOptions } from '../../src/check/command.ts';

const dir = mkdtempSync(join(tmpdir(), 'cg-check-'));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function check(options: Partial<CheckCommandOptions>, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk: Buffer, _e, done) { append(chunk.toString()); done(); } });
  const code = await runCheck(
    { filename: [], policy: [], output: 'text', ...options },
    { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), stdin: Readable.from([stdin]) },
  );
  return { code, stdout, stderr };
}

const POLICY = file('policy.yaml', `apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: prod}
spec:
  enforcement: Deny
  match:
    namespaceSelector: {matchLabels: {tier: prod}}
  gomaxprocs: {maxOverCPULimit: 0}
  sysctls: {allowedUnsafe: [net.core.somaxconn], minimums: {net.core.somaxconn: 4096}}
`);

const pod = (name: string, namespace: string, gomaxprocs: string, cpu?: string): string => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  containers:
    - name: app   # the service
      image: registry.example/app:1
      env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]  # keep this comment
${cpu ? `      resources: {limits: {cpu: "${cpu}"}}\n` : ''}`;

const PROD_NS = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tier: prod}}\n';
const DEV_NS = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: lab, labels: {tier: dev}}\n';

describe('check exit codes', () => {
  it('exits 0 when clean', async () => {
    const result = await check({ filename: [file('clean.yaml', `${PROD_NS}---\n${pod('a', 'shop', '2', '2')}`)], policy: [POLICY] });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('0 deny, 0 warn, 0 audit');
  });

  it('exits 1 on a Deny finding, naming rule, object and fix', async () => {
    const result = await check({ filename: [file('deny.yaml', `${PROD_NS}---\n${pod('a', 'shop', '8', '2')}`)], policy: [POLICY] });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^DENY +\S+#1 Pod shop\/a \[app\]: gomaxprocs\/above-cpu-limit: /m);
    expect(result.stdout).toContain('fix: Set GOMAXPROCS from resourceFieldRef limits.cpu');
  });

  it('exits 0 with warnings only', async () => {
    const warnPolicy = file('warn.yaml', 'apiVersion: concurrencyguard.io/v1alpha1\nkind: ConcurrencyPolicy\nmetadata: {name: w}\nspec: {enforcement: Warn, gomaxprocs: {}}\n');
    const result = await check({ filename: [file('w.yaml', pod('a', 'default', '8', '2'))], policy: [warnPolicy] });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^WARN /m);
  });

  it('uses Namespace documents from the input: a dev namespace is not matched', async () => {
    const result = await check({ filename: [file('dev.yaml', `${DEV_NS}---\n${pod('a', 'lab', '8', '2')}`)], policy: [POLICY] });
    expect(result.code).toBe(0);
  });

  it('uses --namespace-labels for namespaces without a document', async () => {
    const input = file('nolabels.yaml', pod('a', 'elsewhere', '8', '2'));
    expect((await check({ filename: [input], policy: [POLICY] })).code).toBe(0);
    expect((await check({ filename: [input], policy: [POLICY], namespaceLabels: 'tier=prod,team=a' })).code).toBe(1);
  });

  it('uses LimitRange documents from the input', async () => {
    const limitRange = 'apiVersion: v1\nkind: LimitRange\nmetadata: {name: d, namespace: shop}\nspec:\n  limits: [{type: Container, default: {cpu: "2"}}]\n';
    const result = await check({ filename: [file('lr.yaml', `${PROD_NS}---\n${limitRange}---\n${pod('a', 'shop', '8')}`)], policy: [POLICY] });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('gomaxprocs/above-cpu-limit');
  });

  it('reads policies from the input and from stdin', async () => {
    const result = await check({ filename: ['-'] }, `${PROD_NS}---\n${pod('a', 'shop', '8', '2')}---\n${'apiVersion: concurrencyguard.io/v1alpha1\nkind: ConcurrencyPolicy\nmetadata: {name: inline}\nspec: {enforcement: Deny, gomaxprocs: {}}\n'}`);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('built-in default');
  });

  it('falls back to the built-in policy and says so', async () => {
    const result = await check({ filename: [file('builtin.yaml', pod('a', 'default', '8', '2'))] });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('built-in default');
  });

  it('reads the items of a List', async () => {
    const list = `apiVersion: v1\nkind: List\nitems:\n${pod('a', 'default', '8', '2').split('\n').map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`)).join('\n')}\n`;
    const result = await check({ filename: [file('list.yaml', list)], output: 'json' });
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { results: { kind: string; findings: { rule: string }[] }[] };
    expect(report.results[0]?.findings.map((f) => f.rule)).toEqual(['gomaxprocs/above-cpu-limit']);
  });

  it.each([
    ['invalid YAML', 'a: [1, 2\n'],
    ['a document without kind', 'apiVersion: v1\nmetadata: {name: x}\n'],
    ['a scalar document', '42\n'],
  ])('exits 2 on %s', async (_what, text) => {
    const result = await check({ filename: [file(`bad-${_what.length}.yaml`, text)] });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^check: /);
  });

  it('exits 2 on a missing file, bad labels and a bad output format', async () => {
    expect((await check({ filename: [join(dir, 'missing.yaml')] })).code).toBe(2);
    expect((await check({ filename: [POLICY], namespaceLabels: 'tier' })).code).toBe(2);
    expect((await check({ filename: [POLICY], output: 'xml' })).code).toBe(2);
  });
});

describe('check -o json', () => {
  it('reports findings with rule, enforcement, path, values, fix and patch', async () => {
    const result = await check({ filename: [file('json.yaml', `${PROD_NS}---\n${pod('a', 'shop', '8', '2')}`)], policy: [POLICY], output: 'json' });
    const report = JSON.parse(result.stdout) as { summary: Record<string, number>; results: { findings: Record<string, unknown>[] }[] };
    expect(report.summary).toEqual({ objects: 1, deny: 1, warn: 0, audit: 0 });
    const finding = report.results[0]?.findings[0];
    expect(finding).toMatchObject({ rule: 'gomaxprocs/above-cpu-limit', enforcement: 'Deny', container: 'app', path: 'spec.containers[0].env[0]', values: { GOMAXPROCS: 8, allowed: 2 }, policies: ['prod'] });
    expect(finding?.patch).toEqual([
      { op: 'remove', path: '/spec/containers/0/env/0/value' },
      { op: 'add', path: '/spec/containers/0/env/0/valueFrom', value: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
    ]);
  });
});

describe('check --fix', () => {
  it('writes every document with the fixes applied, keeps comments, and the result passes check', async () => {
    const sysctlPod = `apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: shop}\nspec:\n  securityContext:\n    sysctls: [{name: net.core.somaxconn, value: "128"}]\n  containers: [{name: app, image: x, env: [{name: GOMAXPROCS, value: "2"}], resources: {limits: {cpu: "2"}}}]\n`;
    const input = file('fix.yaml', `# the shop\n${PROD_NS}---\n${pod('a', 'shop', '8', '2')}---\n${sysctlPod}`);
    const fixed = await check({ filename: [input], policy: [POLICY], fix: true });
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain('# the shop');
    expect(fixed.stdout).toContain('# keep this comment');
    expect(fixed.stdout).toContain('kind: Namespace');
    expect(fixed.stdout).toMatch(/value: "4096"/);
    expect(fixed.stdout).toMatch(/resourceFieldRef/);
    const again = await check({ filename: [file('fixed.yaml', fixed.stdout)], policy: [POLICY] });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('2 object(s) checked: 0 deny, 0 warn, 0 audit');
  });

  it('exits 1 when a Deny finding without a mechanical fix remains', async () => {
    const forbidden = `apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: shop}\nspec:\n  securityContext: {sysctls: [{name: vm.swappiness, value: "1"}]}\n  containers: [{name: app, image: x, env: [{name: GOMAXPROCS, value: "9"}], resources: {limits: {cpu: "2"}}}]\n`;
    const fixed = await check({ filename: [file('forbidden.yaml', `${PROD_NS}---\n${forbidden}`)], policy: [POLICY], fix: true });
    expect(fixed.code).toBe(1);
    expect(fixed.stderr).toContain('sysctls/not-namespaced');
    expect(fixed.stderr).not.toContain('gomaxprocs/above-cpu-limit');
  });
});

describe('the CLI entry point', () => {
  it('runs `concurrency-guard check` through commander with the documented exit code', () => {
    const input = file('cli.yaml', `${PROD_NS}---\n${pod('a', 'shop', '8', '2')}`);
    const node = join(repoRoot, 'node_modules/.bin/node');
    const result = spawnSync(node, ['src/cli.ts', 'check', '-f', input, '--policy', POLICY, '-o', 'json'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(1);
    expect((JSON.parse(result.stdout) as { summary: { deny: number } }).summary.deny).toBe(1);
  });
});
