// GOMAXPROCS and GODEBUG of a process from /proc/PID/environ — the fallback when the pod spec does not
// say (the value came from the image's ENV, or from a wrapper script). Environments carry secrets, so
// this reader matches the two names on the raw bytes, decodes only those two values, and zeroes the
// buffer before returning: no other byte becomes a string, is returned, logged or kept.
// /proc/PID/environ is the initial environment (what the runtime read at start), NUL-separated
// KEY=VALUE entries; ptrace read (CAP_SYS_PTRACE for other users' processes). The first entry of a name
// wins, as getenv() in libc and in the Go runtime take the first.
import fs from 'node:fs';
import { isGone } from './proc-file.ts';

export interface GoEnvironment {
  GOMAXPROCS?: string;
  GODEBUG?: string;
}

const WANTED = ['GOMAXPROCS', 'GODEBUG'] as const;
const PREFIXES = WANTED.map((name) => ({ name, prefix: Buffer.from(`${name}=`, 'latin1') }));
/** Beyond any real environment (ARG_MAX-sized stacks aside); a value longer than this is cut. */
const MAX_VALUE_BYTES = 4096;

/** Scans NUL-separated entries for the two names; the caller owns (and wipes) `bytes`. */
export function extractGoEnvironment(bytes: Uint8Array): GoEnvironment {
  const found: GoEnvironment = {};
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  while (start < buffer.length) {
    let end = buffer.indexOf(0, start);
    if (end < 0) end = buffer.length;
    for (const { name, prefix } of PREFIXES) {
      if (found[name] !== undefined || end - start < prefix.length) continue;
      if (buffer.compare(prefix, 0, prefix.length, start, start + prefix.length) !== 0) continue;
      const valueStart = start + prefix.length;
      found[name] = buffer.toString('utf8', valueStart, Math.min(end, valueStart + MAX_VALUE_BYTES));
    }
    start = end + 1;
  }
  return found;
}

/**
 * GOMAXPROCS/GODEBUG from the process's initial environment; undefined when the process is gone or
 * its environ may not be read (no ptrace read).
 */
export function readGoEnvironment(procRoot: string, pid: number): GoEnvironment | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(`${procRoot}/${pid}/environ`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (isGone(error) || code === 'EACCES' || code === 'EPERM') return undefined;
    throw error;
  }
  try {
    return extractGoEnvironment(bytes);
  } finally {
    // Discard the rest at once rather than leaving it in the heap until the buffer is collected.
    bytes.fill(0);
  }
}
