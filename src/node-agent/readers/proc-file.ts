// Small-file reads for /proc and cgroupfs, shared by the readers. One scratch buffer is reused for every
// read (no fstat, no per-read allocation), because the per-tick scan reads a few files for each of up to
// thousands of processes. Callers parse the bytes before the next read.
import fs from 'node:fs';

/** A process (or cgroup) that went away between listing and reading: skipped, never fatal. */
export function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  // ESRCH: the task died while its /proc entry was open; ENOENT: already gone; ENODEV: a cgroup file
  // read through an fd opened before its cgroup was removed; EINVAL: likewise on some kernels.
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EINVAL' || code === 'ENODEV';
}

export class ScratchReader {
  private buffer: Buffer;
  /**
   * Called when opening a file fails for want of fds (EMFILE/ENFILE): gives back fds held elsewhere and
   * says whether it did, in which case the open is tried once more.
   */
  onOutOfFds: (() => boolean) | undefined;

  constructor(size = 16 * 1024) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  /**
   * The file's bytes (a view of the shared buffer, valid until the next read), or undefined when the
   * file is gone. Other errors (EACCES, ...) are thrown: they are configuration problems, not races.
   */
  read(path: string): Buffer | undefined {
    return this.readPath(path, false);
  }

  /**
   * For files that the kernel renders as one record well under a page (/proc/PID/stat, limits, comm,
   * pids.max): one read() instead of reading on to EOF, saving a syscall per file on the hot path.
   */
  readRecord(path: string): Buffer | undefined {
    return this.readPath(path, true);
  }

  readText(path: string): string | undefined {
    return this.read(path)?.toString('latin1');
  }

  /**
   * Reads an fd kept open between ticks from offset 0: procfs and cgroupfs render the file afresh at
   * offset 0, so one pread replaces open + read + close. Undefined when what it refers to is gone.
   */
  readOpen(fd: number, oneRecord: boolean): Buffer | undefined {
    try {
      return this.readFrom(fd, oneRecord, 0);
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    }
  }

  private readPath(path: string, oneRecord: boolean): Buffer | undefined {
    let fd: number;
    try {
      fd = this.openForRead(path);
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    }
    try {
      return this.readFrom(fd, oneRecord, null);
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    } finally {
      fs.closeSync(fd);
    }
  }

  private openForRead(path: string): number {
    try {
      return fs.openSync(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code === 'EMFILE' || code === 'ENFILE') && this.onOutOfFds?.()) return fs.openSync(path, 'r');
      throw error;
    }
  }

  private readFrom(fd: number, oneRecord: boolean, position: number | null): Buffer {
    let length = 0;
    for (;;) {
      if (length === this.buffer.length) {
        const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
        this.buffer.copy(bigger, 0, 0, length);
        this.buffer = bigger;
      }
      const n = fs.readSync(fd, this.buffer, length, this.buffer.length - length, position === null ? null : position + length);
      if (n === 0) break;
      length += n;
      if (oneRecord && length < this.buffer.length) break;
    }
    return this.buffer.subarray(0, length);
  }
}

/**
 * Files read every tick (a container's pids.current, cpu.stat, ...) kept open and re-read from offset 0.
 * Files not read during a tick are closed at prune(). Not for v1 cgroup.procs: v1 caches the pid list
 * per open file for a second after each read, so a held fd could return a stale list.
 */
export class OpenFiles {
  private readonly fds = new Map<string, { fd: number; used: number }>();
  private readonly reader: ScratchReader;
  private readonly limit: number;
  private generation = 0;

  /** `limit` bounds the fds held, beyond it files are read by path as usual. */
  constructor(reader: ScratchReader, limit = 4096) {
    this.reader = reader;
    this.limit = limit;
  }

  read(path: string, oneRecord = true): Buffer | undefined {
    let entry = this.fds.get(path);
    if (!entry) {
      if (this.fds.size >= this.limit) return oneRecord ? this.reader.readRecord(path) : this.reader.read(path);
      try {
        entry = { fd: fs.openSync(path, 'r'), used: this.generation };
      } catch (error) {
        if (isGone(error)) return undefined;
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EMFILE' && code !== 'ENFILE') throw error;
        // Out of fds: read by path (its fd is closed at once; the reader may make us give ours back).
        return oneRecord ? this.reader.readRecord(path) : this.reader.read(path);
      }
      this.fds.set(path, entry);
    }
    entry.used = this.generation;
    const bytes = this.reader.readOpen(entry.fd, oneRecord);
    if (bytes === undefined) this.drop(path);
    return bytes;
  }

  readText(path: string): string | undefined {
    return this.read(path)?.toString('latin1');
  }

  prune(): void {
    for (const [path, entry] of this.fds) if (entry.used < this.generation) this.drop(path);
    this.generation++;
  }

  closeAll(): void {
    for (const path of [...this.fds.keys()]) this.drop(path);
  }

  get size(): number {
    return this.fds.size;
  }

  private drop(path: string): void {
    const entry = this.fds.get(path);
    if (!entry) return;
    this.fds.delete(path);
    fs.closeSync(entry.fd);
  }
}

/** Anything that reads a small file as text: a ScratchReader (by path) or OpenFiles (held fds). */
export interface TextSource {
  readText(path: string): string | undefined;
}

/** A decimal integer from a file such as pids.max or /proc/sys/kernel/pid_max; `max` → Infinity. */
export function parseLimitValue(text: string): number | undefined {
  const token = text.trim();
  if (token === 'max' || token === 'unlimited') return Number.POSITIVE_INFINITY;
  if (!/^-?\d+$/.test(token)) return undefined;
  return Number(token);
}
