// The last crash signature in a container's previous log, as the kubelet lays logs out:
//   <root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log
// (root /var/log/pods, mounted read-only). The running instance writes `<restartCount>.log`; the one
// that crashed wrote the highest-numbered log below that. Lines are CRI format,
//   <RFC3339Nano time> <stdout|stderr> <P|F> <message>
// where P marks a partial line that continues in the next P/F entry of the same stream.
//
// Only the tail is read — first the last 64 KiB, then up to `maxBytes` (1 MiB by default) if that has
// no signature — because crashes print their reason last, or just before a goroutine dump. Of the log
// only the matched line survives, with anything that looks like a path replaced by `<path>`, cut to
// REPORT_LIMITS.signature characters; the rest is never returned or logged.
import fs from 'node:fs';
import { REPORT_LIMITS } from '../../api/v1alpha1.ts';
import { isGone } from './proc-file.ts';

export type CrashSignatureKind =
  | 'too-many-open-files'
  | 'go-failed-to-create-thread'
  | 'pthread-create-failed'
  | 'go-thread-limit'
  | 'go-deadlock'
  | 'java-native-thread'
  | 'python-thread';

/** In the order they are tried on one line; the first match names the line. */
export const CRASH_SIGNATURES: readonly { kind: CrashSignatureKind; pattern: RegExp }[] = [
  // EMFILE (per process) and ENFILE ("… in system", node-wide); Python capitalises it.
  { kind: 'too-many-open-files', pattern: /too many open files/i },
  { kind: 'go-failed-to-create-thread', pattern: /runtime: failed to create new OS thread/ },
  { kind: 'pthread-create-failed', pattern: /pthread_create failed/ },
  // Go's own cap, debug.SetMaxThreads (10000 unless the program changed it).
  { kind: 'go-thread-limit', pattern: /program exceeds \d+-thread limit/ },
  { kind: 'go-deadlock', pattern: /all goroutines are asleep - deadlock!/ },
  { kind: 'java-native-thread', pattern: /unable to create (?:new )?native thread/ },
  { kind: 'python-thread', pattern: /can't start new thread/ },
];

export interface LogSignature {
  kind: CrashSignatureKind;
  /** The matched line, paths redacted, at most REPORT_LIMITS.signature characters. */
  line: string;
}

export interface PodLogRef {
  namespace: string;
  name: string;
  uid: string;
}

export function podLogDir(root: string, pod: PodLogRef): string {
  return `${root}/${pod.namespace}_${pod.name}_${pod.uid}`;
}

/**
 * The previous instance's log file: `<restartCount - 1>.log` when present, else the highest-numbered
 * `N.log` below restartCount (the kubelet may have garbage-collected one); undefined when none.
 */
export function previousContainerLog(root: string, pod: PodLogRef, container: string, restartCount: number): string | undefined {
  if (restartCount < 1) return undefined;
  const dir = `${podLogDir(root, pod)}/${container}`;
  const expected = `${dir}/${restartCount - 1}.log`;
  if (fs.existsSync(expected)) return expected;
  let best: number | undefined;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
  for (const name of names) {
    const match = /^(\d+)\.log$/.exec(name);
    if (!match?.[1]) continue;
    const n = Number(match[1]);
    if (n < restartCount && (best === undefined || n > best)) best = n;
  }
  return best === undefined ? undefined : `${dir}/${best}.log`;
}

/** Messages of CRI-format lines, partial (P) entries joined per stream; other lines are skipped. */
export function parseCriMessages(text: string): string[] {
  const messages: string[] = [];
  const partial = new Map<string, string>();
  for (const line of text.split('\n')) {
    const first = line.indexOf(' ');
    const second = line.indexOf(' ', first + 1);
    if (first < 0 || second < 0) continue;
    const stream = line.slice(first + 1, second);
    const third = line.indexOf(' ', second + 1);
    const tag = third < 0 ? line.slice(second + 1) : line.slice(second + 1, third);
    const message = third < 0 ? '' : line.slice(third + 1);
    if (stream !== 'stdout' && stream !== 'stderr') continue;
    // Tags may grow ':'-separated flags; the first is P or F.
    const kind = tag.split(':')[0];
    const joined = (partial.get(stream) ?? '') + message;
    if (kind === 'P') {
      partial.set(stream, joined);
      continue;
    }
    partial.delete(stream);
    messages.push(joined);
  }
  return messages;
}

/**
 * Replaces what looks like a file path or URL: tokens starting with `/`, `~/`, `./`, `../`, tokens with
 * `://`, and tokens with two or more `/` or a file extension after one. Go package names such as
 * `runtime/cgo` and phrases such as `process/resource` stay readable. Go's log timestamp prefix
 * (`2026/11/27 20:25:46`) is dropped first.
 */
export function redactPaths(line: string): string {
  const withoutTimestamp = line.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d(?:\.\d+)? /, '');
  return withoutTimestamp.replace(/[^\s'"`()[\]{}<>,;=]*\/[^\s'"`()[\]{}<>,;=]*/g, (token) => {
    const core = token.replace(/:+$/, '');
    const trailer = token.slice(core.length);
    const slashes = core.split('/').length - 1;
    const looksLikePath =
      /^(?:\/|~\/|\.{1,2}\/)/.test(core) || core.includes('://') || slashes >= 2 || /\/[^/]*\.[A-Za-z0-9]+$/.test(core);
    return looksLikePath ? `<path>${trailer}` : token;
  });
}

/** The last signature line among `messages`. */
export function findLastSignature(messages: readonly string[]): LogSignature | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i] ?? '';
    for (const { kind, pattern } of CRASH_SIGNATURES) {
      if (pattern.test(message)) return { kind, line: redactPaths(message.trim()).slice(0, REPORT_LIMITS.signature) };
    }
  }
  return undefined;
}

function readTail(file: string, bytes: number): { text: string; wholeFile: boolean } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    let done = 0;
    while (done < buffer.length) {
      const n = fs.readSync(fd, buffer, done, buffer.length - done, start + done);
      if (n === 0) break;
      done += n;
    }
    let text = buffer.toString('utf8', 0, done);
    // A tail that starts mid-line: drop the fragment (its CRI prefix is cut off).
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    return { text, wholeFile: start === 0 };
  } finally {
    fs.closeSync(fd);
  }
}

export interface TailOptions {
  /** Most bytes read from the end of the file. */
  maxBytes?: number;
}

const FIRST_TAIL_BYTES = 64 * 1024;

/** The last crash signature in one CRI log file; undefined when the file is gone or has none. */
export function readLogSignature(file: string, options: TailOptions = {}): LogSignature | undefined {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  for (const bytes of [Math.min(FIRST_TAIL_BYTES, maxBytes), maxBytes]) {
    const tail = readTail(file, bytes);
    if (tail === undefined) return undefined;
    const signature = findLastSignature(parseCriMessages(tail.text));
    if (signature || tail.wholeFile || bytes === maxBytes) return signature;
  }
  return undefined;
}

/** The crash signature of a container's previous instance, if its log is there and has one. */
export function readPreviousLogSignature(
  root: string,
  pod: PodLogRef,
  container: string,
  restartCount: number,
  options: TailOptions = {},
): LogSignature | undefined {
  const file = previousContainerLog(root, pod, container, restartCount);
  return file === undefined ? undefined : readLogSignature(file, options);
}
