// A process held open between ticks: fds on /proc/PID/fd (the directory) and /proc/PID/stat. procfs
// binds both to the process (its struct pid), not to the number: once the process has exited they fail
// (ENOENT/ESRCH) even if the pid is reused, so a handle identifies its process, and each tick costs one
// fstat (the fd count, Linux ≥ 6.2) and one pread (threads, start time) instead of a path lookup, open,
// read and close per file. That is two of the agent's fds per process watched (Node raises its soft
// RLIMIT_NOFILE to the hard limit at start); beyond the caller's budget, or when the agent runs out of
// fds (EMFILE/ENFILE), a handle reads by path instead, and the caller's start-time check is then what
// tells a reused pid apart.
import fs from 'node:fs';
import type { FdCountMethod } from './proc-fd-count.ts';
import type { ScratchReader } from './proc-file.ts';
import { isGone } from './proc-file.ts';
import type { ProcStat } from './proc-stat.ts';
import { parseProcStat } from './proc-stat.ts';

export function isOutOfFds(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

export class ProcessHandle {
  readonly pid: number;
  private readonly procRoot: string;
  private readonly method: FdCountMethod;
  /** Held fds; both undefined when reading by path. */
  private fdDir: number | undefined;
  private stat: number | undefined;
  private closed = false;

  private constructor(procRoot: string, pid: number, method: FdCountMethod, fdDir: number | undefined, stat: number | undefined) {
    this.procRoot = procRoot;
    this.pid = pid;
    this.method = method;
    this.fdDir = fdDir;
    this.stat = stat;
  }

  /** Opens the process now at `pid` (holding fds when `hold`); undefined when there is none. */
  static open(procRoot: string, pid: number, method: FdCountMethod, hold = true): ProcessHandle | undefined {
    if (!hold) {
      const handle = new ProcessHandle(procRoot, pid, method, undefined, undefined);
      return fs.existsSync(`${procRoot}/${pid}/stat`) ? handle : undefined;
    }
    let stat: number | undefined;
    try {
      stat = fs.openSync(`${procRoot}/${pid}/stat`, 'r');
      const fdDir = method === 'stat' ? fs.openSync(`${procRoot}/${pid}/fd`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY) : undefined;
      return new ProcessHandle(procRoot, pid, method, fdDir, stat);
    } catch (error) {
      if (stat !== undefined) fs.closeSync(stat);
      if (isGone(error)) return undefined;
      if (isOutOfFds(error)) return new ProcessHandle(procRoot, pid, method, undefined, undefined);
      throw error;
    }
  }

  /** Whether reads go through held fds (else by path). */
  get held(): boolean {
    return this.stat !== undefined;
  }

  get open(): boolean {
    return !this.closed;
  }

  /** /proc/PID/stat of this very process; undefined once it has exited (the handle is then closed). */
  readStat(reader: ScratchReader): ProcStat | undefined {
    if (this.closed) return undefined;
    const bytes = this.stat !== undefined ? reader.readOpen(this.stat, true) : reader.readRecord(`${this.procRoot}/${this.pid}/stat`);
    // A dead task's stat reads as ESRCH; an empty read is treated the same.
    const stat = bytes === undefined || bytes.length === 0 ? undefined : parseProcStat(this.pid, bytes);
    if (stat === undefined) this.close();
    return stat;
  }

  /**
   * Open fds of this process. With 'stat', the size of the fd directory (fstat of the held one); a size
   * of 0 and the 'readdir' method list the directory by path, which can name a newer process with the
   * same pid: callers read the stat afterwards, which fails (or shows another start time) if this
   * process had gone by then.
   */
  fdCount(): number | undefined {
    if (this.closed) return undefined;
    try {
      if (this.method === 'stat') {
        const size =
          this.fdDir !== undefined ? fs.fstatSync(this.fdDir).size : fs.statSync(`${this.procRoot}/${this.pid}/fd`).size;
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

  close(): void {
    if (this.stat !== undefined) fs.closeSync(this.stat);
    if (this.fdDir !== undefined) fs.closeSync(this.fdDir);
    this.stat = undefined;
    this.fdDir = undefined;
    this.closed = true;
  }
}
