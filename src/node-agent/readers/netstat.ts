// Listen-queue counters and TIME_WAIT of one network namespace, read through one of its processes:
// /proc/PID/net/* shows the netns of PID, is world-readable and costs ~0.2 ms, so this is the per-tick
// read (one PID per pod; every container of a pod shares the pause container's netns).
//
// /proc/PID/net/netstat is pairs of lines per prefix — names, then values (`TcpExt: SyncookiesSent …` /
// `TcpExt: 0 …`); columns move between kernels, so names are zipped with values, never positions.
// The counters are cumulative since the netns was created and count IPv4 and IPv6 together:
//   ListenOverflows       accept queue full (SYN dropped, or the final ACK dropped)
//   ListenDrops           any drop at a listener (a superset: overflows, SYN-queue drops, ENOMEM)
//   TCPReqQFullDrop       SYN queue full and net.ipv4.tcp_syncookies=0: the SYN is dropped
//   TCPReqQFullDoCookies  SYN queue full and syncookies on: answered with a cookie instead
//   SyncookiesSent        cookie SYN-ACKs sent
// /proc/PID/net/sockstat: `sockets: used N` and `TCP: inuse N orphan N tw N alloc N mem N`; `tw`
// (TIME_WAIT) and `inuse` are per netns, orphan/alloc/mem are global and so not kept.
import fs from 'node:fs';
import type { ScratchReader } from './proc-file.ts';
import { isGone } from './proc-file.ts';

export interface ListenCounters {
  listenOverflows: number;
  listenDrops: number;
  reqQFullDrop: number;
  reqQFullDoCookies: number;
  syncookiesSent: number;
}

export const LISTEN_COUNTER_NAMES: Readonly<Record<keyof ListenCounters, string>> = {
  listenOverflows: 'ListenOverflows',
  listenDrops: 'ListenDrops',
  reqQFullDrop: 'TCPReqQFullDrop',
  reqQFullDoCookies: 'TCPReqQFullDoCookies',
  syncookiesSent: 'SyncookiesSent',
};

export interface SocketCounts {
  /** `sockets: used` — every socket of the netns. */
  socketsUsed: number;
  /** IPv4 TCP sockets in use (IPv6 ones are in sockstat6). */
  tcpInUse: number;
  /** TIME_WAIT sockets of the netns (v4 and v6 share the death row). */
  timeWait: number;
}

export interface NetnsCounters {
  counters: ListenCounters;
  sockets: SocketCounts | undefined;
}

/** The TcpExt counters we watch, or undefined when the text has no TcpExt pair (not a netstat file). */
export function parseNetstat(text: string): ListenCounters | undefined {
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = lines[i];
    const values = lines[i + 1];
    if (!names?.startsWith('TcpExt:') || !values?.startsWith('TcpExt:')) continue;
    const nameList = names.split(/\s+/);
    const valueList = values.split(/\s+/);
    const byName = new Map<string, number>();
    for (let j = 1; j < nameList.length; j++) {
      const name = nameList[j];
      const value = valueList[j];
      if (name && value !== undefined) byName.set(name, Number(value));
    }
    const counters = {} as ListenCounters;
    for (const [key, name] of Object.entries(LISTEN_COUNTER_NAMES) as [keyof ListenCounters, string][]) {
      // A counter this kernel does not have never moves: 0.
      const value = byName.get(name) ?? 0;
      counters[key] = Number.isFinite(value) ? value : 0;
    }
    return counters;
  }
  return undefined;
}

export function parseSockstat(text: string): SocketCounts | undefined {
  const used = /^sockets: used (\d+)/m.exec(text);
  const tcp = /^TCP: inuse (\d+) orphan \d+ tw (\d+)/m.exec(text);
  if (!used?.[1] || !tcp?.[1] || !tcp[2]) return undefined;
  return { socketsUsed: Number(used[1]), tcpInUse: Number(tcp[1]), timeWait: Number(tcp[2]) };
}

/** The counters of PID's netns, or undefined when the process is gone. */
export function readNetnsCounters(reader: ScratchReader, procRoot: string, pid: number): NetnsCounters | undefined {
  const netstat = reader.readText(`${procRoot}/${pid}/net/netstat`);
  if (netstat === undefined) return undefined;
  const counters = parseNetstat(netstat);
  if (!counters) return undefined;
  const sockstat = reader.readText(`${procRoot}/${pid}/net/sockstat`);
  return { counters, sockets: sockstat === undefined ? undefined : parseSockstat(sockstat) };
}

/**
 * The netns's identity, `net:[inode]`, to tell pods sharing the node's netns (hostNetwork) or one
 * another's apart. Needs ptrace read of PID (CAP_SYS_PTRACE for other users' processes); undefined when
 * the process is gone or that is not allowed — the caller then keys by pod.
 */
export function readNetnsIdentity(procRoot: string, pid: number): string | undefined {
  try {
    return fs.readlinkSync(`${procRoot}/${pid}/ns/net`);
  } catch (error) {
    if (isGone(error) || (error as NodeJS.ErrnoException).code === 'EACCES' || (error as NodeJS.ErrnoException).code === 'EPERM') {
      return undefined;
    }
    throw error;
  }
}
