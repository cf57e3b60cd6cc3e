// The LISTEN sockets of one network namespace and their accept queues — read only after an overflow
// counter moved (readers/netstat.ts), because both ways cost more than a tick should:
//
// 1. Without entering the netns: /proc/PID/net/tcp and tcp6. The kernel walks the node-wide established
//    hash to print them (milliseconds per file, more with many sockets on the node). For a LISTEN row
//    rx_queue is sk_ack_backlog, the current accept-queue length (observed: listen(5) flooded shows
//    00000006 — the queue holds backlog + 1); the backlog itself is not shown.
// 2. Entering the netns (mayEnterNetns: the agent has CAP_SYS_ADMIN, a chart value):
//    `nsenter --net=/proc/PID/ns/net ss -Hltn`, whose Recv-Q is the accept queue and Send-Q the
//    backlog (sk_max_ack_backlog = min(listen() backlog, somaxconn at listen time), via sock_diag), and
//    `nsenter … cat /proc/sys/net/core/somaxconn`: /proc/sys/net resolves against the reader's netns,
//    so the pod's somaxconn can only be read from inside it. Two spawns (~6 ms each), both fixed argv
//    with only the pid in them — no shell.
// Neither way reads anything but states, ports and queue lengths (no peer addresses, no inodes).
import { execFile } from 'node:child_process';
import type { ScratchReader } from './proc-file.ts';

export interface ListenSocket {
  family: 4 | 6;
  port: number;
  /** Connections completed and waiting for accept(). */
  acceptQueue: number;
  /** The listen backlog in effect (min(backlog, somaxconn)); only when read from inside the netns. */
  backlog?: number;
}

export interface NetnsListeners {
  listeners: ListenSocket[];
  /** net.core.somaxconn of the netns; only when read from inside it. */
  somaxconn?: number;
}

const TCP_LISTEN = '0A';

/** LISTEN rows of /proc/PID/net/tcp or tcp6. Fields are whitespace-separated (`sl` widens past 9999). */
export function parseProcNetTcp(text: string, family: 4 | 6): ListenSocket[] {
  const sockets: ListenSocket[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i]?.trim().split(/\s+/);
    if (!fields || fields.length < 5 || fields[3] !== TCP_LISTEN) continue;
    const local = fields[1] ?? '';
    const queues = fields[4] ?? '';
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    const acceptQueue = Number.parseInt(queues.slice(queues.indexOf(':') + 1), 16);
    if (!Number.isFinite(port) || !Number.isFinite(acceptQueue)) continue;
    sockets.push({ family, port, acceptQueue });
  }
  return sockets;
}

/** Without entering the netns; undefined when the process is gone. */
export function readListenersFromProc(reader: ScratchReader, procRoot: string, pid: number): NetnsListeners | undefined {
  const v4 = reader.readText(`${procRoot}/${pid}/net/tcp`);
  if (v4 === undefined) return undefined;
  const listeners = parseProcNetTcp(v4, 4);
  const v6 = reader.readText(`${procRoot}/${pid}/net/tcp6`);
  if (v6 !== undefined) listeners.push(...parseProcNetTcp(v6, 6));
  return { listeners };
}

/** `ss -Hltn` rows: `LISTEN <Recv-Q> <Send-Q> <local addr:port> <peer>`. */
export function parseSsListening(text: string): ListenSocket[] {
  const sockets: ListenSocket[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'LISTEN' || fields.length < 4) continue;
    const local = fields[3] ?? '';
    const port = Number(local.slice(local.lastIndexOf(':') + 1));
    const acceptQueue = Number(fields[1]);
    const backlog = Number(fields[2]);
    if (!Number.isInteger(port) || !Number.isInteger(acceptQueue) || !Number.isInteger(backlog)) continue;
    // `[::]:80` and `*:80` (a v6 socket accepting v4 too) are v6 sockets.
    const family = local.startsWith('[') || local.startsWith('*') ? 6 : 4;
    sockets.push({ family, port, acceptQueue, backlog });
  }
  return sockets;
}

export interface EnterNetnsOptions {
  procRoot?: string;
  nsenter?: string;
  ss?: string;
  timeoutMs?: number;
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (error: Error | null, stdout: string) => {
      if (error) reject(error);
      else resolve(stdout);
    });
  });
}

/** From inside PID's netns: accept queues, backlogs and somaxconn. Rejects when nsenter fails. */
export async function readListenersInNetns(pid: number, options: EnterNetnsOptions = {}): Promise<NetnsListeners> {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`not a pid: ${pid}`);
  const procRoot = options.procRoot ?? '/proc';
  const nsenter = options.nsenter ?? 'nsenter';
  const timeoutMs = options.timeoutMs ?? 5_000;
  const enter = [`--net=${procRoot}/${pid}/ns/net`, '--'];
  const [ss, somaxconn] = await Promise.all([
    run(nsenter, [...enter, options.ss ?? 'ss', '-Hltn'], timeoutMs),
    run(nsenter, [...enter, 'cat', '/proc/sys/net/core/somaxconn'], timeoutMs),
  ]);
  const result: NetnsListeners = { listeners: parseSsListening(ss) };
  const value = Number(somaxconn.trim());
  if (Number.isInteger(value)) result.somaxconn = value;
  return result;
}

/**
 * The listeners of PID's netns, entering it only when allowed; when entering fails (no CAP_SYS_ADMIN
 * after all, nsenter or ss missing), what /proc shows without backlogs. Undefined when the process is gone.
 */
export async function readListeners(
  reader: ScratchReader,
  pid: number,
  options: EnterNetnsOptions & { mayEnterNetns: boolean },
): Promise<NetnsListeners | undefined> {
  const procRoot = options.procRoot ?? '/proc';
  if (options.mayEnterNetns) {
    try {
      return await readListenersInNetns(pid, options);
    } catch {
      // fall through to /proc
    }
  }
  return readListenersFromProc(reader, procRoot, pid);
}
