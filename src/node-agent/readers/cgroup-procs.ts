// Processes of a cgroup: cgroup.procs lists the TGIDs of the cgroup's own members only (v1 and v2), and
// on v2 a runtime may put the payload in a sub-cgroup (crun: `crio-<id>.scope/container`), so there the
// directory's descendants are read as well. On v1 no runtime nests a container's processes, and the
// listing would cost a readdir per container per tick for nothing.
import fs from 'node:fs';
import type { ScratchReader } from './proc-file.ts';
import { isGone } from './proc-file.ts';

/** PIDs in `dir` and its descendants, or undefined when `dir` itself is gone. */
export function readCgroupProcs(
  reader: ScratchReader,
  dir: string,
  withDescendants: boolean,
  into: number[] = [],
): number[] | undefined {
  const bytes = reader.read(`${dir}/cgroup.procs`);
  if (bytes === undefined) return undefined;
  let value = -1;
  for (const byte of bytes) {
    if (byte >= 0x30 && byte <= 0x39) value = (value < 0 ? 0 : value * 10) + (byte - 0x30);
    else if (value >= 0) {
      into.push(value);
      value = -1;
    }
  }
  if (value >= 0) into.push(value);
  if (!withDescendants) return into;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return into;
    throw error;
  }
  for (const entry of entries) if (entry.isDirectory()) readCgroupProcs(reader, `${dir}/${entry.name}`, true, into);
  return into;
}
