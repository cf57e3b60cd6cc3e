// Listen-queue counters, listeners and their classification against real sockets: each "pod" is a
// network namespace of its own (test/support/netns.ts) holding a listener that never accepts, flooded
// from inside the same netns, so all traffic stays on that namespace's loopback. Needs root, iproute2
// and nftables; with REQUIRE_E2E=1 a missing one fails instead of skipping.
import { afterEach, describe, expect, it } from 'vitest';
import { REPORT_LIMITS } from '../../src/api/v1alpha1.ts';
import {
  listenQueueVerdict,
  listenRates,
  netnsEntries,
  NetnsHistory,
  queueCounterMoved,
  type NetnsSample,
} from '../../src/node-agent/network.ts';
import { parseProcNetTcp, parseSsListening, readListeners, readListenersFromProc } from '../../src/node-agent/readers/listeners.ts';
import { parseNetstat, parseSockstat, readNetnsCounters, readNetnsIdentity, type ListenCounters } from '../../src/node-agent/readers/netstat.ts';
import { ScratchReader } from '../../src/node-agent/readers/proc-file.ts';
import { isNetnsAvailable, isNftAvailable, TestNetns } from '../support/netns.ts';
import { requirement } from '../support/require.ts';

const runs = requirement(isNetnsAvailable() && isNftAvailable(), 'root with iproute2 (ip netns) and nftables (hack/install-system-deps.sh)');

const namespaces: TestNetns[] = [];
afterEach(() => {
  for (const netns of namespaces.splice(0)) netns.destroy();
});

function makeNetns(label: string): TestNetns {
  const netns = TestNetns.create(label);
  namespaces.push(netns);
  return netns;
}

const reader = new ScratchReader();

function sample(pid: number, time: number): NetnsSample {
  const read = readNetnsCounters(reader, '/proc', pid);
  if (!read) throw new Error(`pid ${pid} is gone`);
  return { time, counters: read.counters, ...(read.sockets ? { timeWait: read.sockets.timeWait } : {}) };
}

function delta(before: NetnsSample, after: NetnsSample): ListenCounters {
  const out = {} as ListenCounters;
  for (const key of Object.keys(after.counters) as (keyof ListenCounters)[]) out[key] = after.counters[key] - before.counters[key];
  return out;
}

// 30 connections at once to listen(5): the accept queue holds backlog + 1 = 6 completed connections;
// the other 24 SYNs find it full and are dropped, each counted once: the flood gives up on them before
// the client would retransmit its SYN (1 s later) and count them again.
const CONNECTIONS = 30;
/** Past the first SYN (and SYN-ACK) retransmission time: nothing more may be counted by then. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1_500));
const BACKLOG = 5;
const QUEUED = BACKLOG + 1;
const DROPPED_FIRST_ROUND = CONNECTIONS - QUEUED;

describe.skipIf(!runs)('listen queues in real network namespaces', () => {
  it('counts accept-queue overflows in the flooded netns only, with the port and the queue length', async () => {
    const flooded = makeNetns('flooded');
    const neighbour = makeNetns('neighbour');
    // Each netns has its own somaxconn (a fresh netns starts at 4096, not the host's value); a
    // listener asking for more than it gets somaxconn as its backlog.
    flooded.sysctl('net.core.somaxconn', 8);
    const listener = await flooded.listen(8080, BACKLOG);
    const bigBacklog = await flooded.listen(9090, 64);
    const quiet = await neighbour.listen(8080, BACKLOG, 6);
    expect(readNetnsIdentity('/proc', listener.pid)).not.toBe(readNetnsIdentity('/proc', quiet.pid));

    const history = new NetnsHistory();
    const before = { flooded: sample(listener.pid, 0), neighbour: sample(quiet.pid, 0) };
    history.observe('flooded', before.flooded);
    history.observe('neighbour', before.neighbour);
    await flooded.flood(8080, CONNECTIONS);
    await settle();
    // One minute apart on paper, so rates per minute equal the deltas.
    const after = { flooded: sample(listener.pid, 60_000), neighbour: sample(quiet.pid, 60_000) };

    expect(delta(before.flooded, after.flooded)).toEqual({
      listenOverflows: DROPPED_FIRST_ROUND,
      listenDrops: DROPPED_FIRST_ROUND,
      reqQFullDrop: 0,
      reqQFullDoCookies: 0,
      syncookiesSent: 0,
    });
    expect(delta(before.neighbour, after.neighbour)).toEqual({
      listenOverflows: 0,
      listenDrops: 0,
      reqQFullDrop: 0,
      reqQFullDoCookies: 0,
      syncookiesSent: 0,
    });

    const floodedRates = history.observe('flooded', after.flooded);
    const neighbourRates = history.observe('neighbour', after.neighbour);
    expect(queueCounterMoved(floodedRates)).toBe(true);
    expect(queueCounterMoved(neighbourRates)).toBe(false);
    expect(floodedRates?.moved).toEqual(['listenOverflows', 'listenDrops']);
    expect(neighbourRates?.moved).toEqual([]);

    // Not entering the netns: /proc/PID/net/tcp shows the accept queue (rx_queue of the LISTEN row).
    const fromProc = readListenersFromProc(reader, '/proc', listener.pid);
    expect(fromProc?.listeners.sort((a, b) => a.port - b.port)).toEqual([
      { family: 4, port: 8080, acceptQueue: QUEUED },
      { family: 4, port: 9090, acceptQueue: 0 },
    ]);
    expect(readListenersFromProc(reader, '/proc', quiet.pid)).toEqual({ listeners: [{ family: 6, port: 8080, acceptQueue: 0 }] });

    // Entering it (the SYS_ADMIN mode): the backlog in effect and the netns's somaxconn as well.
    const inside = await readListeners(reader, listener.pid, { mayEnterNetns: true });
    expect(inside?.somaxconn).toBe(8);
    expect(inside?.listeners.sort((a, b) => a.port - b.port)).toEqual([
      { family: 4, port: 8080, acceptQueue: QUEUED, backlog: BACKLOG },
      { family: 4, port: 9090, acceptQueue: 0, backlog: 8 },
    ]);
    // Entering allowed but failing (here: no usable ss): what /proc shows, without backlogs.
    expect((await readListeners(reader, listener.pid, { mayEnterNetns: true, ss: '/nonexistent/ss' }))?.listeners.length).toBe(2);
    expect((await readListeners(reader, listener.pid, { mayEnterNetns: false }))?.listeners.sort((a, b) => a.port - b.port)).toEqual(fromProc?.listeners);
    const neighbourInside = await readListeners(reader, quiet.pid, { mayEnterNetns: true });
    expect(neighbourInside).toEqual({ somaxconn: 4096, listeners: [{ family: 6, port: 8080, acceptQueue: 0, backlog: BACKLOG }] });

    if (!floodedRates || !neighbourRates || !inside) throw new Error('unreachable');
    const verdict = listenQueueVerdict(floodedRates, after.flooded, { warningDropsPerMinute: 1, criticalDropsPerMinute: 100 }, inside);
    expect(verdict.causes).toEqual(['accept-queue-full']);
    expect(verdict.runtime).toMatchObject({
      level: 'Warning',
      overflowsPerMinute: DROPPED_FIRST_ROUND,
      dropsPerMinute: DROPPED_FIRST_ROUND,
      reqQFullDropsPerMinute: 0,
      somaxconn: 8,
      listeners: [
        { port: 8080, acceptQueue: QUEUED, backlog: BACKLOG },
        { port: 9090, acceptQueue: 0, backlog: 8 },
      ],
    });
    expect(verdict.message).toBe('24 drops/min: accept queue full on :8080 (6/5)');
    const quietVerdict = listenQueueVerdict(neighbourRates, after.neighbour);
    expect(quietVerdict.runtime.level).toBe('OK');
    expect(quietVerdict.causes).toEqual([]);
    listener.kill();
    bigBacklog.kill();
    quiet.kill();
  });

  it('with syncookies off and the client’s ACKs dropped by nftables, counts SYN-queue drops, not overflows', async () => {
    const netns = makeNetns('synq');
    netns.sysctl('net.ipv4.tcp_syncookies', 0);
    netns.dropAcksTo(8080);
    const listener = await netns.listen(8080, BACKLOG);
    const before = sample(listener.pid, 0);
    await netns.flood(8080, CONNECTIONS);
    await settle();
    const after = sample(listener.pid, 60_000);

    // The SYN queue also holds backlog + 1 half-open connections; the rest of the SYNs are dropped.
    expect(delta(before, after)).toEqual({
      listenOverflows: 0,
      listenDrops: DROPPED_FIRST_ROUND,
      reqQFullDrop: DROPPED_FIRST_ROUND,
      reqQFullDoCookies: 0,
      syncookiesSent: 0,
    });
    expect(netns.exec('ss', ['-Htn', 'state', 'syn-recv', 'sport', '= :8080']).trim().split('\n')).toHaveLength(QUEUED);
    // Nothing completed the handshake, so nothing waits for accept().
    expect(readListenersFromProc(reader, '/proc', listener.pid)?.listeners).toEqual([{ family: 4, port: 8080, acceptQueue: 0 }]);

    const rates = listenRates(before, after);
    if (!rates) throw new Error('no rates');
    const verdict = listenQueueVerdict(rates, after);
    expect(verdict.causes).toEqual(['syn-queue-full']);
    expect(verdict.runtime).toMatchObject({ level: 'Warning', overflowsPerMinute: 0, reqQFullDropsPerMinute: DROPPED_FIRST_ROUND, dropsPerMinute: DROPPED_FIRST_ROUND });
    expect(verdict.message).toBe('24 drops/min: SYN queue full, syncookies off');
  });

  it('with syncookies on, a full SYN queue is answered with cookies: no drop', async () => {
    const netns = makeNetns('cookies');
    netns.sysctl('net.ipv4.tcp_syncookies', 1);
    netns.dropAcksTo(8080);
    const listener = await netns.listen(8080, BACKLOG);
    const before = sample(listener.pid, 0);
    await netns.flood(8080, CONNECTIONS);
    const after = sample(listener.pid, 60_000);
    const moved = delta(before, after);
    expect(moved).toMatchObject({ listenOverflows: 0, listenDrops: 0, reqQFullDrop: 0 });
    // Cookies are sent for the SYNs past the full SYN queue (the kernel counts the queue-full event
    // and each cookie; both are at least the 24 first-round SYNs).
    expect(moved.syncookiesSent).toBeGreaterThanOrEqual(DROPPED_FIRST_ROUND);
    expect(moved.reqQFullDoCookies).toBeGreaterThanOrEqual(1);
    const rates = listenRates(before, after);
    if (!rates) throw new Error('no rates');
    const verdict = listenQueueVerdict(rates, after);
    expect(verdict.runtime.level).toBe('OK');
    expect(verdict.causes).toEqual(['syn-queue-full-cookies']);
    expect(verdict.message).toBe('SYN queue full, syncookies on');
  });

  it('keys pods by netns: hostNetwork pods and pods in the node’s netns become one node-level entry', async () => {
    const podNetns = makeNetns('pod');
    const listener = await podNetns.listen(8080, BACKLOG);
    const nodeNetns = readNetnsIdentity('/proc', process.pid);
    const podIdentity = readNetnsIdentity('/proc', listener.pid);
    expect(nodeNetns).toMatch(/^net:\[\d+\]$/);
    expect(podIdentity).toMatch(/^net:\[\d+\]$/);
    const entries = netnsEntries(
      [
        { podUID: 'a', hostNetwork: false, pid: listener.pid, ...(podIdentity ? { netns: podIdentity } : {}) },
        { podUID: 'host-1', hostNetwork: true, pid: process.pid },
        // A pod whose spec does not say hostNetwork but whose process is in the node's netns.
        { podUID: 'b', hostNetwork: false, pid: process.pid, ...(nodeNetns ? { netns: nodeNetns } : {}) },
      ],
      nodeNetns,
    );
    expect(entries).toEqual([
      { key: podIdentity, pid: listener.pid, podUIDs: ['a'], nodeLevel: false },
      { key: 'node', pid: process.pid, podUIDs: [], nodeLevel: true },
    ]);
  });
});

describe('listen-queue rates and levels (pure)', () => {
  const zero: ListenCounters = { listenOverflows: 0, listenDrops: 0, reqQFullDrop: 0, reqQFullDoCookies: 0, syncookiesSent: 0 };

  it('turns deltas into per-minute rates rounded up, and refuses counters that went backwards', () => {
    const rates = listenRates(
      { time: 0, counters: zero },
      { time: 10_000, counters: { ...zero, listenOverflows: 1, listenDrops: 1 } },
    );
    expect(rates).toEqual({
      overflowsPerMinute: 6,
      dropsPerMinute: 6,
      reqQFullDropsPerMinute: 0,
      reqQFullCookiesPerMinute: 0,
      syncookiesSentPerMinute: 0,
      moved: ['listenOverflows', 'listenDrops'],
    });
    // 1 drop in 7 s is 8.57/min: rounded up to 9.
    expect(listenRates({ time: 0, counters: zero }, { time: 7_000, counters: { ...zero, listenDrops: 1 } })?.dropsPerMinute).toBe(9);
    expect(listenRates({ time: 0, counters: { ...zero, listenDrops: 5 } }, { time: 10_000, counters: zero })).toBeUndefined();
    expect(listenRates({ time: 10_000, counters: zero }, { time: 10_000, counters: zero })).toBeUndefined();
  });

  it('grades drops per minute against the thresholds', () => {
    const at = (drops: number): string =>
      listenQueueVerdict(
        { overflowsPerMinute: drops, dropsPerMinute: drops, reqQFullDropsPerMinute: 0, reqQFullCookiesPerMinute: 0, syncookiesSentPerMinute: 0, moved: [] },
        { time: 0, counters: zero },
        { warningDropsPerMinute: 10, criticalDropsPerMinute: 100 },
      ).runtime.level;
    expect([at(0), at(9), at(10), at(99), at(100), at(5000)]).toEqual(['OK', 'OK', 'Warning', 'Warning', 'Critical', 'Critical']);
  });

  it('keeps the fullest listeners, at most REPORT_LIMITS.listeners', () => {
    const listeners = Array.from({ length: 12 }, (_, i) => ({ family: 4 as const, port: 8000 + i, acceptQueue: i, backlog: 10 }));
    const verdict = listenQueueVerdict(
      { overflowsPerMinute: 1, dropsPerMinute: 1, reqQFullDropsPerMinute: 0, reqQFullCookiesPerMinute: 0, syncookiesSentPerMinute: 0, moved: ['listenOverflows'] },
      { time: 0, counters: zero, timeWait: 3 },
      undefined,
      { listeners },
    );
    expect(verdict.runtime.timeWait).toBe(3);
    const fullestFirst = [8011, 8010, 8009, 8008, 8007, 8006, 8005, 8004, 8003, 8002, 8001, 8000];
    expect(verdict.runtime.listeners?.map((l) => l.port)).toEqual(fullestFirst.slice(0, REPORT_LIMITS.listeners));
  });

  it('without netns identities, keys each pod by its UID and hostNetwork pods by the node', () => {
    expect(
      netnsEntries([
        { podUID: 'a', hostNetwork: false, pid: 10 },
        { podUID: 'b', hostNetwork: true, pid: 20 },
        { podUID: 'c', hostNetwork: true, pid: 30 },
      ]),
    ).toEqual([
      { key: 'pod:a', pid: 10, podUIDs: ['a'], nodeLevel: false },
      { key: 'node', pid: 20, podUIDs: [], nodeLevel: true },
    ]);
  });
});

describe('netstat, sockstat, /proc/net/tcp and ss parsing (pure, literal kernel output)', () => {
  it('zips TcpExt names with values wherever the columns are, and treats a missing counter as 0', () => {
    const text = [
      'TcpExt: SyncookiesSent SyncookiesRecv ListenDrops TW ListenOverflows TCPReqQFullDoCookies',
      'TcpExt: 7 1 30 2 24 3',
      'IpExt: InNoRoutes InTruncatedPkts',
      'IpExt: 0 0',
      '',
    ].join('\n');
    expect(parseNetstat(text)).toEqual({ listenOverflows: 24, listenDrops: 30, reqQFullDrop: 0, reqQFullDoCookies: 3, syncookiesSent: 7 });
    expect(parseNetstat('IpExt: InNoRoutes\nIpExt: 0\n')).toBeUndefined();
  });

  it('takes sockets used, TCP in use and TIME_WAIT from sockstat', () => {
    const text = 'sockets: used 13\nTCP: inuse 7 orphan 0 tw 6 alloc 8 mem 0\nUDP: inuse 0 mem 0\n';
    expect(parseSockstat(text)).toEqual({ socketsUsed: 13, tcpInUse: 7, timeWait: 6 });
  });

  it('keeps LISTEN rows of /proc/net/tcp{,6} with port and accept queue (rx_queue), whatever the sl width', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000006 00:00000000 00000000     0        0 56789 7 00000000e01f7f25 100 0 0 10 0',
      '   1: 0100007F:1F90 0100007F:9D08 08 00000000:00000001 00:00000000 00000000     0        0 0 1 00000000cc504d6a 20 4 0 10 -1',
      '10000: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0',
      '',
    ].join('\n');
    expect(parseProcNetTcp(tcp, 4)).toEqual([
      { family: 4, port: 8080, acceptQueue: 6 },
      { family: 4, port: 80, acceptQueue: 0 },
    ]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 9 1 0 100 0 0 10 0',
      '',
    ].join('\n');
    expect(parseProcNetTcp(tcp6, 6)).toEqual([{ family: 6, port: 8080, acceptQueue: 2 }]);
  });

  it('reads Recv-Q as the accept queue and Send-Q as the backlog from ss -Hltn', () => {
    const text = [
      'LISTEN 6      5      127.0.0.1:8080      0.0.0.0:*',
      'LISTEN 0      4096   127.0.0.53%lo:53     0.0.0.0:*',
      'LISTEN 0      511    [::]:443            [::]:*',
      'LISTEN 1      128    *:9090              *:*',
      '',
    ].join('\n');
    expect(parseSsListening(text)).toEqual([
      { family: 4, port: 8080, acceptQueue: 6, backlog: 5 },
      { family: 4, port: 53, acceptQueue: 0, backlog: 4096 },
      { family: 6, port: 443, acceptQueue: 0, backlog: 511 },
      { family: 6, port: 9090, acceptQueue: 1, backlog: 128 },
    ]);
  });
});
