// The CLI as a user meets it: the real entry point in a child process, its exit codes, stdout and stderr.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveUpTarget } from '../../src/cli.ts';

const NODE = process.execPath;
const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli.ts');

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], {
      env: { ...process.env, NODE_NAME: undefined, POD_NAMESPACE: undefined, POD_NAME: undefined, LOG_LEVEL: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The JSON log lines on stderr. */
const logLines = (stderr: string): Record<string, unknown>[] =>
  stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

const SUBCOMMANDS = ['manager', 'controller', 'webhook', 'agent', 'check', 'up'];

describe('concurrency-guard --help', () => {
  it('lists the six subcommands and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    const listed = [...run.stdout.matchAll(/^ {2}(\w+) \[options\]/gm)].map((m) => m[1]);
    expect(listed).toEqual(SUBCOMMANDS);
  });

  it.each(SUBCOMMANDS)('works for %s', async (name) => {
    const run = await cli([name, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Usage: concurrency-guard ${name} [options]`);
    expect(run.stdout).toContain('-h, --help');
  });

  it('documents the flags of the agent, with their defaults', async () => {
    const { stdout } = await cli(['agent', '--help']);
    for (const flag of ['--node-name <name>', '--proc-root <dir>', '--cgroup-root <dir>', '--pod-log-root <dir>', '--interval <duration>', '--reports <which>', '--enter-netns', '--metrics-port <port>']) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).toMatch(/choices: "problems", "all", default:\s+"problems"/);
  });
});

describe('usage errors', () => {
  it('exit 2 with the reason on stderr and nothing on stdout', async () => {
    const run = await cli(['manager', '--report-ttl', 'ten minutes']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain("option '--report-ttl <duration>' argument 'ten minutes' is invalid");
  });

  it('exit 2 for an unknown subcommand, a bad choice, a missing mandatory flag and no subcommand at all', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    const choice = await cli(['agent', '--node-name', 'n1', '--reports', 'some']);
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('Allowed choices are problems, all');
    const mandatory = await cli(['agent']);
    expect(mandatory.code).toBe(2);
    expect(mandatory.stderr).toContain("required option '--node-name <name>' not specified");
    expect((await cli([])).code).toBe(2);
    expect((await cli(['--log-level', 'loud', 'manager'])).code).toBe(2);
  });
});

describe('subcommands whose issues come later', () => {
  it.each(['manager', 'controller', 'webhook'])('%s parses its flags, then fails with one JSON error line naming an unreadable kubeconfig, exit 1', async (name) => {
    const run = await cli([name, '--namespace', 'cg-system', '--metrics-port', '0', '--health-port', '0', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const [line, ...rest] = logLines(run.stderr);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: 50, name: `concurrency-guard-${name}`, msg: `${name} failed` });
    expect(JSON.stringify(line?.['err'])).toContain('/nonexistent/kubeconfig');
  });

  it.each(['manager', 'controller', 'webhook'])('%s refuses a bad flag value as a usage error (exit 2)', async (name) => {
    const run = await cli([name, '--metrics-port', '70000']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('must be a port number');
  });

  it('agent needs its node (NODE_NAME from the downward API, or --node-name) and parses Go durations', async () => {
    const missing = await cli(['agent', '--kubeconfig', '/nonexistent/kubeconfig'], { NODE_NAME: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--node-name');
    expect(missing.stderr).toContain('must not be empty');
    const badInterval = await cli(['agent', '--interval', 'ten'], { NODE_NAME: 'node-7' });
    expect(badInterval.code).toBe(2);
    expect(badInterval.stderr).toContain('invalid duration');
    const run = await cli(['agent', '--interval', '1m30s', '--kubeconfig', '/nonexistent/kubeconfig', '--metrics-port', '0', '--health-port', '0'], { NODE_NAME: 'node-7' });
    expect(run.code).toBe(1);
    expect(logLines(run.stderr).at(-1)).toMatchObject({ level: 50, name: 'concurrency-guard-agent', msg: 'agent failed' });
  });

  it('--log-level silences the log', async () => {
    const run = await cli(['--log-level', 'silent', 'controller', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('');
  });
});

describe('up', () => {
  it('targets the embedded control plane unless --kubeconfig or --context is given', () => {
    expect(resolveUpTarget({})).toEqual({ kind: 'embedded' });
    expect(resolveUpTarget({ writeKubeconfig: '/tmp/x' })).toEqual({ kind: 'embedded' });
    expect(resolveUpTarget({ kubeconfig: '/home/me/.kube/prod' })).toEqual({ kind: 'existing', kubeconfig: '/home/me/.kube/prod' });
    expect(resolveUpTarget({ context: 'staging' })).toEqual({ kind: 'existing', context: 'staging' });
  });

  it('ignores $KUBECONFIG: a kubeconfig in the environment never selects an existing cluster', async () => {
    const run = await cli(['up', '--help'], { KUBECONFIG: '/nonexistent/prod-kubeconfig' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('$KUBECONFIG is ignored on purpose');
    const existing = await cli(['up', '--context', 'prod'], { KUBECONFIG: '/nonexistent/prod-kubeconfig' });
    expect(logLines(existing.stderr)[0]).toMatchObject({ command: 'up', target: { kind: 'existing', context: 'prod' } });
  });
});

describe('check', () => {
  it('is the check layer\'s own command (registered through registerCheck)', async () => {
    const run = await cli(['check', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('-f, --filename <file>');
  });
});
