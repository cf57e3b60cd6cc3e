// Durations on command lines and in chart values are written as Kubernetes and Go write them (`10m`,
// `1h30m`, `500ms`), so operators do not have to learn a second notation.

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration (`90s`, `10m`, `1h30m`, `250ms`) into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) {
    throw new Error(`invalid duration "${text}": use a number with a unit, e.g. 30s, 10m, 1h30m, 500ms`);
  }
  let total = 0;
  for (const part of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(part[1]) * (UNIT_MS[part[2] ?? ''] ?? Number.NaN);
  }
  return Math.round(total);
}
