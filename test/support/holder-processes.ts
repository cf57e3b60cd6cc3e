// Real processes that hold exactly the fds and threads a test asks for: a small Python program (exact
// counts: no runtime threads or fds of its own once it has closed what it inherited) that takes
// commands on stdin — `fds N` / `threads N` set the counts — and answers `ok` when done. Started inside a
// container's cgroups by KubeletPodCgroups.spawnInContainer, so the scan finds it as the kubelet would.
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { KubeletPodCgroups } from './cgroups.ts';

const HOLDER = String.raw`
import os, resource, sys, threading
args = dict(a.split('=', 1) for a in sys.argv[1:])
os.closerange(3, 1 << 20)
if 'nofile' in args:
    soft = int(args['nofile']); resource.setrlimit(resource.RLIMIT_NOFILE, (soft, max(soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
if 'nproc' in args:
    soft = int(args['nproc']); resource.setrlimit(resource.RLIMIT_NPROC, (soft, soft))
if 'uid' in args:
    uid = int(args['uid']); os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
fds, stops = [], []
def serve(line):
    what, n = line.split(); n = int(n)
    if what == 'fds':
        while len(fds) < n: fds.append(os.open('/dev/null', os.O_RDONLY))
        while len(fds) > n: os.close(fds.pop())
    elif what == 'threads':
        while len(stops) < n:
            stop = threading.Event(); t = threading.Thread(target=stop.wait, daemon=True); t.start(); stops.append(stop)
        while len(stops) > n: stops.pop().set()
        while threading.active_count() - 1 != n: threading.Event().wait(0.005)
print('ready', flush=True)
for line in sys.stdin:
    try:
        serve(line); print('ok', flush=True)
    except Exception as e:
        print('error', type(e).__name__, getattr(e, 'errno', ''), flush=True)
`;

export interface HolderOptions {
  /** Soft RLIMIT_NOFILE (the hard limit is kept, or raised to it). */
  nofile?: number;
  /** RLIMIT_NPROC, soft and hard. */
  nproc?: number;
  /** Real, effective and saved UID to drop to after the limits are set. */
  uid?: number;
}

export class Holder {
  readonly child: ChildProcess;
  readonly pid: number;
  private readonly lines: Interface;
  private readonly pending: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    if (child.pid === undefined) throw new Error('holder did not start');
    this.pid = child.pid;
    if (!child.stdout) throw new Error('holder has no stdout');
    this.lines = createInterface({ input: child.stdout });
    this.lines.on('line', (line) => this.pending.shift()?.resolve(line));
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.splice(0)) waiter.reject(new Error(`holder exited: ${String(code ?? signal)}`));
    });
  }

  static async start(pod: KubeletPodCgroups, containerID: string, options: HolderOptions = {}): Promise<Holder> {
    const args = Object.entries(options).map(([key, value]) => `${key}=${String(value)}`);
    const child = pod.spawnInContainer(containerID, 'python3', ['-c', HOLDER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    const holder = new Holder(child);
    const ready = await holder.next();
    if (ready !== 'ready') throw new Error(`holder said ${ready}`);
    return holder;
  }

  /** Holds exactly `n` extra fds (the process has 3 + n). */
  async setFds(n: number): Promise<void> {
    await this.command(`fds ${n}`);
  }

  /** Runs exactly `n` threads besides the main one. */
  async setThreads(n: number): Promise<string> {
    return this.command(`threads ${n}`);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  private async command(text: string): Promise<string> {
    const answer = this.next();
    this.child.stdin?.write(`${text}\n`);
    const line = await answer;
    if (line !== 'ok') throw new Error(`holder: ${text}: ${line}`);
    return line;
  }

  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('holder did not answer')), 10_000);
      this.pending.push({
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }
}
