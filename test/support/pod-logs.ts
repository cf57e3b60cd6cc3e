// Plays the container runtime's log writer for tests and the demo: container output in CRI format,
//   <RFC3339Nano time> <stdout|stderr> <P|F> <message>
// (lines over 16 KiB split into P parts, as containerd does) under the kubelet's layout
//   <root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log
// either written at once from text, or streamed from a running process's stdout and stderr.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface PodLogTarget {
  namespace: string;
  name: string;
  uid: string;
}

export const CRI_LINE_MAX = 16 * 1024;

function criTime(): string {
  // Nanosecond precision as the runtime writes it (the milliseconds are what we have).
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** CRI-format lines for `text` on one stream, long lines split into P parts. */
export function criLines(stream: 'stdout' | 'stderr', text: string, time = '2026-11-27T20:00:00.000000000Z'): string {
  let out = '';
  for (const line of text.split('\n')) {
    for (let at = 0; at + CRI_LINE_MAX < line.length; at += CRI_LINE_MAX) out += `${time} ${stream} P ${line.slice(at, at + CRI_LINE_MAX)}\n`;
    out += `${time} ${stream} F ${line.slice(Math.floor(Math.max(0, line.length - 1) / CRI_LINE_MAX) * CRI_LINE_MAX)}\n`;
  }
  return out;
}

export function containerLogPath(root: string, pod: PodLogTarget, container: string, instance: number): string {
  return path.join(root, `${pod.namespace}_${pod.name}_${pod.uid}`, container, `${instance}.log`);
}

/** Writes one instance's whole log. */
export function writeContainerLog(root: string, pod: PodLogTarget, container: string, instance: number, content: string): string {
  const file = containerLogPath(root, pod, container, instance);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/**
 * Appends a running process's stdout and stderr to the instance's log as they come, line by line;
 * resolves when the process has exited and both streams are drained, with its exit code (128 + signal
 * number for a signal, as the runtime reports it).
 */
export function streamContainerLog(root: string, pod: PodLogTarget, container: string, instance: number, child: ChildProcess): Promise<number> {
  const file = containerLogPath(root, pod, container, instance);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a');
  const drained: Promise<void>[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const source = child[stream];
    if (!source) continue;
    const lines = createInterface({ input: source });
    lines.on('line', (line) => fs.writeSync(fd, criLines(stream, line, criTime())));
    drained.push(new Promise((resolve) => lines.once('close', resolve)));
  }
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      const signals: Record<string, number> = { SIGKILL: 9, SIGABRT: 6, SIGSEGV: 11, SIGTERM: 15 };
      resolve(code ?? 128 + (signal ? (signals[signal] ?? 0) : 0));
    });
  });
  return Promise.all([exited, ...drained]).then(([code]) => {
    fs.closeSync(fd);
    return code;
  });
}
