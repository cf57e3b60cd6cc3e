// Kubernetes resource quantities parsed the way the API server parses them: a line-by-line port of
// k8s.io/apimachinery/pkg/api/resource.ParseQuantity (v0.37), including its oddities — "+", "-" and "."
// are valid zeros, "1.G" is accepted, exponents wrap to int32, values beyond nano precision round away
// from zero, and only binary-SI values are capped at 2^63-1. test/unit/policy-quantity-oracle.test.ts
// checks it against the Go parser itself.

export type QuantityFormat = 'DecimalSI' | 'BinarySI' | 'DecimalExponent';

export interface Quantity {
  /** The exact value in units of 10^-9 (every parsed quantity is a whole number of nano units). */
  nano: bigint;
  format: QuantityFormat;
  /**
   * The input string when ParseQuantity keeps it as the quantity's String() (it does for inputs already
   * in canonical-looking form, so "01" and "1e0" print as themselves); undefined when String() is derived.
   */
  keptString?: string;
}

const NANO_PER_MILLI = 1_000_000n;
const NANO_PER_UNIT = 1_000_000_000n;
const MAX_INT64 = (1n << 63n) - 1n;
const MIN_INT64 = -(1n << 63n);
/**
 * Values beyond 10^80 units are clamped: no resource comparison cares, and a quantity like "1e2000000000"
 * (legal: the exponent is an int32) must not allocate a billion-digit bigint.
 */
const MAX_DECIMAL_DIGITS = 80;
const CLAMP_NANO = 10n ** BigInt(MAX_DECIMAL_DIGITS + 9);

const SUFFIX_LETTERS = 'eEinumkKMGTP';

interface SuffixMeaning {
  base: 2 | 10;
  exponent: number;
  format: QuantityFormat;
}

const FIXED_SUFFIXES: ReadonlyMap<string, SuffixMeaning> = new Map<string, SuffixMeaning>([
  ['', { base: 10, exponent: 0, format: 'DecimalSI' }],
  ['n', { base: 10, exponent: -9, format: 'DecimalSI' }],
  ['u', { base: 10, exponent: -6, format: 'DecimalSI' }],
  ['m', { base: 10, exponent: -3, format: 'DecimalSI' }],
  ['k', { base: 10, exponent: 3, format: 'DecimalSI' }],
  ['M', { base: 10, exponent: 6, format: 'DecimalSI' }],
  ['G', { base: 10, exponent: 9, format: 'DecimalSI' }],
  ['T', { base: 10, exponent: 12, format: 'DecimalSI' }],
  ['P', { base: 10, exponent: 15, format: 'DecimalSI' }],
  ['E', { base: 10, exponent: 18, format: 'DecimalSI' }],
  ['Ki', { base: 2, exponent: 10, format: 'BinarySI' }],
  ['Mi', { base: 2, exponent: 20, format: 'BinarySI' }],
  ['Gi', { base: 2, exponent: 30, format: 'BinarySI' }],
  ['Ti', { base: 2, exponent: 40, format: 'BinarySI' }],
  ['Pi', { base: 2, exponent: 50, format: 'BinarySI' }],
  ['Ei', { base: 2, exponent: 60, format: 'BinarySI' }],
]);

const INT64_DECIMAL = /^[+-]?[0-9]+$/;

function interpretSuffix(suffix: string): SuffixMeaning | undefined {
  const fixed = FIXED_SUFFIXES.get(suffix);
  if (fixed) return fixed;
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    // strconv.ParseInt(suffix[1:], 10, 64), then int32(parsed): Go truncates to 32 bits.
    const digits = suffix.slice(1);
    if (!INT64_DECIMAL.test(digits)) return undefined;
    const parsed = BigInt(digits);
    if (parsed > MAX_INT64 || parsed < MIN_INT64) return undefined;
    return { base: 10, exponent: Number(BigInt.asIntN(32, parsed)), format: 'DecimalExponent' };
  }
  return undefined;
}

interface QuantityParts {
  positive: boolean;
  /** What inf.Dec.SetString would read: sign, integer digits, optional point and fraction. */
  value: string;
  num: string;
  denom: string;
  suffix: string;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Port of parseQuantityString: splits "-1.5Gi" into sign, number and suffix, or undefined. */
function splitQuantity(str: string): QuantityParts | undefined {
  let positive = true;
  let pos = 0;
  const end = str.length;
  if (str[0] === '-') {
    positive = false;
    pos++;
  } else if (str[0] === '+') {
    pos++;
  }
  // Leading zeros; a string of only zeros (or only a sign) is the number 0.
  for (;;) {
    if (pos >= end) return { positive, value: '0', num: '0', denom: '', suffix: '' };
    if (str[pos] !== '0') break;
    pos++;
  }
  let num: string;
  let i = pos;
  while (i < end && isDigit(str.charCodeAt(i))) i++;
  if (i >= end) return { positive, value: str, num: str.slice(pos), denom: '', suffix: '' };
  num = str.slice(pos, i);
  pos = i;
  if (num.length === 0) num = '0';

  let denom = '';
  if (str[pos] === '.') {
    pos++;
    i = pos;
    while (i < end && isDigit(str.charCodeAt(i))) i++;
    if (i >= end) return { positive, value: str, num, denom: str.slice(pos), suffix: '' };
    denom = str.slice(pos, i);
    pos = i;
  }
  const value = str.slice(0, pos);

  const suffixStart = pos;
  i = pos;
  while (i < end && SUFFIX_LETTERS.includes(str[i] as string)) i++;
  if (i >= end) return { positive, value, num, denom, suffix: str.slice(suffixStart) };
  pos = i;
  if (str[pos] === '-' || str[pos] === '+') pos++;
  i = pos;
  while (i < end && isDigit(str.charCodeAt(i))) i++;
  if (i >= end) return { positive, value, num, denom, suffix: str.slice(suffixStart) };
  return undefined;
}

function clamp(nano: bigint): bigint {
  if (nano > CLAMP_NANO) return CLAMP_NANO;
  if (nano < -CLAMP_NANO) return -CLAMP_NANO;
  return nano;
}

function pow10(exponent: number): bigint {
  return 10n ** BigInt(exponent);
}

/** ceil(a / b) for a ≥ 0, b > 0. */
function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** Port of ParseQuantity. Returns undefined where the API server would reject the string. */
export function parseQuantityUncached(str: string): Quantity | undefined {
  if (str.length === 0) return undefined;
  if (str === '0') return { nano: 0n, format: 'DecimalSI', keptString: str };
  const parts = splitQuantity(str);
  if (!parts) return undefined;
  const meaning = interpretSuffix(parts.suffix);
  if (!meaning) return undefined;
  const { positive, value, num, denom } = parts;
  let format = meaning.format;

  // The int64 fast path: exact, no rounding, no cap.
  let precision: number;
  let scale = 0;
  let mantissa = 1n;
  if (format === 'BinarySI') {
    if (meaning.exponent >= 0 && denom.length === 0) {
      mantissa = 1n << BigInt(meaning.exponent);
      // Go: 15 - len(num) - int32(float32(exponent)*3/10) - 1
      precision = 15 - num.length - Math.trunc(Math.fround(meaning.exponent * 3) / 10) - 1;
    } else {
      precision = -1;
    }
  } else {
    scale = meaning.exponent;
    precision = 18 - (num.length + denom.length);
  }
  if (precision >= 0) {
    scale -= denom.length;
    if (scale >= -9) {
      const magnitude = BigInt(num + denom) * mantissa;
      if (magnitude <= MAX_INT64) {
        const signed = positive ? magnitude : -magnitude;
        const shifted = num + denom;
        const kept = format === 'BinarySI'
          ? meaning.exponent % 10 === 0 && (magnitude / mantissa) % 8n !== 0n
          : scale % 3 === 0 && !shifted.endsWith('000') && shifted[0] !== '0';
        const keptString = kept ? str : undefined;
        if (scale > MAX_DECIMAL_DIGITS) return { nano: clamp(signed * CLAMP_NANO), format, keptString };
        return { nano: signed * pow10(scale + 9), format, keptString };
      }
    }
  }

  // The inf.Dec slow path: the value string must hold at least one digit.
  const point = value.indexOf('.');
  const digits = value.replace(/[+.-]/g, '');
  if (!/[0-9]/.test(digits)) return undefined;
  const decimalPlaces = point >= 0 ? value.length - point - 1 : 0;
  const unscaled = BigInt(digits);
  // |amount| = unscaled × base^exponent × 10^-decimalPlaces, rounded up to a whole nano unit.
  let nanoMagnitude: bigint;
  if (meaning.base === 10) {
    const tenPower = meaning.exponent - decimalPlaces + 9;
    if (unscaled === 0n) nanoMagnitude = 0n;
    else if (tenPower > MAX_DECIMAL_DIGITS + 9) nanoMagnitude = CLAMP_NANO;
    else if (tenPower >= 0) nanoMagnitude = unscaled * pow10(tenPower);
    else if (-tenPower > 400) nanoMagnitude = 1n;
    else nanoMagnitude = ceilDiv(unscaled, pow10(-tenPower));
  } else {
    const scaled = unscaled * (1n << BigInt(meaning.exponent)) * NANO_PER_UNIT;
    nanoMagnitude = ceilDiv(scaled, pow10(decimalPlaces));
  }
  if (format === 'BinarySI' && nanoMagnitude > MAX_INT64 * NANO_PER_UNIT) nanoMagnitude = MAX_INT64 * NANO_PER_UNIT;
  if (format === 'BinarySI' && nanoMagnitude > 0n && nanoMagnitude < NANO_PER_UNIT) format = 'DecimalSI';
  const negative = !positive && nanoMagnitude !== 0n;
  return { nano: clamp(negative ? -nanoMagnitude : nanoMagnitude), format };
}

// Policies and pods repeat the same few quantities ("500m", "2", "1Gi"); a small cache keeps parsing off
// the admission hot path. It is cleared when full rather than kept in LRU order: cheaper, and enough.
const CACHE_LIMIT = 4096;
const cache = new Map<string, Quantity | null>();

export function parseQuantity(str: string): Quantity | undefined {
  const hit = cache.get(str);
  if (hit !== undefined) return hit ?? undefined;
  const parsed = parseQuantityUncached(str);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(str, parsed ?? null);
  return parsed;
}

/**
 * A quantity as it arrives in JSON: strings are trimmed (Quantity.UnmarshalJSON does), numbers are
 * written the way the API server receives them from kubectl's YAML → JSON conversion.
 */
export function parseQuantityValue(value: unknown): Quantity | undefined {
  if (typeof value === 'string') return parseQuantity(value.trim());
  if (typeof value === 'number' && Number.isFinite(value)) return parseQuantity(String(value));
  return undefined;
}

/** ceil(q × 1000), the figure Quantity.MilliValue() returns for in-range values. */
export function milliValue(q: Quantity): bigint {
  const m = q.nano / NANO_PER_MILLI;
  return q.nano > 0n && q.nano % NANO_PER_MILLI !== 0n ? m + 1n : m;
}

const NUMBER_SAFE_NANO = 1_000_000_000_000_000n;

/** ceil(q) in whole units (cores, for CPU): what GOMAXPROCS must not exceed. */
export function ceilUnits(q: Quantity): number {
  // Number fast path: exact below 10^15 nano (a million cores), and BigInt division is slow.
  if (q.nano >= 0n && q.nano < NUMBER_SAFE_NANO) return Math.ceil(Number(q.nano) / 1e9);
  const whole = q.nano / NANO_PER_UNIT;
  const rounded = q.nano > 0n && q.nano % NANO_PER_UNIT !== 0n ? whole + 1n : whole;
  return rounded > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(rounded);
}

/** The quantity in units as a float, for messages and ratios only. */
/**
 * Whether the API server accepts this as a CPU resourceFieldRef divisor: validation compares
 * divisor.String() with "1" and "1m", so "1000m" and "0.001" pass but "1e-3", "01" and "1e0" (each
 * printed as written) do not.
 */
export function isAcceptedCpuDivisor(q: Quantity): boolean {
  if (q.keptString !== undefined) return q.keptString === '1' || q.keptString === '1m';
  if (q.nano === NANO_PER_UNIT) return true;
  return q.nano === NANO_PER_MILLI && q.format !== 'DecimalExponent';
}

/** The divisor "1m" (however written): GOMAXPROCS would be given millicores. */
export function isMilliDivisor(q: Quantity): boolean {
  return q.nano === NANO_PER_MILLI;
}
