// Small-file reads for /proc and cgroupfs, shared by the readers. One scratch buffer is reused for every
// read (open + read + close: no fstat, no per-read allocation), because the per-tick scan reads a few
// files for each of up to thousands of processes. Callers parse the bytes before the next read.
import fs from 'node:fs';

/** A process (or cgroup) that went away between listing and reading: skipped, never fatal. */
export function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  // ESRCH: the task died while its /proc entry was open; ENOENT: already gone; EINVAL/ENODEV show up
  // on reads of a cgroup file whose cgroup was removed after open.
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EINVAL' || code === 'ENODEV';
}

export class ScratchReader {
  private buffer: Buffer;

  constructor(size = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  /**
   * The file's bytes (a view of the shared buffer, valid until the next read), or undefined when the
   * file is gone. Other errors (EACCES, ...) are thrown: they are configuration problems, not races.
   */
  read(path: string): Buffer | undefined {
    return this.readFile(path, false);
  }

  /**
   * For files that the kernel renders as one record well under a page (/proc/PID/stat, limits, comm,
   * pids.max): one read() instead of reading on to EOF, saving a syscall per file on the hot path.
   */
  readRecord(path: string): Buffer | undefined {
    return this.readFile(path, true);
  }

  private readFile(path: string, oneRecord: boolean): Buffer | undefined {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    }
    try {
      let length = 0;
      for (;;) {
        if (length === this.buffer.length) {
          const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
          this.buffer.copy(bigger, 0, 0, length);
          this.buffer = bigger;
        }
        const n = fs.readSync(fd, this.buffer, length, this.buffer.length - length, null);
        if (n === 0) break;
        length += n;
        if (oneRecord && length < this.buffer.length) break;
      }
      return this.buffer.subarray(0, length);
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    } finally {
      fs.closeSync(fd);
    }
  }

  readText(path: string): string | undefined {
    return this.read(path)?.toString('latin1');
  }
}

/** A decimal integer from a file such as pids.max or /proc/sys/kernel/pid_max; `max` → Infinity. */
export function parseLimitValue(text: string): number | undefined {
  const token = text.trim();
  if (token === 'max' || token === 'unlimited') return Number.POSITIVE_INFINITY;
  if (!/^-?\d+$/.test(token)) return undefined;
  return Number(token);
}
