// The ulimit model of src/policy/shell.ts against the real shells: each script runs in bash, dash and
// BusyBox ash under prlimit (nofile 1024:524288, or this process's lower hard limit) without CAP_SYS_RESOURCE (setpriv drops it, and drops
// to UID 65534 when run as root), and the limits it leaves and whether any ulimit call failed must
// match what the model predicts for that dialect.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Dialect } from '../../src/policy/shell.ts';
import { findShellInvocation, parseScript, runUlimits } from '../../src/policy/shell.ts';
import { requirement } from '../support/require.ts';

function which(binary: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

const SHELLS: Record<Dialect, string[] | undefined> = {
  bash: which('bash') ? ['bash', '-c'] : undefined,
  dash: which('dash') ? ['dash', '-c'] : undefined,
  ash: which('busybox') ? ['busybox', 'sh', '-c'] : undefined,
};
const tools = Boolean(which('prlimit') && which('setpriv'));
const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
// The starting hard limit: the runtime default 524288, or this process's own hard limit if lower
// (without CAP_SYS_RESOURCE prlimit cannot raise it).
const currentHard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
const HARD = currentHard === 'unlimited' ? 524288 : Math.min(524288, Number(currentHard));

const SCRIPTS = [
  'ulimit -n 65536',
  'ulimit -n 524288',
  'ulimit -n 524289',
  'ulimit -n 1048576',
  'ulimit -Sn 65536',
  'ulimit -Sn 524289',
  'ulimit -Hn 4096',
  'ulimit -Hn 512',
  'ulimit -Hn 600000',
  'ulimit -n 4096 -u 100',
  'ulimit -u 100',
  'ulimit -p 100',
  'ulimit -n unlimited',
  'ulimit -n hard',
  'ulimit -n soft',
  'ulimit -n abc',
  'ulimit -SHn 2048',
  'ulimit -HSn 2048',
  'ulimit -H -S -n 3000',
  'N=3000; ulimit -n $N',
  'ulimit -n ${NOFILE:-5000}',
  'ulimit -n "${UNSET-7000}"',
  '(ulimit -n 100)',
  'ulimit -n 100 | cat',
  'ulimit -Sn 100; ulimit -Sn 200',
  'ulimit -n 600000 || true; ulimit -Sn 8192',
  'ulimit -n 2048; ulimit -n 4096',
  'ulimit -n 4096 2>/dev/null',
  'ulimit -n 600000 >/dev/null',
  'ulimit -n 600000 1>&2',
  'ulimit -n 3000 > /dev/null; ulimit -Sn 2000 </dev/null',
];

interface Observed {
  soft: string;
  hard: string;
  failed: boolean;
}

const PROBE = '; echo "@@ $(ulimit -Sn) $(ulimit -Hn)"';

function runReal(dialect: Dialect, script: string): Observed {
  const shell = SHELLS[dialect] as string[];
  const asRoot = process.getuid?.() === 0;
  const priv = ['setpriv', '--inh-caps=-all', '--bounding-set=-sys_resource', ...(asRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : []), '--'];
  const out = spawnSync('prlimit', [`--nofile=1024:${HARD}`, '--', ...priv, ...shell, script + PROBE], { encoding: 'utf8' });
  const line = out.stdout.split('\n').find((l) => l.startsWith('@@ ')) ?? '@@ ? ?';
  const [, soft = '?', hard = '?'] = line.split(' ');
  return { soft, hard, failed: out.stderr.trim().length > 0 };
}

function runModel(dialect: Dialect, script: string): Observed {
  const outcome = runUlimits(parseScript(script), dialect, {
    initial: { nofile: { soft: 1024, hard: HARD }, nproc: { soft: 4096, hard: 8192 } },
    canRaiseHard: false,
    errexit: false,
    nrOpen,
    env: () => undefined,
  });
  const text = (n: number): string => (n === Number.POSITIVE_INFINITY ? 'unlimited' : String(n));
  // A ulimit that fails inside a subshell or pipeline prints an error too; the model records it as an
  // uncertain event only when it ran in the main shell, so compare those scripts on limits alone.
  return { soft: text(outcome.nofile.soft), hard: text(outcome.nofile.hard), failed: outcome.events.length > 0 };
}

const runnable = requirement(tools && Object.values(SHELLS).every(Boolean), 'bash, dash, busybox, prlimit and setpriv');

describe.runIf(runnable)('ulimit in the real shells', () => {
  it('can drop CAP_SYS_RESOURCE here', () => {
    const probe = runReal('dash', 'ulimit -Hn 524289');
    expect(probe.failed).toBe(true);
  });

  for (const dialect of ['bash', 'dash', 'ash'] as const) {
    it.each(SCRIPTS)(`${dialect}: %s`, (script) => {
      const real = runReal(dialect, script);
      const model = runModel(dialect, script);
      if (script.startsWith('(') || script.includes('| cat')) {
        expect({ soft: model.soft, hard: model.hard }).toEqual({ soft: real.soft, hard: real.hard });
      } else {
        expect(model).toEqual(real);
      }
    });
  }
});

describe('finding the script', () => {
  it.each([
    [['sh', '-c', 'ulimit -n 1'], 'x', 'ulimit -n 1', false],
    [['/bin/bash', '-ec', 'ulimit -n 1'], 'x', 'ulimit -n 1', true],
    [['busybox', 'sh', '-c', 's'], 'x', 's', false],
    [['sh', '-e', '-c', 's'], 'x', 's', true],
    [['sh', '-o', 'pipefail', '-c', 's'], 'x', 's', false],
    [['tini', '--', 'sh', '-c', 's'], 'x', 's', false],
    [['/usr/bin/dumb-init', '--single-child', '--', 'bash', '-ec', 's'], 'x', 's', true],
    [['env', 'bash', '-c', 's'], 'x', 's', false],
  ] as const)('%j', (argv, image, script, errexit) => {
    const found = findShellInvocation(argv, image);
    expect(found?.script).toBe(script);
    expect(found?.errexit).toBe(errexit);
  });

  it.each([[['sh', 'script.sh']], [['python', '-c', 'x']], [['sh']], [['busybox', 'ls', '-c', 'x']]] as const)('%j is not a -c script', (argv) => {
    expect(findShellInvocation(argv, 'x')).toBeUndefined();
  });

  it('picks the dialect from the shell name, then the image', () => {
    expect(findShellInvocation(['sh', '-c', 's'], 'alpine:3.20')?.dialects).toEqual(['ash']);
    expect(findShellInvocation(['sh', '-c', 's'], 'debian:12-slim')?.dialects).toEqual(['dash']);
    expect(findShellInvocation(['sh', '-c', 's'], 'registry.access.redhat.com/ubi9/ubi')?.dialects).toEqual(['bash']);
    expect(findShellInvocation(['bash', '-c', 's'], 'alpine:3.20')?.dialects).toEqual(['bash']);
    expect(findShellInvocation(['sh', '-c', 's'], 'registry.example/app:1')?.dialectKnown).toBe(false);
  });
});

