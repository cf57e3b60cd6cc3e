// /proc/PID/stat: start time (with the pid, a process's identity: a reused pid has a new start time),
// thread count and state. Parsed from bytes after the last ')' because comm may contain spaces and ')'.
// Field numbers follow proc(5): 3 state, 20 num_threads, 22 starttime (clock ticks since boot).

export interface ProcStat {
  pid: number;
  /** Clock ticks after boot; with pid, identifies the process across ticks. */
  starttime: number;
  threads: number;
  /** Single letter of proc(5): R, S, D, Z, ... */
  state: string;
}

const SPACE = 0x20;
const CLOSE_PAREN = 0x29;

export function parseProcStat(pid: number, bytes: Buffer): ProcStat | undefined {
  const end = bytes.lastIndexOf(CLOSE_PAREN);
  if (end < 0) return undefined;
  // bytes[end + 1] is a space; field 3 (state) starts at end + 2.
  let field = 3;
  let start = end + 2;
  let state = '';
  let threads = -1;
  let starttime = -1;
  for (let i = start; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== SPACE) continue;
    if (field === 3) state = String.fromCharCode(bytes[start] ?? 0x3f);
    else if (field === 20) threads = parseDecimal(bytes, start, i);
    else if (field === 22) {
      starttime = parseDecimal(bytes, start, i);
      break;
    }
    field++;
    start = i + 1;
  }
  if (threads < 0 || starttime < 0) return undefined;
  return { pid, starttime, threads, state };
}

function parseDecimal(bytes: Buffer, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = (bytes[i] ?? 0) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return to > from ? value : -1;
}
