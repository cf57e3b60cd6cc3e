// Readers: parsers on literal kernel text, and the kernel facts the scan relies on, checked on this
// machine (stat of /proc/PID/fd counts fds; a held /proc handle fails once its process exits).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  bareContainerID,
  cgroupFileHasLeaf,
  containerCgroupNames,
  detectFdCountMethod,
  parseCfsQuota,
  parseCpuMax,
  parseCpuStat,
  parseProcLimits,
  parseProcStat,
  podCgroupCandidates,
  readFdCount,
  ScratchReader,
} from '../../src/node-agent/index.ts';
import { parseLoadavgTasks } from '../../src/node-agent/readers/kernel-limits.ts';
import { OpenFiles } from '../../src/node-agent/readers/proc-file.ts';
import { ProcessHandle } from '../../src/node-agent/readers/proc-handle.ts';
import { parseProcStatus } from '../../src/node-agent/readers/proc-status.ts';

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('parsers (literal kernel text)', () => {
  it('/proc/PID/stat: fields after the last ")" even when comm holds ") " and digits', () => {
    const line =
      '4242 (a) b) S 1 (c) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 17 0 987654 1234567 890 18446744073709551615\n';
    expect(parseProcStat(4242, Buffer.from(line))).toEqual({ pid: 4242, state: 'S', threads: 17, starttime: 987654 });
    expect(parseProcStat(1, Buffer.from('1 (init'))).toBeUndefined();
  });

  it('/proc/PID/limits: nofile and nproc, `unlimited` as Infinity', () => {
    const text =
      'Limit                     Soft Limit           Hard Limit           Units     \n' +
      'Max cpu time              unlimited            unlimited            seconds   \n' +
      'Max processes             unlimited            unlimited            processes \n' +
      'Max open files            1024                 524288               files     \n';
    expect(parseProcLimits(text)).toEqual({
      nofile: { soft: 1024, hard: 524288 },
      nproc: { soft: Infinity, hard: Infinity },
    });
  });

  it('/proc/PID/status: the real UID (first of four) and Threads', () => {
    expect(parseProcStatus('Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t9\n')).toEqual({ realUid: 1000, threads: 9 });
  });

  it('/proc/loadavg: the task count after the slash', () => {
    expect(parseLoadavgTasks('3.16 1.63 0.67 9/129 11615\n')).toBe(129);
  });

  it('CPU quota: v2 cpu.max and v1 cfs_quota_us/cfs_period_us', () => {
    expect(parseCpuMax('250000 100000\n')).toEqual({ quotaCores: 2.5, quotaMicros: 250000, periodMicros: 100000 });
    expect(parseCpuMax('max 100000\n')).toEqual({ quotaCores: undefined, quotaMicros: undefined, periodMicros: 100000 });
    expect(parseCfsQuota('-1\n', '100000\n')).toEqual({ quotaCores: undefined, quotaMicros: undefined, periodMicros: 100000 });
    expect(parseCfsQuota('50000\n', '100000\n')?.quotaCores).toBe(0.5);
  });

  it('cpu.stat: v1 throttled_time is nanoseconds, v2 throttled_usec microseconds; v2 without the controller has none', () => {
    // v1 as read on this machine after 1 s of a busy loop under a 10 ms/100 ms quota.
    expect(parseCpuStat('nr_periods 11\nnr_throttled 11\nthrottled_time 908034961\nnr_bursts 0\nburst_time 0\n', 'v1')).toEqual({
      periods: 11,
      throttledPeriods: 11,
      throttledMicros: 908034.961,
    });
    expect(parseCpuStat('usage_usec 5\nnr_periods 4\nnr_throttled 1\nthrottled_usec 777\n', 'v2')).toEqual({
      periods: 4,
      throttledPeriods: 1,
      throttledMicros: 777,
    });
    expect(parseCpuStat('usage_usec 5\nuser_usec 3\nsystem_usec 2\n', 'v2')).toBeUndefined();
  });

  it('/proc/PID/cgroup: a leaf matches as a whole path component only', () => {
    const id = 'df574a3e5601e586f03c27b85aacb24199f164aa85e0bb5dbe01437c039f2343';
    const text = `0::/../../kubepods-besteffort-pod1.slice/cri-containerd-${id}.scope/container\n`;
    expect(cgroupFileHasLeaf(text, `cri-containerd-${id}.scope`)).toBe(true);
    expect(cgroupFileHasLeaf(text, `cri-containerd-${id.slice(0, 60)}.scope`)).toBe(false);
    expect(cgroupFileHasLeaf(`8:pids:/kubepods/burstable/podu/${id}0\n`, id)).toBe(false);
    expect(cgroupFileHasLeaf(`8:pids:/kubepods/burstable/podu/${id}\n2:cpu,cpuacct:/\n`, id)).toBe(true);
  });
});

describe('kubelet naming', () => {
  it('pod cgroup candidates for both drivers and every QoS class, the hint first', () => {
    expect(podCgroupCandidates('0a1b-2c', 'BestEffort').map((c) => c.relativePath)).toEqual([
      'kubepods/besteffort/pod0a1b-2c',
      'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b_2c.slice',
      'kubepods/burstable/pod0a1b-2c',
      'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b_2c.slice',
      'kubepods/pod0a1b-2c',
      'kubepods.slice/kubepods-pod0a1b_2c.slice',
    ]);
    expect(podCgroupCandidates('0a1b-2c', 'Guaranteed', [['kubelet']])[1]?.relativePath).toBe(
      'kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod0a1b_2c.slice',
    );
  });

  it('container directory names for containerd, CRI-O and docker, from a pod-status container ID', () => {
    expect(bareContainerID('cri-o://abc')).toBe('abc');
    expect(containerCgroupNames('containerd://abc')).toEqual([
      'cri-containerd-abc.scope',
      'crio-abc.scope',
      'docker-abc.scope',
      'abc',
      'crio-abc',
    ]);
  });
});

describe('kernel facts on this machine', () => {
  it('stat(/proc/PID/fd).st_size is the number of open fds (Linux ≥ 6.2)', () => {
    expect(detectFdCountMethod('/proc')).toBe('stat');
    const before = readFdCount('/proc', process.pid, 'stat');
    const opened = Array.from({ length: 50 }, () => fs.openSync('/dev/null', 'r'));
    try {
      expect(readFdCount('/proc', process.pid, 'stat')).toBe((before ?? 0) + 50);
      // readdir of one's own fd directory also lists the fd the listing itself holds open.
      expect(fs.readdirSync(`/proc/${process.pid}/fd`).length).toBe((before ?? 0) + 51);
    } finally {
      for (const fd of opened) fs.closeSync(fd);
    }
  });

  it('a held /proc handle: threads from the task directory’s nlink, fds from the fd directory’s size, ENOENT once the process has exited', async () => {
    // 3 threads besides the main one, fds 0-2 and 5 more (everything inherited closed first).
    const script =
      'import os, sys, threading\nos.closerange(3, 1 << 20)\nfds = [os.open("/dev/null", os.O_RDONLY) for _ in range(5)]\n' +
      'stop = threading.Event()\nfor _ in range(3): threading.Thread(target=stop.wait, daemon=True).start()\n' +
      'print("ready", flush=True)\nsys.stdin.read()\n';
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout?.once('data', resolve));
    const handle = ProcessHandle.open('/proc', child.pid!, 'stat')!;
    const reader = new ScratchReader();
    try {
      expect(handle.held).toBe(true);
      expect(handle.sample(reader)).toEqual({ fds: 8, threads: 4 });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(handle.sample(reader)).toBeUndefined();
      expect(handle.open).toBe(false);
    } finally {
      handle.close();
      child.kill('SIGKILL');
    }
  });
});

describe('file reading', () => {
  it('reads files larger than the scratch buffer, and held files afresh from offset 0', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-readers-'));
    temps.push(dir);
    const big = path.join(dir, 'big');
    fs.writeFileSync(big, 'x'.repeat(10_000));
    const reader = new ScratchReader(1024);
    expect(reader.read(big)?.length).toBe(10_000);
    expect(reader.read(path.join(dir, 'missing'))).toBeUndefined();

    const small = path.join(dir, 'pids.current');
    fs.writeFileSync(small, '7\n');
    const files = new OpenFiles(reader, 1);
    expect(files.readText(small)).toBe('7\n');
    fs.writeFileSync(small, '12\n'); // same inode, rewritten
    expect(files.readText(small)).toBe('12\n');
    expect(files.size).toBe(1);
    fs.writeFileSync(big, 'y');
    expect(files.readText(big)).toBe('y'); // over the limit: read by path, not held
    expect(files.size).toBe(1);
    files.prune();
    files.prune();
    expect(files.size).toBe(0);
  });
});
