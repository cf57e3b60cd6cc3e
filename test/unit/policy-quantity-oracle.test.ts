// Cross-checks src/policy/quantity.ts against the API server's own parser (k8s.io/apimachinery's
// ParseQuantity, built by hack/build-quantity-oracle.sh) over thousands of generated quantities: the
// validity, the exact value, the milli-value, and whether the canonical form is one the CPU-divisor
// validation accepts ("1" or "1m"). Exponents stay within ±40: Go's parser takes super-linear time on
// large negative ones (ParseQuantity("1e-10000000") took 1.4 s here), and src/policy clamps beyond 10^80.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAcceptedCpuDivisor, milliValue, parseQuantityUncached } from '../../src/policy/quantity.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function buildOracle(): string | undefined {
  try {
    const out = execFileSync('bash', ['hack/build-quantity-oracle.sh'], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
    return out.trim().split('\n').at(-1);
  } catch (error) {
    if (process.env.REQUIRE_E2E === '1') throw error;
    return undefined;
  }
}

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible input. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUFFIXES = ['', '', '', 'm', 'm', 'n', 'u', 'k', 'M', 'G', 'T', 'P', 'E', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei',
  'e3', 'E3', 'e-3', 'e+2', 'e0', 'e-9', 'e-12', 'e18', 'e', 'i', 'K', 'mi', 'ee3', 'e3.5', 'e-', 'x', ' ', 'e40', 'e-40', 'E-7'];

function generateQuantities(count: number): string[] {
  const random = prng(20261127);
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const digits = (max: number): string => {
    const length = Math.floor(random() * max);
    let s = '';
    for (let i = 0; i < length; i++) s += String(Math.floor(random() * 10));
    return s;
  };
  const fixed = ['0', '1', '1000m', '1001m', '999m', '1m', '0.001', '1e-3', '1e0', '1000e-3', '0.0009765625Ki', '+', '-',
    '.', '-0', '+0', '00', '.5', '5.', '1.G', '.n', '.5n', '1.5n', '0.0000000001', '9Ei', '8Ei', '9223372036854775807',
    '9223372036854775808', '9223372036854775807Ki', '-9223372036854775808', '1e4294967296', '1e4294967297', '', ' 1', '1 ', 'abc', '1.2.3', '--1', '+-1', '1Ki', '0.5Ki', '0.001Ki', '1024', '100Mi', '0.1'];
  const out = [...fixed];
  while (out.length < count) {
    const sign = pick(['', '', '', '', '-', '+']);
    const integer = digits(random() < 0.1 ? 24 : 6);
    const fraction = random() < 0.4 ? `.${digits(random() < 0.1 ? 14 : 5)}` : '';
    const zeros = random() < 0.1 ? '000' : '';
    out.push(`${sign}${zeros}${integer}${fraction}${pick(SUFFIXES)}`);
  }
  return out;
}

describe('quantities the Go parser is slow on', () => {
  it('are parsed in constant time with the value Go computes (rounded up to 1n)', () => {
    const start = performance.now();
    expect(parseQuantityUncached('1e-2147483648')?.nano).toBe(1n);
    expect(parseQuantityUncached('1e-10000000')?.nano).toBe(1n);
    expect(parseQuantityUncached('1e2147483647')?.nano).toBe(10n ** 89n);
    expect(performance.now() - start).toBeLessThan(50);
  });
});

describe('quantity parsing against apimachinery ParseQuantity', () => {
  const oracle = buildOracle();
  it.skipIf(!oracle)('agrees on validity, exact value, milli-value and divisor acceptance', () => {
    const inputs = generateQuantities(20_000).filter((s) => !s.includes('\n'));
    const output = execFileSync(oracle as string, { input: inputs.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 26 });
    const lines = output.trimEnd().split('\n');
    expect(lines).toHaveLength(inputs.length);
    const mismatches: string[] = [];
    let valid = 0;
    inputs.forEach((input, index) => {
      const [status, canonical, nano, milli] = (lines[index] as string).split(' ');
      const ours = parseQuantityUncached(input);
      if (status === 'err') {
        if (ours) mismatches.push(`${JSON.stringify(input)}: Go rejects, we read ${ours.nano}n`);
        return;
      }
      valid++;
      if (!ours) {
        mismatches.push(`${JSON.stringify(input)}: Go reads ${nano}n, we reject`);
        return;
      }
      if (ours.nano.toString() !== nano) mismatches.push(`${JSON.stringify(input)}: nano Go ${nano} ours ${ours.nano}`);
      if (milliValue(ours).toString() !== milli) mismatches.push(`${JSON.stringify(input)}: milli Go ${milli} ours ${milliValue(ours)}`);
      const goAccepts = canonical === '1' || canonical === '1m';
      if (isAcceptedCpuDivisor(ours) !== goAccepts) mismatches.push(`${JSON.stringify(input)}: divisor canonical ${canonical}`);
    });
    expect(mismatches.slice(0, 20)).toEqual([]);
    // The generator must exercise both sides: thousands of valid and of invalid strings.
    expect(valid).toBeGreaterThan(5_000);
    expect(inputs.length - valid).toBeGreaterThan(1_000);
  });
});
