// --fix: every finding's RFC 6902 patch applied to the YAML tree it came from, so comments, key order
// and untouched documents survive. Removals run last, highest index first, so earlier list indices in
// other patches stay valid.
import type { Operation } from 'rfc6902';
import { applyPatch } from 'rfc6902';
import type { Document } from 'yaml';
import { isSeq } from 'yaml';
import type { InputDocument } from './documents.ts';
import type { CheckedDocument } from './run.ts';

function pathOf(pointer: string): string[] {
  return pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function compareRemovals(a: Operation, b: Operation): number {
  const pa = pathOf(a.path);
  const pb = pathOf(b.path);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (Number.isInteger(nx) && Number.isInteger(ny)) return ny - nx;
    return x < y ? 1 : -1;
  }
  return pb.length - pa.length;
}

/** Orders a document's operations: everything but removals first, then removals from the end. */
export function orderOperations(ops: readonly Operation[]): Operation[] {
  const removals = ops.filter((op) => op.op === 'remove').sort(compareRemovals);
  return [...ops.filter((op) => op.op !== 'remove'), ...removals];
}

function applyToYaml(doc: Document, op: Operation): void {
  const path = pathOf(op.path);
  const value = 'value' in op ? (op as { value: unknown }).value : undefined;
  switch (op.op) {
    case 'add': {
      const last = path.at(-1);
      const parent = path.slice(0, -1);
      const parentNode: unknown = doc.getIn(parent, true);
      if (last === '-') doc.addIn(parent, doc.createNode(value));
      else if (isSeq(parentNode)) parentNode.items.splice(Number(last), 0, doc.createNode(value));
      else doc.setIn(path, doc.createNode(value));
      return;
    }
    case 'replace':
      doc.setIn(path, doc.createNode(value));
      return;
    case 'remove':
      doc.deleteIn(path);
      return;
    default:
      throw new Error(`unsupported patch operation ${op.op}`);
  }
}

/** Applies every patch; returns the whole input, every document, as multi-document YAML. */
export function applyFixes(documents: readonly InputDocument[], results: readonly CheckedDocument[]): string {
  const opsByYaml = new Map<Document, Operation[]>();
  for (const result of results) {
    const prefix = result.source.pointer;
    for (const finding of result.decision.findings) {
      for (const op of finding.patch ?? []) {
        const list = opsByYaml.get(result.source.yaml) ?? [];
        list.push({ ...op, path: prefix + op.path });
        opsByYaml.set(result.source.yaml, list);
      }
    }
  }
  for (const [doc, ops] of opsByYaml) {
    const ordered = orderOperations(ops);
    // Check the patch on plain data first; only a patch that applies cleanly touches the YAML tree.
    const plain: unknown = doc.toJS();
    const errors = applyPatch(plain, ordered).filter((r) => r !== null);
    if (errors.length > 0) throw new Error(`a fix did not apply: ${errors.map((e) => e?.message).join('; ')}`);
    try {
      for (const op of ordered) applyToYaml(doc, op);
    } catch {
      doc.contents = doc.createNode(plain);
    }
  }
  const seen = new Set<Document>();
  const parts: string[] = [];
  for (const input of documents) {
    if (seen.has(input.yaml)) continue;
    seen.add(input.yaml);
    const text = input.yaml.toString();
    parts.push(text.startsWith('---') ? text : `---\n${text}`);
  }
  return parts.join('');
}
