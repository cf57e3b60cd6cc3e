// Privacy: secrets planted where a process keeps them — its environment, its command line, the path
// of a file it holds open, a build flag in its binary, and its log — must not appear in anything the
// part-2 readers and evaluations return. A real Go process in its own netns, beside a listener, with a
// pod log; every result is serialised and searched. Each secret is first shown to be really there
// (/proc/PID/environ, cmdline, fd link, the binary), so the search cannot pass by accident.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyCrash } from '../../src/node-agent/crash.ts';
import { effectiveGomaxprocs, goRuntime } from '../../src/node-agent/gomaxprocs.ts';
import { listenQueueVerdict, listenRates } from '../../src/node-agent/network.ts';
import { readGoEnvironment } from '../../src/node-agent/readers/environ.ts';
import { GoBuildInfoCache } from '../../src/node-agent/readers/go-buildinfo.ts';
import { readListeners, readListenersFromProc } from '../../src/node-agent/readers/listeners.ts';
import { readNetnsCounters, readNetnsIdentity } from '../../src/node-agent/readers/netstat.ts';
import { readPreviousLogSignature } from '../../src/node-agent/readers/pod-logs.ts';
import { ScratchReader } from '../../src/node-agent/readers/proc-file.ts';
import { goAvailable } from '../fixtures/go/build.ts';
import { isNetnsAvailable, TestNetns } from '../support/netns.ts';
import { requirement } from '../support/require.ts';

const runs = requirement(isNetnsAvailable() && goAvailable(), 'root with iproute2 (ip netns) and Go');

const tag = randomBytes(6).toString('hex');
const SECRETS = {
  environment: `env-secret-${tag}`,
  commandLine: `argv-secret-${tag}`,
  openFilePath: `path-secret-${tag}`,
  buildFlag: `ldflags-secret-${tag}`,
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-privacy-'));
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// A Go service whose binary carries a value set with -ldflags -X (recorded as a build setting).
const SERVICE = `package main

import (
	"fmt"
	"os"
	"time"
)

var token = "unset"

func main() {
	fmt.Fprintln(os.Stdout, "up", len(token) > 0)
	time.Sleep(time.Hour)
}
`;

function buildService(): string {
  const dir = path.join(tmp, 'service');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'go.mod'), 'module example.com/privacy\n\ngo 1.21\n');
  fs.writeFileSync(path.join(dir, 'main.go'), SERVICE);
  const binary = path.join(tmp, 'service-bin');
  // Without -trimpath: with it, cmd/go leaves -ldflags out of the build info.
  execFileSync('go', ['build', '-ldflags', `-X main.token=${SECRETS.buildFlag}`, '-o', binary, '.'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
  });
  return binary;
}

function searchFor(secrets: Record<string, string>, results: Record<string, unknown>): string[] {
  const leaks: string[] = [];
  for (const [name, value] of Object.entries(results)) {
    const json = JSON.stringify(value) ?? 'undefined';
    for (const [where, secret] of Object.entries(secrets)) if (json.includes(secret)) leaks.push(`${name} leaks the ${where}`);
  }
  return leaks;
}

describe.skipIf(!runs)('privacy of the part-2 readers', () => {
  it('returns nothing of the environment but GOMAXPROCS/GODEBUG, no command line, no file path, no build flag', async () => {
    const binary = buildService();
    expect(execFileSync('go', ['version', '-m', binary], { encoding: 'utf8' })).toContain(SECRETS.buildFlag);

    const netns = TestNetns.create('privacy');
    cleanups.push(() => netns.destroy());
    const listener = await netns.listen(8443, 4);

    const secretDir = path.join(tmp, SECRETS.openFilePath);
    fs.mkdirSync(secretDir);
    const held = fs.openSync(path.join(secretDir, 'stdout.txt'), 'w');
    const child: ChildProcess = spawn('ip', ['netns', 'exec', netns.name, binary, `--password=${SECRETS.commandLine}`], {
      stdio: ['ignore', held, 'ignore'],
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        API_TOKEN: SECRETS.environment,
        GOMAXPROCS: '1',
        GODEBUG: 'containermaxprocs=1',
        // A name that ends in GOMAXPROCS and a value that looks like an entry: neither is ours.
        NOT_GOMAXPROCS: `GOMAXPROCS=${SECRETS.environment}`,
      },
    });
    fs.closeSync(held);
    cleanups.push(() => child.kill('SIGKILL'));
    const pid = child.pid;
    if (pid === undefined) throw new Error('no pid');
    for (let i = 0; i < 100 && fs.readFileSync(path.join(secretDir, 'stdout.txt'), 'utf8') === ''; i++) await new Promise((r) => setTimeout(r, 20));

    // The secrets are really there for anyone who reads more than the readers do.
    expect(fs.readFileSync(`/proc/${pid}/environ`, 'latin1')).toContain(SECRETS.environment);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')).toContain(SECRETS.commandLine);
    expect(fs.readlinkSync(`/proc/${pid}/fd/1`)).toContain(SECRETS.openFilePath);

    // A pod log whose crash line names the held file and whose other lines carry the other secrets.
    const logRoot = path.join(tmp, 'pods');
    const pod = { namespace: 'shop', name: 'api-0', uid: '0d6f3b9e-5a7c-4e21-8f90-1b2c3d4e5f60' };
    const logDir = path.join(logRoot, `${pod.namespace}_${pod.name}_${pod.uid}`, 'app');
    fs.mkdirSync(logDir, { recursive: true });
    const time = '2026-11-27T20:00:00.000000000Z';
    fs.writeFileSync(
      path.join(logDir, '0.log'),
      [
        `${time} stdout F starting with --password=${SECRETS.commandLine} token ${SECRETS.environment}`,
        `${time} stderr F 2026/11/27 20:00:00 giving up: open ${secretDir}/stdout.txt: too many open files`,
        `${time} stderr F exit status 1`,
        '',
      ].join('\n'),
    );

    const reader = new ScratchReader();
    const counters = readNetnsCounters(reader, '/proc', pid);
    const cache = new GoBuildInfoCache();
    const buildInfo = cache.get('/proc', pid);
    const environment = readGoEnvironment('/proc', pid);
    expect(environment).toEqual({ GOMAXPROCS: '1', GODEBUG: 'containermaxprocs=1' });
    const signature = readPreviousLogSignature(logRoot, pod, 'app', 1);
    expect(signature).toEqual({ kind: 'too-many-open-files', line: 'giving up: open <path>: too many open files' });
    if (!counters || !buildInfo || !environment) throw new Error('unreadable');
    const sample = { time: 0, counters: counters.counters, timeWait: counters.sockets?.timeWait ?? 0 };
    const rates = listenRates(sample, { ...sample, time: 60_000 });
    const fromProc = readListenersFromProc(reader, '/proc', pid);
    const inside = await readListeners(reader, pid, { mayEnterNetns: true });
    expect(inside?.listeners).toEqual([{ family: 4, port: 8443, acceptQueue: 0, backlog: 4 }]);
    const verdict = effectiveGomaxprocs({ buildInfo, environment: { ...environment, source: 'environ' }, affinityCpus: 2, quotaCores: 0.5 });

    const results: Record<string, unknown> = {
      counters,
      netnsIdentity: readNetnsIdentity('/proc', pid),
      fromProc,
      inside,
      buildInfo,
      environment,
      signature,
      gomaxprocs: verdict,
      goRuntime: goRuntime('app', verdict),
      listenQueue: rates && listenQueueVerdict(rates, sample, undefined, inside),
      crash: classifyCrash({ container: 'app', exitCode: 1, ...(signature ? { signature } : {}) }),
    };
    expect(searchFor(SECRETS, results)).toEqual([]);
    // …and none of them says where anything lives on this machine.
    expect(JSON.stringify(results)).not.toContain(tmp);
    listener.kill();
  });
});
