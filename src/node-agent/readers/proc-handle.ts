// A process held open between ticks: fds on /proc/PID/fd (the directory) and /proc/PID/stat. procfs
// binds both to the process (its struct pid), not to the number: once the process has exited they fail
// (ENOENT/ESRCH) even if the pid is reused, so a handle identifies its process, and each tick costs one
// fstat (the fd count, Linux ≥ 6.2) and one pread (threads, start time) instead of a path lookup, open,
// read and close per file. Two fds of the agent's per process watched (Node raises its soft
// RLIMIT_NOFILE to the hard limit at start).
import fs from 'node:fs';
import type { FdCountMethod } from './proc-fd-count.ts';
import type { ScratchReader } from './proc-file.ts';
import { isGone } from './proc-file.ts';
import type { ProcStat } from './proc-stat.ts';
import { parseProcStat } from './proc-stat.ts';

export class ProcessHandle {
  readonly pid: number;
  private readonly procRoot: string;
  private fdDir: number | undefined;
  private stat: number | undefined;

  private constructor(procRoot: string, pid: number, fdDir: number | undefined, stat: number) {
    this.procRoot = procRoot;
    this.pid = pid;
    this.fdDir = fdDir;
    this.stat = stat;
  }

  /** Opens the process now at `pid`; undefined when there is none. */
  static open(procRoot: string, pid: number, method: FdCountMethod): ProcessHandle | undefined {
    let stat: number | undefined;
    let fdDir: number | undefined;
    try {
      stat = fs.openSync(`${procRoot}/${pid}/stat`, 'r');
      if (method === 'stat') fdDir = fs.openSync(`${procRoot}/${pid}/fd`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      return new ProcessHandle(procRoot, pid, fdDir, stat);
    } catch (error) {
      if (stat !== undefined) fs.closeSync(stat);
      if (isGone(error)) return undefined;
      throw error;
    }
  }

  /** /proc/PID/stat of this very process; undefined once it has exited (the handle is then closed). */
  readStat(reader: ScratchReader): ProcStat | undefined {
    if (this.stat === undefined) return undefined;
    const bytes = reader.readOpen(this.stat, true);
    // A dead task's stat reads as ESRCH; an empty read is treated the same.
    const stat = bytes === undefined || bytes.length === 0 ? undefined : parseProcStat(this.pid, bytes);
    if (stat === undefined) this.close();
    return stat;
  }

  /**
   * Open fds of this process. With 'stat', fstat of the held directory (its size is the count); a size
   * of 0 and the 'readdir' method list the directory by path, which can name a newer process with the
   * same pid: callers read the stat afterwards, which fails if this process had gone by then.
   */
  fdCount(): number | undefined {
    if (this.stat === undefined) return undefined;
    try {
      if (this.fdDir !== undefined) {
        const size = fs.fstatSync(this.fdDir).size;
        if (size > 0) return size;
      }
      return fs.readdirSync(`${this.procRoot}/${this.pid}/fd`).length;
    } catch (error) {
      if (isGone(error)) {
        this.close();
        return undefined;
      }
      throw error;
    }
  }

  get open(): boolean {
    return this.stat !== undefined;
  }

  close(): void {
    if (this.stat !== undefined) fs.closeSync(this.stat);
    if (this.fdDir !== undefined) fs.closeSync(this.fdDir);
    this.stat = undefined;
    this.fdDir = undefined;
  }
}
