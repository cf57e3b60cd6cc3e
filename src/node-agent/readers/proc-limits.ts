// /proc/PID/limits (fs/proc/base.c proc_pid_limits, world-readable): RLIMIT_NOFILE ("Max open files")
// and RLIMIT_NPROC ("Max processes"), soft and hard. A process can change its own limits (Go raises
// soft nofile to hard at start), so they are read per process; reading all of them each tick costs as
// much as the rest of the scan, so they are cached per process identity (pid, starttime), and re-read
// on demand before a level is raised (a setrlimit since the last read would otherwise go unseen).
import type { ScratchReader } from './proc-file.ts';
import { parseLimitValue } from './proc-file.ts';
import { identityKey } from '../attribution/process-identity.ts';

export interface SoftHard {
  soft: number;
  hard: number;
}

export interface ProcLimits {
  nofile: SoftHard;
  nproc: SoftHard;
}

function parseRow(text: string, name: string): SoftHard | undefined {
  // Columns are "%-25s %-20s %-20s %-10s"; names contain spaces, values never do.
  const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const soft = parseLimitValue(match[1]);
  const hard = parseLimitValue(match[2]);
  if (soft === undefined || hard === undefined) return undefined;
  return { soft, hard };
}

export function parseProcLimits(text: string): ProcLimits | undefined {
  const nofile = parseRow(text, 'Max open files');
  const nproc = parseRow(text, 'Max processes');
  if (!nofile || !nproc) return undefined;
  return { nofile, nproc };
}

export function readProcLimits(reader: ScratchReader, procRoot: string, pid: number): ProcLimits | undefined {
  const text = reader.readText(`${procRoot}/${pid}/limits`);
  return text === undefined ? undefined : parseProcLimits(text);
}

/** Limits per process identity. Entries not touched since the last prune() are dropped there. */
export class LimitsCache {
  private readonly entries = new Map<string, { limits: ProcLimits; touched: number }>();
  private generation = 0;
  /** Reads from /proc since construction; lets tests and the bench see that the cache works. */
  reads = 0;

  private readonly reader: ScratchReader;
  private readonly procRoot: string;

  constructor(reader: ScratchReader, procRoot: string) {
    this.reader = reader;
    this.procRoot = procRoot;
  }

  get(pid: number, starttime: number): ProcLimits | undefined {
    const key = identityKey(pid, starttime);
    const entry = this.entries.get(key);
    if (entry) {
      entry.touched = this.generation;
      return entry.limits;
    }
    return this.load(key, pid);
  }

  /** Re-read now, e.g. before a level is raised on the strength of the cached soft limit. */
  refresh(pid: number, starttime: number): ProcLimits | undefined {
    return this.load(identityKey(pid, starttime), pid);
  }

  forget(pid: number, starttime: number): void {
    this.entries.delete(identityKey(pid, starttime));
  }

  /** Ends a tick: forgets processes not asked about since the previous prune. */
  prune(): void {
    for (const [key, entry] of this.entries) if (entry.touched < this.generation) this.entries.delete(key);
    this.generation++;
  }

  get size(): number {
    return this.entries.size;
  }

  private load(key: string, pid: number): ProcLimits | undefined {
    this.reads++;
    const limits = readProcLimits(this.reader, this.procRoot, pid);
    if (limits) this.entries.set(key, { limits, touched: this.generation });
    else this.entries.delete(key);
    return limits;
  }
}
