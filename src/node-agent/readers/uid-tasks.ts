// Tasks (threads) per real UID on the whole node. RLIMIT_NPROC is checked in copy_process() against
// every task of the user (kernel/cred.c counts CLONE_THREAD too), node-wide, not per pod, and the kernel
// exposes no per-UID count: the only way is /proc/*/status. That is one read per process on the node,
// so the scan does it only when a container process has a finite RLIMIT_NPROC and a non-root UID.
// Counted by UID as seen from the reader's user namespace; pods with their own user namespace
// (hostUsers: false) have distinct host UIDs, so they do not share a count, as in the kernel.
import fs from 'node:fs';
import type { ScratchReader } from './proc-file.ts';
import { parseProcStatus } from './proc-status.ts';

/** Threads per real UID, for the UIDs asked about only. Processes that vanish mid-scan are skipped. */
export function countTasksByUid(
  reader: ScratchReader,
  procRoot: string,
  uids: ReadonlySet<number>,
): Map<number, number> {
  const counts = new Map<number, number>();
  for (const uid of uids) counts.set(uid, 0);
  if (uids.size === 0) return counts;
  for (const name of fs.readdirSync(procRoot)) {
    const first = name.charCodeAt(0);
    if (first < 0x30 || first > 0x39) continue;
    const text = reader.readText(`${procRoot}/${name}/status`);
    if (text === undefined) continue;
    const status = parseProcStatus(text);
    if (!status || !uids.has(status.realUid)) continue;
    counts.set(status.realUid, (counts.get(status.realUid) ?? 0) + status.threads);
  }
  return counts;
}
