// Listen-queue pressure of network namespaces, from successive counter samples (readers/netstat.ts):
// pure (no I/O, no clock; times come with the samples).
//
// - Rates: counter deltas per minute between two samples of the same netns, rounded up (a single drop
//   in a 10 s tick is 6/min, never 0). A counter that went backwards means a new netns behind the same
//   key (a pod recreated with the same name is a new UID, but a pid can be reused): no rate that tick.
// - Which queue: ListenOverflows is the accept queue (the application does not accept() fast enough,
//   or its backlog is too small); TCPReqQFullDrop is the SYN queue with syncookies off (handshakes that
//   do not complete — a SYN flood, or a peer whose ACKs are lost); TCPReqQFullDoCookies is the SYN
//   queue full with syncookies on, where connections still succeed (not a drop, reported as a cause).
// - Level: drops per minute (ListenDrops counts every drop at a listener; the larger of it and each
//   drop counter is taken, so a kernel without one of them still rises) against
//   warningDropsPerMinute / criticalDropsPerMinute.
// - Ownership: pods with hostNetwork share the node's netns, whose counters include every host
//   process: they are one node-level entry, never blamed on a pod. Pods that share a netns otherwise
//   (never, with one pause container per pod) would be grouped the same way, by netns identity.
import type { ListenQueueRuntime, ListenerRuntime, PressureLevel, RateThresholds } from '../api/v1alpha1.ts';
import { DEFAULT_PRESSURE, REPORT_LIMITS } from '../api/v1alpha1.ts';
import type { ListenSocket } from './readers/listeners.ts';
import type { ListenCounters } from './readers/netstat.ts';

export interface NetnsSample {
  /** Milliseconds. */
  time: number;
  counters: ListenCounters;
  timeWait?: number;
}

export interface ListenRates {
  overflowsPerMinute: number;
  dropsPerMinute: number;
  reqQFullDropsPerMinute: number;
  reqQFullCookiesPerMinute: number;
  syncookiesSentPerMinute: number;
  /** The counters that moved between the two samples. */
  moved: (keyof ListenCounters)[];
}

export type ListenQueueCause = 'accept-queue-full' | 'syn-queue-full' | 'syn-queue-full-cookies';

const RATE_OF: Readonly<Record<keyof ListenCounters, Exclude<keyof ListenRates, 'moved'>>> = {
  listenOverflows: 'overflowsPerMinute',
  listenDrops: 'dropsPerMinute',
  reqQFullDrop: 'reqQFullDropsPerMinute',
  reqQFullDoCookies: 'reqQFullCookiesPerMinute',
  syncookiesSent: 'syncookiesSentPerMinute',
};

/** Rates between two samples; undefined without a positive interval or when a counter went backwards. */
export function listenRates(previous: NetnsSample, current: NetnsSample): ListenRates | undefined {
  const elapsed = current.time - previous.time;
  if (!(elapsed > 0)) return undefined;
  const rates: ListenRates = {
    overflowsPerMinute: 0,
    dropsPerMinute: 0,
    reqQFullDropsPerMinute: 0,
    reqQFullCookiesPerMinute: 0,
    syncookiesSentPerMinute: 0,
    moved: [],
  };
  for (const key of Object.keys(RATE_OF) as (keyof ListenCounters)[]) {
    const delta = current.counters[key] - previous.counters[key];
    if (delta < 0) return undefined;
    if (delta > 0) rates.moved.push(key);
    rates[RATE_OF[key]] = Math.ceil((delta * 60_000) / elapsed);
  }
  return rates;
}

/** Whether to look at the listeners (the slow read): an overflow or SYN-queue counter moved. */
export function queueCounterMoved(rates: ListenRates | undefined): boolean {
  return rates !== undefined && rates.moved.some((key) => key !== 'syncookiesSent');
}

export function listenQueueCauses(rates: ListenRates): ListenQueueCause[] {
  const causes: ListenQueueCause[] = [];
  if (rates.overflowsPerMinute > 0) causes.push('accept-queue-full');
  if (rates.reqQFullDropsPerMinute > 0) causes.push('syn-queue-full');
  if (rates.reqQFullCookiesPerMinute > 0) causes.push('syn-queue-full-cookies');
  return causes;
}

/** Drops per minute that the thresholds judge. */
export function dropsPerMinute(rates: ListenRates): number {
  return Math.max(rates.dropsPerMinute, rates.overflowsPerMinute, rates.reqQFullDropsPerMinute);
}

export function listenQueueLevel(rates: ListenRates, thresholds: Required<RateThresholds> = DEFAULT_PRESSURE.listenQueue): PressureLevel {
  const drops = dropsPerMinute(rates);
  if (drops >= thresholds.criticalDropsPerMinute) return 'Critical';
  if (drops >= thresholds.warningDropsPerMinute) return 'Warning';
  return 'OK';
}

// Short: condition messages are bounded (REPORT_LIMITS); the counters in the report say the rest.
const CAUSE_TEXT: Readonly<Record<ListenQueueCause, string>> = {
  'accept-queue-full': 'accept queue full',
  'syn-queue-full': 'SYN queue full, syncookies off',
  'syn-queue-full-cookies': 'SYN queue full, syncookies on',
};

export interface ListenQueueDetail {
  /** From the listener read; the fullest are kept, at most REPORT_LIMITS.listeners. */
  listeners?: readonly ListenSocket[];
  somaxconn?: number;
}

export interface ListenQueueVerdict {
  runtime: ListenQueueRuntime;
  causes: ListenQueueCause[];
  /** For the ListenQueuePressure condition, e.g. `24 drops/min: accept queue full on :8080 (6/5)`. */
  message: string;
}

export function listenQueueVerdict(
  rates: ListenRates,
  sample: NetnsSample,
  thresholds: Required<RateThresholds> = DEFAULT_PRESSURE.listenQueue,
  detail: ListenQueueDetail = {},
): ListenQueueVerdict {
  const runtime: ListenQueueRuntime = {
    level: listenQueueLevel(rates, thresholds),
    overflowsPerMinute: rates.overflowsPerMinute,
    dropsPerMinute: dropsPerMinute(rates),
    reqQFullDropsPerMinute: rates.reqQFullDropsPerMinute,
    reqQFullCookiesPerMinute: rates.reqQFullCookiesPerMinute,
    syncookiesSentPerMinute: rates.syncookiesSentPerMinute,
  };
  if (sample.timeWait !== undefined) runtime.timeWait = sample.timeWait;
  if (detail.somaxconn !== undefined) runtime.somaxconn = detail.somaxconn;
  if (detail.listeners && detail.listeners.length > 0) {
    runtime.listeners = [...detail.listeners]
      .sort((a, b) => fullness(b) - fullness(a) || b.acceptQueue - a.acceptQueue || a.port - b.port)
      .slice(0, REPORT_LIMITS.listeners)
      .map((socket) => {
        const entry: ListenerRuntime = { port: socket.port, acceptQueue: socket.acceptQueue };
        if (socket.backlog !== undefined) entry.backlog = socket.backlog;
        return entry;
      });
  }
  const causes = listenQueueCauses(rates);
  const fullest = runtime.listeners?.[0];
  const where =
    fullest && causes.includes('accept-queue-full')
      ? ` on :${fullest.port} (${fullest.acceptQueue}${fullest.backlog === undefined ? '' : `/${fullest.backlog}`})`
      : '';
  const what = causes.map((c) => CAUSE_TEXT[c]).join(' + ');
  let message: string;
  if (causes.length === 0) message = 'no listen-queue drops';
  else if (runtime.dropsPerMinute === 0) message = what;
  else message = `${runtime.dropsPerMinute} drops/min: ${what}${where}`;
  return { runtime, causes, message: message.slice(0, REPORT_LIMITS.message) };
}

function fullness(socket: ListenSocket): number {
  // Without the backlog (not entering the netns), the queue length alone orders them.
  return socket.backlog ? socket.acceptQueue / (socket.backlog + 1) : socket.acceptQueue;
}

// ---- netns ownership ----

export interface PodNetns {
  podUID: string;
  hostNetwork: boolean;
  /** One process of the pod, whose /proc/PID/net is read. */
  pid: number;
  /** `net:[inode]` when it could be read (readers/netstat.ts readNetnsIdentity). */
  netns?: string;
}

export interface NetnsEntry {
  /** History key: `node`, or the netns identity, or `pod:<uid>` when the identity is unknown. */
  key: string;
  /** The pid to read through. */
  pid: number;
  /** The pods whose report may carry this entry: none for the node-level entry. */
  podUIDs: string[];
  nodeLevel: boolean;
}

/**
 * One entry per netns to read. hostNetwork pods, and any pod whose netns turns out to be the node's,
 * collapse into the node-level entry; `nodeNetns` is the agent's own netns identity when the agent runs
 * with hostNetwork (as a DaemonSet reading /proc should), so a pod in it is recognised even when its
 * spec does not say hostNetwork.
 */
export function netnsEntries(pods: readonly PodNetns[], nodeNetns?: string): NetnsEntry[] {
  const entries = new Map<string, NetnsEntry>();
  for (const pod of pods) {
    const nodeLevel = pod.hostNetwork || (nodeNetns !== undefined && pod.netns === nodeNetns);
    const key = nodeLevel ? 'node' : (pod.netns ?? `pod:${pod.podUID}`);
    const entry = entries.get(key);
    if (entry) {
      if (!nodeLevel) entry.podUIDs.push(pod.podUID);
      continue;
    }
    entries.set(key, { key, pid: pod.pid, podUIDs: nodeLevel ? [] : [pod.podUID], nodeLevel });
  }
  return [...entries.values()];
}

/**
 * Samples per netns key. Rates are taken against the oldest sample at most `windowMs` old (default 0:
 * the previous sample), so with a 60 s window DROPS/MIN is the drops of the last minute and a burst
 * holds the level for a minute instead of flickering for one tick; movedSincePrevious() says whether
 * a counter moved since the previous tick, which is what triggers the (slow) listener read.
 */
export class NetnsHistory {
  private readonly samples = new Map<string, NetnsSample[]>();
  private readonly moved = new Map<string, boolean>();
  private readonly windowMs: number;

  constructor(windowMs = 0) {
    this.windowMs = windowMs;
  }

  /** Rates over the window ending at this sample (undefined on the first), and remembers this one. */
  observe(key: string, sample: NetnsSample): ListenRates | undefined {
    let list = this.samples.get(key);
    if (!list) {
      list = [];
      this.samples.set(key, list);
    }
    const previous = list.at(-1);
    if (previous && sample.time <= previous.time) return undefined;
    const sinceLast = previous ? listenRates(previous, sample) : undefined;
    this.moved.set(key, queueCounterMoved(sinceLast));
    if (previous && sinceLast === undefined) list.length = 0; // counters went backwards: a new netns
    // Keep the newest sample at or beyond the window's start, so the window always spans windowMs.
    while (list.length > 1 && (list[1]?.time ?? Infinity) <= sample.time - this.windowMs) list.shift();
    const base = list[0];
    list.push(sample);
    return base ? listenRates(base, sample) : undefined;
  }

  /** Whether an overflow or SYN-queue counter moved between this key's last two samples. */
  movedSincePrevious(key: string): boolean {
    return this.moved.get(key) ?? false;
  }

  keepOnly(keys: Iterable<string>): void {
    const live = new Set(keys);
    for (const key of this.samples.keys()) {
      if (live.has(key)) continue;
      this.samples.delete(key);
      this.moved.delete(key);
    }
  }
}
