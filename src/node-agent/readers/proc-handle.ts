// A process held open between ticks. procfs binds an open /proc/PID/... fd to the process (its struct
// pid), not to the number, so a handle identifies its process, and a tick costs two fstat calls
// instead of path lookups, opens, reads and closes:
//   fstat(/proc/PID/task).st_nlink = threads + 2 (fs/proc/base.c proc_task_getattr);
//   fstat(/proc/PID/fd).st_size = open fds (Linux ≥ 6.2), and fails with ENOENT once the process has
//   exited, even if its pid was reused: the liveness check, taken after the thread count.
// Reading /proc/PID/stat instead (for threads) costs about twice as much in the kernel.
// With the 'readdir' fd-count method (older kernels, fixture trees), or beyond the caller's budget of
// held processes, or when the agent is out of fds (EMFILE/ENFILE), a handle reads by path: fds by
// readdir, threads and start time from /proc/PID/stat (held open in the readdir method), and the
// caller's start-time comparison is then what tells a reused pid apart.
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

export interface ProcessSample {
  fds: number;
  threads: number;
  /** Present when read from /proc/PID/stat (not held by fstat): the caller checks it is still the same. */
  starttime?: number;
}

const DIRECTORY = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY;

export class ProcessHandle {
  readonly pid: number;
  private readonly procRoot: string;
  private readonly method: FdCountMethod;
  /** 'stat' method, held: the fd and task directories. */
  private fdDir: number | undefined;
  private taskDir: number | undefined;
  /** 'readdir' method, held: /proc/PID/stat. */
  private stat: number | undefined;
  private closed = false;

  private constructor(procRoot: string, pid: number, method: FdCountMethod) {
    this.procRoot = procRoot;
    this.pid = pid;
    this.method = method;
  }

  /** Opens the process now at `pid` (holding fds when `hold`); undefined when there is none. */
  static open(procRoot: string, pid: number, method: FdCountMethod, hold = true): ProcessHandle | undefined {
    const handle = new ProcessHandle(procRoot, pid, method);
    if (hold) {
      try {
        if (method === 'stat') {
          handle.fdDir = fs.openSync(`${procRoot}/${pid}/fd`, DIRECTORY);
          handle.taskDir = fs.openSync(`${procRoot}/${pid}/task`, DIRECTORY);
        } else {
          handle.stat = fs.openSync(`${procRoot}/${pid}/stat`, 'r');
        }
        return handle;
      } catch (error) {
        handle.close();
        if (isGone(error)) return undefined;
        if (!isOutOfFds(error)) throw error;
        handle.closed = false; // out of fds: read by path
      }
    }
    return fs.existsSync(`${procRoot}/${pid}/stat`) ? handle : undefined;
  }

  /** Whether reads go through held fds (else by path). */
  get held(): boolean {
    return this.fdDir !== undefined || this.stat !== undefined;
  }

  get open(): boolean {
    return !this.closed;
  }

  /**
   * /proc/PID/stat, through the held fd when there is one, else by path (which may show a newer process
   * with the same pid: compare the start time). Undefined when gone (the handle is then closed).
   */
  readStat(reader: ScratchReader): ProcStat | undefined {
    if (this.closed) return undefined;
    const bytes = this.stat !== undefined ? reader.readOpen(this.stat, true) : reader.readRecord(`${this.procRoot}/${this.pid}/stat`);
    // A dead task's stat reads as ESRCH; an empty read is treated the same.
    const stat = bytes === undefined || bytes.length === 0 ? undefined : parseProcStat(this.pid, bytes);
    if (stat === undefined) this.close();
    return stat;
  }

  /** fds and threads now; undefined when the process is gone (the handle is then closed). */
  sample(reader: ScratchReader): ProcessSample | undefined {
    if (this.closed) return undefined;
    try {
      if (this.fdDir !== undefined && this.taskDir !== undefined) {
        const threads = fs.fstatSync(this.taskDir).nlink - 2;
        const fds = fs.fstatSync(this.fdDir).size; // throws ENOENT if the process has exited
        if (fds > 0) return { fds, threads };
        // A kernel that does not count (or a process with no fds): list, then check it still lives.
        const listed = fs.readdirSync(`${this.procRoot}/${this.pid}/fd`).length;
        fs.fstatSync(this.fdDir);
        return { fds: listed, threads };
      }
      const fds = this.listFds();
      const stat = this.readStat(reader);
      if (stat === undefined) return undefined;
      return { fds, threads: stat.threads, starttime: stat.starttime };
    } catch (error) {
      if (isGone(error)) {
        this.close();
        return undefined;
      }
      throw error;
    }
  }

  /** By path: the size where the kernel counts, else a listing. */
  private listFds(): number {
    const size = this.method === 'stat' ? fs.statSync(`${this.procRoot}/${this.pid}/fd`).size : 0;
    return size > 0 ? size : fs.readdirSync(`${this.procRoot}/${this.pid}/fd`).length;
  }

  close(): void {
    for (const fd of [this.fdDir, this.taskDir, this.stat]) if (fd !== undefined) fs.closeSync(fd);
    this.fdDir = undefined;
    this.taskDir = undefined;
    this.stat = undefined;
    this.closed = true;
  }
}
