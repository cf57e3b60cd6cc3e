// Defensive readers for objects that arrive as untyped JSON (admission requests, YAML files): the engine
// must never throw on a malformed spec, so every field is read through these instead of trusted.

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

const EMPTY: readonly unknown[] = [];

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : EMPTY;
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asStringRecord(value: unknown): Readonly<Record<string, string>> | undefined {
  const record = asRecord(value);
  if (!record) return undefined;
  for (const key in record) if (typeof record[key] !== 'string') return undefined;
  return record as Record<string, string>;
}

export function asInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

/** RFC 6901 escaping for one path segment ("app.kubernetes.io/name" → "app.kubernetes.io~1name"). */
export function pointerSegment(segment: string | number): string {
  return typeof segment === 'number' ? String(segment) : segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
