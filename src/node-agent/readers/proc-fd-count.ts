// Open fds of a process, from /proc/PID/fd. Since Linux 6.2 (fs/proc/fd.c proc_readfd_count) the
// directory's st_size is the number of open fds: one stat, no matter how many fds. Older kernels report
// 0, and synthetic fixture trees report the size of an ordinary directory, so the caller says which
// method to use (detectFdCountMethod picks one for a real /proc). readdir costs about 1 µs per fd.
import fs from 'node:fs';
import { isGone } from './proc-file.ts';

export type FdCountMethod = 'stat' | 'readdir';

/**
 * Whether stat(/proc/PID/fd).st_size counts fds on this kernel. Compares with a readdir of our own
 * fd directory (the readdir holds one extra fd of its own while listing, hence the tolerance).
 */
export function detectFdCountMethod(procRoot: string): FdCountMethod {
  try {
    const bySize = fs.statSync(`${procRoot}/self/fd`).size;
    const byListing = fs.readdirSync(`${procRoot}/self/fd`).length;
    return bySize > 0 && Math.abs(bySize - byListing) <= 1 ? 'stat' : 'readdir';
  } catch {
    return 'readdir';
  }
}

/**
 * The number of open fds, or undefined when the process is gone. Threads share the fd table, so this is
 * per process (TGID). With 'stat', a size of 0 is re-checked by readdir: it is what a kernel without
 * the count reports, and a process with no fds lists nothing, so the re-check costs nearly nothing.
 */
export function readFdCount(procRoot: string, pid: number, method: FdCountMethod): number | undefined {
  const dir = `${procRoot}/${pid}/fd`;
  if (method === 'stat') {
    const stats = fs.statSync(dir, { throwIfNoEntry: false });
    if (stats === undefined) return undefined;
    if (stats.size > 0) return stats.size;
  }
  try {
    return fs.readdirSync(dir).length;
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}
