// Input documents: multi-document YAML (and `kind: List`) parsed into objects, keeping each document's
// YAML tree so --fix can edit it in place and keep comments and key order.
import type { Document } from 'yaml';
import { isMap, isSeq, parseAllDocuments } from 'yaml';

export class BadInput extends Error {}

export interface InputDocument {
  file: string;
  index: number;
  kind: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  object: Record<string, unknown>;
  /** The YAML document this object came from (a whole `kind: List` for its items). */
  yaml: Document;
  /** JSON pointer of this object inside `yaml`: "" for a document, "/items/3" for a List item. */
  pointer: string;
}

function describe(object: Record<string, unknown>): { kind: string; name: string; namespace: string; labels: Record<string, string> } {
  const kind = object.kind;
  if (typeof kind !== 'string' || kind.length === 0) throw new BadInput('a document has no kind');
  const metadata = (typeof object.metadata === 'object' && object.metadata !== null ? object.metadata : {}) as Record<string, unknown>;
  const name = typeof metadata.name === 'string' ? metadata.name : typeof metadata.generateName === 'string' ? `${metadata.generateName}*` : '';
  const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  const labels: Record<string, string> = {};
  if (typeof metadata.labels === 'object' && metadata.labels !== null) {
    for (const [k, v] of Object.entries(metadata.labels)) if (typeof v === 'string') labels[k] = v;
  }
  return { kind, name, namespace, labels };
}

export function parseDocuments(file: string, text: string): InputDocument[] {
  const out: InputDocument[] = [];
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new BadInput(`${file}: not YAML`);
  documents.forEach((doc, index) => {
    if (doc.errors.length > 0) throw new BadInput(`${file}#${index}: ${doc.errors[0]?.message.split('\n')[0] ?? 'invalid YAML'}`);
    if (doc.contents === null) return;
    if (!isMap(doc.contents)) throw new BadInput(`${file}#${index}: a document must be a mapping`);
    const object = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
    const { kind, name, namespace, labels } = describe(object);
    if (kind === 'List' || kind.endsWith('List')) {
      const items = doc.get('items');
      if (!isSeq(items)) throw new BadInput(`${file}#${index}: a List without items`);
      ((object.items ?? []) as unknown[]).forEach((item, position) => {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new BadInput(`${file}#${index}: a List item is not an object`);
        const described = describe(item as Record<string, unknown>);
        out.push({ file, index, ...described, object: item as Record<string, unknown>, yaml: doc, pointer: `/items/${position}` });
      });
      return;
    }
    out.push({ file, index, kind, name, namespace, labels, object, yaml: doc, pointer: '' });
  });
  return out;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** `k=v,k2=v2` → labels; throws BadInput on anything kubectl would reject. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text.trim() === '') return labels;
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new BadInput(`--namespace-labels: ${JSON.stringify(pair)} is not key=value`);
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!LABEL_KEY.test(key) || key.length > 316) throw new BadInput(`--namespace-labels: invalid key ${JSON.stringify(key)}`);
    if (!LABEL_VALUE.test(value) || value.length > 63) throw new BadInput(`--namespace-labels: invalid value ${JSON.stringify(value)}`);
    labels[key] = value;
  }
  return labels;
}
