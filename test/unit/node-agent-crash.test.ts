// Crash classes from the previous container log: pure rules (CRI parsing, redaction, tail bounds,
// class mapping), then real processes that die of thread exhaustion (Go under a small pids.max, Go's own
// thread cap, Java and Python under a small pids.max) and of fd exhaustion (Go under a small
// RLIMIT_NOFILE). Their stdout/stderr is written as the kubelet would, in CRI format under
// <root>/<ns>_<pod>_<uid>/<container>/0.log, and the agent's reader finds the signature there.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPORT_LIMITS } from '../../src/api/v1alpha1.ts';
import { classifyCrash, crashClass } from '../../src/node-agent/crash.ts';
import {
  findLastSignature,
  parseCriMessages,
  previousContainerLog,
  readLogSignature,
  readPreviousLogSignature,
  redactPaths,
  type PodLogRef,
} from '../../src/node-agent/readers/pod-logs.ts';
import { buildGoFixture, goAvailable } from '../fixtures/go/build.ts';
import { createKubeletPodCgroups, isCgroupV1Available, randomContainerID, type KubeletPodCgroups } from '../support/cgroups.ts';
import { criLines, writeContainerLog as writeInstanceLog } from '../support/pod-logs.ts';
import { requirement } from '../support/require.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-pod-logs-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let podCounter = 0;

/** Writes `<root>/<ns>_<pod>_<uid>/<container>/<instance>.log` of a new pod and returns the pod reference. */
function writeContainerLog(root: string, container: string, instances: Record<number, string>): PodLogRef {
  const pod: PodLogRef = { namespace: 'shop', name: `web-${podCounter++}`, uid: '6f1c2a4e-93b0-4c1e-9d5e-0a8b7c6d5e4f' };
  for (const [n, content] of Object.entries(instances)) writeInstanceLog(root, pod, container, Number(n), content);
  return pod;
}

describe('crash signatures and classes (pure)', () => {
  it('joins partial CRI lines per stream and skips what is not CRI', () => {
    const text = [
      '2026-11-27T20:00:00.1Z stdout P hello ',
      '2026-11-27T20:00:00.2Z stderr F fatal error: all goroutines are asleep - deadlock!',
      '2026-11-27T20:00:00.3Z stdout F world',
      'garbage',
      '2026-11-27T20:00:00.4Z stdout F ',
    ].join('\n');
    expect(parseCriMessages(text)).toEqual(['fatal error: all goroutines are asleep - deadlock!', 'hello world', '']);
  });

  it('redacts paths and URLs but keeps Go package names and ordinary words', () => {
    expect(redactPaths('2026/11/27 20:25:46 giving up: open /var/lib/app/secret-file.db: too many open files')).toBe(
      'giving up: open <path>: too many open files',
    );
    expect(redactPaths("Error: EMFILE: too many open files, open '/srv/uploads/a.png'")).toBe("Error: EMFILE: too many open files, open '<path>'");
    expect(redactPaths("OSError: [Errno 24] Too many open files: 'data/x.csv'")).toBe("OSError: [Errno 24] Too many open files: '<path>'");
    expect(redactPaths('http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 5ms')).toBe(
      'http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 5ms',
    );
    expect(redactPaths('runtime/cgo: pthread_create failed: Resource temporarily unavailable')).toBe(
      'runtime/cgo: pthread_create failed: Resource temporarily unavailable',
    );
    expect(redactPaths('fetch https://user:pw@example.com/x failed: can\'t start new thread')).toBe("fetch <path> failed: can't start new thread");
    expect(redactPaths('unable to create native thread: possibly out of memory or process/resource limits reached')).toBe(
      'unable to create native thread: possibly out of memory or process/resource limits reached',
    );
    expect(redactPaths('cannot open ./conf/app.yaml or ~/x or ../y/z: too many open files')).toBe('cannot open <path> or <path> or <path>: too many open files');
  });

  it('maps each signature to its class, the last one in the log winning', () => {
    const classOf = (line: string): string | undefined => {
      const signature = findLastSignature([line]);
      return signature && crashClass({ signature });
    };
    expect(classOf('accept4: too many open files')).toBe('fd-exhaustion');
    expect(classOf('OSError: [Errno 23] Too many open files in system')).toBe('fd-exhaustion');
    expect(classOf('runtime: failed to create new OS thread (have 9 already; errno=11)')).toBe('thread-exhaustion');
    expect(classOf('runtime/cgo: pthread_create failed: Resource temporarily unavailable')).toBe('thread-exhaustion');
    expect(classOf('runtime: program exceeds 10000-thread limit')).toBe('go-thread-limit');
    expect(classOf('fatal error: all goroutines are asleep - deadlock!')).toBe('deadlock');
    expect(classOf('java.lang.OutOfMemoryError: unable to create new native thread')).toBe('thread-exhaustion');
    expect(classOf('java.lang.OutOfMemoryError: unable to create native thread: possibly out of memory')).toBe('thread-exhaustion');
    expect(classOf("RuntimeError: can't start new thread")).toBe('thread-exhaustion');
    expect(classOf('panic: nil map')).toBeUndefined();
    expect(findLastSignature(['accept4: too many open files', 'x', 'runtime: program exceeds 50-thread limit', 'goroutine 1 [running]:'])).toEqual({
      kind: 'go-thread-limit',
      line: 'runtime: program exceeds 50-thread limit',
    });
  });

  it('trusts the kubelet’s OOMKilled over the log, and says other without a signature', () => {
    const signature = { kind: 'too-many-open-files' as const, line: 'accept4: too many open files' };
    expect(classifyCrash({ container: 'app', exitCode: 137, reason: 'OOMKilled', signature })).toEqual({ container: 'app', exitCode: 137, class: 'oom-killed' });
    expect(classifyCrash({ container: 'app', exitCode: 1, reason: 'Error', signature, time: '2026-11-27T20:00:00Z' })).toEqual({
      container: 'app',
      exitCode: 1,
      class: 'fd-exhaustion',
      signature: 'accept4: too many open files',
      time: '2026-11-27T20:00:00Z',
    });
    expect(classifyCrash({ container: 'app', exitCode: 2 })).toEqual({ container: 'app', exitCode: 2, class: 'other' });
  });

  it('reads the previous instance’s log (restartCount − 1), falling back to the newest older one', () => {
    const root = path.join(tmpRoot, 'layout');
    const pod = writeContainerLog(root, 'app', {
      0: criLines('stderr', 'runtime: program exceeds 10000-thread limit'),
      2: criLines('stderr', "RuntimeError: can't start new thread"),
      3: criLines('stdout', 'running again'),
    });
    const dir = `${root}/shop_${pod.name}_6f1c2a4e-93b0-4c1e-9d5e-0a8b7c6d5e4f/app`;
    expect(previousContainerLog(root, pod, 'app', 3)).toBe(`${dir}/2.log`);
    expect(previousContainerLog(root, pod, 'app', 2)).toBe(`${dir}/0.log`); // 1.log is gone
    expect(previousContainerLog(root, pod, 'app', 0)).toBeUndefined();
    expect(previousContainerLog(root, pod, 'other', 1)).toBeUndefined();
    expect(readPreviousLogSignature(root, pod, 'app', 3)?.kind).toBe('python-thread');
    expect(readPreviousLogSignature(root, pod, 'app', 2)?.kind).toBe('go-thread-limit');
  });

  it('reads only a bounded tail: a signature followed by more than maxBytes of dump is not found', () => {
    const root = path.join(tmpRoot, 'tail');
    const dump = Array.from({ length: 3000 }, (_, i) => `\tgoroutine ${i} [select (no cases)]: main.main.func1() +0x1d fp=0x0 sp=0x0`).join('\n');
    const pod = writeContainerLog(root, 'app', {
      0: criLines('stdout', 'x'.repeat(40_000)) + criLines('stderr', `runtime: program exceeds 10000-thread limit\nfatal error: thread exhaustion\n${dump}`),
    });
    const file = previousContainerLog(root, pod, 'app', 1);
    if (!file) throw new Error('no log');
    expect(fs.statSync(file).size).toBeGreaterThan(256 * 1024);
    expect(readLogSignature(file)).toEqual({ kind: 'go-thread-limit', line: 'runtime: program exceeds 10000-thread limit' });
    expect(readLogSignature(file, { maxBytes: 128 * 1024 })).toBeUndefined();
    // A line longer than the kubelet's 16 KiB is split into P parts and joined again.
    const long = `${'y'.repeat(40_000)} too many open files`;
    const split = writeContainerLog(root, 'app', { 0: criLines('stderr', long) });
    expect(fs.readFileSync(previousContainerLog(root, split, 'app', 1) ?? '', 'utf8').split('\n').filter((l) => l.includes(' P '))).toHaveLength(2);
    expect(readPreviousLogSignature(root, split, 'app', 1)).toEqual({ kind: 'too-many-open-files', line: long.slice(0, REPORT_LIMITS.signature) });
  });
});

// ---- real processes ----

const cgroupsRun = requirement(isCgroupV1Available(), 'root with cgroup v1 (pids, cpu, cpuacct)');
const goRuns = cgroupsRun && requirement(goAvailable(), 'Go (go build of test/fixtures/go)');

function commandAvailable(command: string): boolean {
  return spawnSync(command, ['-version'], { stdio: 'ignore' }).status === 0;
}
const javaRuns = cgroupsRun && requirement(commandAvailable('java') && commandAvailable('javac'), 'java and javac (OpenJDK)');

const pods: KubeletPodCgroups[] = [];
afterEach(() => {
  for (const pod of pods.splice(0)) pod.cleanup();
});

interface Died {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  pod: PodLogRef;
}

/**
 * Runs a command in a fresh pod's container cgroup with the pod's pids.max, records its output as the
 * kubelet does (instance 0), waits for it to die, and starts nothing else: instance 1 would be the restart.
 */
async function runToDeath(command: string, args: string[], podPidsMax?: number): Promise<Died> {
  const containerID = randomContainerID();
  const cgroups = createKubeletPodCgroups({ containers: [{ id: containerID }], ...(podPidsMax === undefined ? {} : { podPidsMax }) });
  pods.push(cgroups);
  const child: ChildProcess = cgroups.spawnInContainer(containerID, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Like the runtime's log writer: a line is written when its newline arrives (or at EOF), whatever
  // the chunks the pipe delivered it in.
  let log = '';
  const pending = { stdout: '', stderr: '' };
  const record = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    const text = pending[stream] + chunk.toString('utf8');
    const end = text.lastIndexOf('\n');
    pending[stream] = text.slice(end + 1);
    if (end >= 0) log += criLines(stream, text.slice(0, end), new Date().toISOString());
  };
  child.stdout?.on('data', record('stdout'));
  child.stderr?.on('data', record('stderr'));
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve([code, sig]);
    });
  });
  for (const stream of ['stdout', 'stderr'] as const) if (pending[stream] !== '') log += criLines(stream, pending[stream]);
  const pod = writeContainerLog(path.join(tmpRoot, 'real'), 'app', { 0: log, 1: criLines('stdout', 'restarted') });
  return { exitCode, signal, pod };
}

function crashOf(died: Died) {
  const signature = readPreviousLogSignature(path.join(tmpRoot, 'real'), died.pod, 'app', 1);
  return classifyCrash({ container: 'app', ...(died.exitCode === null ? {} : { exitCode: died.exitCode }), ...(signature ? { signature } : {}) });
}

describe.skipIf(!goRuns)('Go processes that die of exhaustion, classified from their previous log', () => {
  it('thread exhaustion under a pod pids.max of 20: runtime: failed to create new OS thread', async () => {
    const died = await runToDeath(buildGoFixture('thread-exhauster'), [], 20);
    const crash = crashOf(died);
    expect(crash).toMatchObject({ container: 'app', exitCode: 2, class: 'thread-exhaustion' });
    expect(crash.signature).toMatch(/^runtime: failed to create new OS thread \(have \d+ already; errno=11\)$/);
  });

  it('Go’s own thread cap (debug.SetMaxThreads(50)): program exceeds 50-thread limit', async () => {
    const died = await runToDeath(buildGoFixture('thread-exhauster'), ['-max-threads', '50']);
    expect(crashOf(died)).toEqual({ container: 'app', exitCode: 2, class: 'go-thread-limit', signature: 'runtime: program exceeds 50-thread limit' });
  });

  it('fd exhaustion under RLIMIT_NOFILE 64: too many open files, with the file’s path redacted', async () => {
    const secretDir = fs.mkdtempSync(path.join(tmpRoot, 'customer-4711-'));
    const file = path.join(secretDir, 'ledger.db');
    fs.writeFileSync(file, '');
    const died = await runToDeath(buildGoFixture('fd-exhauster'), ['-nofile', '64', '-path', file]);
    const crash = crashOf(died);
    expect(crash).toEqual({ container: 'app', exitCode: 1, class: 'fd-exhaustion', signature: 'giving up: open <path>: too many open files' });
    expect(JSON.stringify(crash)).not.toContain('customer-4711');
  });
});

describe.skipIf(!javaRuns)('a Java process that dies of thread exhaustion', () => {
  it('under a pod pids.max of 80: OutOfMemoryError: unable to create native thread', async () => {
    const classes = fs.mkdtempSync(path.join(tmpRoot, 'java-'));
    const source = path.join(classes, 'ThreadExhauster.java');
    fs.writeFileSync(
      source,
      `public class ThreadExhauster {
  public static void main(String[] args) {
    for (;;) {
      Thread t = new Thread(() -> { try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) { } });
      t.setDaemon(true);
      t.start();
    }
  }
}
`,
    );
    execFileSync('javac', ['-d', classes, source]);
    // Serial GC and C1 only: fewer JVM threads of its own before ours start.
    const died = await runToDeath('java', ['-Xss256k', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', classes, 'ThreadExhauster'], 80);
    const expectedLine =
      'Exception in thread "main" java.lang.OutOfMemoryError: unable to create native thread: possibly out of memory or process/resource limits reached';
    expect(crashOf(died)).toEqual({ container: 'app', exitCode: 1, class: 'thread-exhaustion', signature: expectedLine.slice(0, REPORT_LIMITS.signature) });
  });
});

describe.skipIf(!cgroupsRun)('a Python process that dies of thread exhaustion', () => {
  it("under a pod pids.max of 10: RuntimeError: can't start new thread", async () => {
    const program = 'import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n';
    const died = await runToDeath('python3', ['-c', program], 10);
    expect(crashOf(died)).toEqual({ container: 'app', exitCode: 1, class: 'thread-exhaustion', signature: "RuntimeError: can't start new thread" });
  });
});
