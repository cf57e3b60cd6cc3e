// Plays a pod's network namespace for tests and the demo: a named netns (`ip netns add`) with loopback
// up, its own sysctls and nftables rules, a TCP listener inside it with a small backlog that never
// calls accept(), and a client that floods it from inside the same netns — so every packet stays on
// that namespace's loopback. destroy() kills the processes started here and deletes the netns (its
// nftables tables go with it); anything a failed test left behind is destroyed at process exit.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

export function isNetnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function isNftAvailable(): boolean {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// The listener: binds, listens with the given backlog, says `listening`, and never accepts.
export const LISTENER_SCRIPT = String.raw`
import socket, sys, time
family = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::1' if family == socket.AF_INET6 else '127.0.0.1', int(sys.argv[2])))
s.listen(int(sys.argv[3]))
print('listening', flush=True)
while True: time.sleep(3600)
`;

// The flood: opens N non-blocking connections at once, then gives up on those still unanswered after
// 200 ms (closing a connection in SYN_SENT sends nothing, and stops the SYN retransmission that would
// count the same drop again a second later), says `sent`, and holds the rest until killed (closing them
// would send FIN/ACKs, which complete handshakes the test wants left half-open).
export const FLOOD_SCRIPT = String.raw`
import select, socket, sys, time
family = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET
host = '::1' if family == socket.AF_INET6 else '127.0.0.1'
held = []
for _ in range(int(sys.argv[3])):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.setblocking(False)
    try: c.connect((host, int(sys.argv[2])))
    except BlockingIOError: pass
    held.append(c)
time.sleep(0.2)
_, answered, _ = select.select([], held, [], 0)
for c in held:
    if c not in answered: c.close()
held = answered
print('sent', flush=True)
while True: time.sleep(3600)
`;

export interface TestProcess {
  child: ChildProcess;
  pid: number;
  kill(): void;
}

const live = new Set<TestNetns>();
process.on('exit', () => {
  for (const netns of live) netns.destroy();
});

export function waitForLine(child: ChildProcess, expected: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) {
      reject(new Error('no stdout'));
      return;
    }
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`no "${expected}" within ${timeoutMs} ms`)), timeoutMs);
    lines.on('line', (line) => {
      if (line !== expected) return;
      clearTimeout(timer);
      resolve();
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${String(code ?? signal)}) before "${expected}"`));
    });
  });
}

/**
 * The argv that runs the never-accepting listener inside this netns, for a caller that starts it its
 * own way (e.g. inside a pod's cgroups: KubeletPod.spawn); it prints `listening` once it listens.
 */
export function listenerArgv(netns: TestNetns, port: number, backlog: number, family: 4 | 6 = 4): string[] {
  return ['ip', 'netns', 'exec', netns.name, 'python3', '-c', LISTENER_SCRIPT, String(family), String(port), String(backlog)];
}

export class TestNetns {
  readonly name: string;
  private readonly processes = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** A new netns `cg-<label>-<random>` with loopback up. */
  static create(label = 'test'): TestNetns {
    const netns = new TestNetns(`cg-${label}-${randomBytes(4).toString('hex')}`);
    execFileSync('ip', ['netns', 'add', netns.name]);
    live.add(netns);
    try {
      execFileSync('ip', ['-n', netns.name, 'link', 'set', 'lo', 'up']);
    } catch (error) {
      netns.destroy();
      throw error;
    }
    return netns;
  }

  /** Runs a command inside the netns and returns its stdout. */
  exec(command: string, args: readonly string[] = [], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, command, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  }

  /** Sets a net.* sysctl of this netns (its values are its own, not the host's). */
  sysctl(name: string, value: string | number): void {
    this.exec('sysctl', ['-qw', `${name}=${value}`]);
  }

  readSysctl(name: string): string {
    return this.exec('sysctl', ['-n', name]).trim();
  }

  /** Loads an nftables ruleset into this netns only. */
  nft(ruleset: string): void {
    this.exec('nft', ['-f', '-'], ruleset);
  }

  /**
   * Drops every packet with the ACK flag sent to `port`: the client's final handshake ACK never
   * arrives, so connections stay in the listener's SYN queue (SYN_RECV) and never reach the accept queue.
   */
  dropAcksTo(port: number): void {
    this.nft(`table inet cg_drop_acks {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport ${port} tcp flags & ack == ack drop
  }
}
`);
  }

  /** Starts a process inside the netns (ip netns exec execs it, so the pid is the process's own). */
  spawn(command: string, args: readonly string[]): TestProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.pid === undefined) throw new Error(`${command} did not start`);
    this.processes.add(child);
    child.on('exit', () => this.processes.delete(child));
    const pid = child.pid;
    return { child, pid, kill: () => child.kill('SIGKILL') };
  }

  /** A listener on 127.0.0.1:port (or [::1]:port) with `backlog` that never accepts. */
  async listen(port: number, backlog: number, family: 4 | 6 = 4): Promise<TestProcess> {
    const listener = this.spawn('python3', ['-c', LISTENER_SCRIPT, String(family), String(port), String(backlog)]);
    await waitForLine(listener.child, 'listening');
    return listener;
  }

  /** Opens `connections` connections to port at once from inside the netns; holds the answered ones. */
  async flood(port: number, connections: number, family: 4 | 6 = 4): Promise<TestProcess> {
    const flood = this.spawn('python3', ['-c', FLOOD_SCRIPT, String(family), String(port), String(connections)]);
    await waitForLine(flood.child, 'sent');
    return flood;
  }

  /** Kills every process started here and deletes the netns. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const child of this.processes) child.kill('SIGKILL');
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
