// Where high-volume JSON lines go (the webhook's above all: one line per review is thousands of lines a
// second at full load).
// pino's asynchronous SonicBoom measured ~10 µs per line here (it re-measures the byte length of its
// whole pending buffer on every write), a sync write is a syscall per line that blocks on a full pipe.
// This writer queues lines and writes them with one asynchronous fs.write per batch (32 KiB, or every
// 200 ms, whichever comes first), one write in flight at a time, in order: each fs.write is a trip
// through libuv's thread pool, ~10-20 µs of this process's CPU, which per line would cost more than the
// review itself. If the reader of stderr stalls, it drops lines beyond a bound (counted) rather than
// growing without limit or blocking admission.
import { write, writeSync } from 'node:fs';

export interface BatchedLineWriterOptions {
  fd?: number;
  /** Write as soon as this much is pending; default 32 KiB. */
  batchBytes?: number;
  /** Write what is pending at most this long after its first line; default 200 ms. */
  maxDelayMs?: number;
  /** Pending bytes beyond which new lines are dropped (and counted); default 16 MiB. */
  maxPendingBytes?: number;
}

export class BatchedLineWriter {
  private readonly fd: number;
  private readonly maxPendingBytes: number;
  private readonly batchBytes: number;
  private readonly maxDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private scheduled = false;
  private droppedLines = 0;
  private waiters: (() => void)[] = [];

  constructor(options: BatchedLineWriterOptions = {}) {
    this.fd = options.fd ?? 2;
    this.maxPendingBytes = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.batchBytes = options.batchBytes ?? 32 * 1024;
    this.maxDelayMs = options.maxDelayMs ?? 200;
  }

  /** Lines dropped because the destination could not keep up. */
  get dropped(): number {
    return this.droppedLines;
  }

  write(line: string): boolean {
    // String length undercounts multi-byte text; the bound is a safety net, not an exact figure.
    if (this.pendingBytes + line.length > this.maxPendingBytes) {
      this.droppedLines++;
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.writing || this.scheduled) return true;
    if (this.pendingBytes >= this.batchBytes) {
      this.scheduled = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      setImmediate(() => {
        this.scheduled = false;
        this.writeBatch();
      });
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.writeBatch();
      }, this.maxDelayMs).unref();
    }
    return true;
  }

  /** Resolves once everything written so far has reached the fd (pino's flush calls this). */
  flush(callback?: (error?: Error) => void): void {
    if (this.pending.length === 0 && !this.writing) {
      callback?.();
      return;
    }
    this.waiters.push(() => callback?.());
    if (!this.writing && !this.scheduled) this.writeBatch();
  }

  /** Writes what is pending synchronously (exit paths). */
  flushSync(): void {
    if (this.writing) return; // the in-flight write owns the order; its callback writes the rest
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.take();
    if (text) writeSync(this.fd, text);
  }

  private take(): string {
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    return text;
  }

  private requeue(text: string): void {
    this.pending.unshift(text);
    this.pendingBytes += text.length;
  }

  private writeBatch(): void {
    if (this.writing) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) {
      for (const waiter of this.waiters.splice(0)) waiter();
      return;
    }
    this.writing = true;
    const text = this.take();
    write(this.fd, text, null, 'utf8', (error, written) => {
      this.writing = false;
      if (error) {
        // A non-blocking pipe that is full: try the same text again shortly. Anything else: lost, counted.
        if (error.code === 'EAGAIN') {
          this.requeue(text);
          this.writing = true;
          setTimeout(() => { this.writing = false; this.writeBatch(); }, 10).unref();
          return;
        }
        this.droppedLines++;
      } else if (written < Buffer.byteLength(text)) {
        // A short write on a pipe: the rest goes first next time.
        this.requeue(Buffer.from(text).subarray(written).toString('utf8'));
      }
      // Keep batching: the next write goes out now only when a batch is full or someone waits for it.
      if (this.waiters.length > 0 || this.pendingBytes >= this.batchBytes || this.pending.length === 0) this.writeBatch();
      else this.timer ??= setTimeout(() => { this.timer = undefined; this.writeBatch(); }, this.maxDelayMs).unref();
    });
  }
}
