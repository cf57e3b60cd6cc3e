// Mechanical fixes as RFC 6902 JSON Patches, relative to the admitted object. The diff of one small
// sub-object is computed by rfc6902's createPatch and re-rooted at that sub-object's pointer, so every
// patch is minimal and valid against the object the finding came from.
import type { Operation } from 'rfc6902';
import { createPatch } from 'rfc6902';
import type { ContainerFacts } from './facts.ts';
import { asArray } from './shape.ts';

/** createPatch(before, after), with every path prefixed by `pointer`. */
export function diffAt(pointer: string, before: unknown, after: unknown): Operation[] {
  return createPatch(before, after).map((op) => {
    const moved = op as Operation & { from?: string };
    const rerooted = { ...op, path: pointer + op.path } as Operation & { from?: string };
    if (moved.from !== undefined) rerooted.from = pointer + moved.from;
    return rerooted;
  });
}

/** Replaces env entry `index` of the container with `entry`. */
export function replaceEnvEntry(container: ContainerFacts, index: number, entry: Record<string, unknown>): Operation[] {
  const before = asArray(container.container.env)[index];
  return diffAt(`${container.pointer}/env/${index}`, before, entry);
}

/** Appends an env entry (creating the list when the container has none). */
export function addEnvEntry(container: ContainerFacts, entry: Record<string, unknown>): Operation[] {
  if (!Array.isArray(container.container.env)) return [{ op: 'add', path: `${container.pointer}/env`, value: [entry] }];
  return [{ op: 'add', path: `${container.pointer}/env/-`, value: entry }];
}

export function removeEnvEntry(container: ContainerFacts, index: number): Operation[] {
  return [{ op: 'remove', path: `${container.pointer}/env/${index}` }];
}

/** The GOMAXPROCS entry that follows the container's own CPU limit, rounded up. */
export const GOMAXPROCS_FROM_LIMIT: Readonly<Record<string, unknown>> = {
  name: 'GOMAXPROCS',
  valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } },
};
