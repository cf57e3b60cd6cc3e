// Environment expansion checked against the kubelet's own test vectors: the table of
// k8s.io/kubernetes third_party/forked/golang/expansion/expand_test.go, read at test time from the Go
// module cache (the control-plane build downloads k8s.io/kubernetes at the version of hack/versions.env).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expand } from '../../src/policy/env.ts';
import { requirement } from '../support/require.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const k8sVersion = /K8S_VERSION=(\S+)/.exec(readFileSync(join(repoRoot, 'hack/versions.env'), 'utf8'))?.[1] ?? '';

function upstreamTestFile(): string | undefined {
  try {
    const cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
    const path = join(cache, `k8s.io/kubernetes@${k8sVersion}`, 'third_party/forked/golang/expansion/expand_test.go');
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

const testFile = upstreamTestFile();
const CONTEXT: Record<string, string> = { VAR_A: 'A', VAR_B: 'B', VAR_C: 'C', VAR_REF: '$(VAR_A)', VAR_EMPTY: '' };

describe.runIf(requirement(testFile !== undefined, `k8s.io/kubernetes@${k8sVersion} in the Go module cache`))('expand() against the kubelet expansion table', () => {
  const source = readFileSync(testFile as string, 'utf8');
  const vectors = [...source.matchAll(/name:\s*("(?:[^"\\]|\\.)*"),\s*input:\s*("(?:[^"\\]|\\.)*"),\s*expected:\s*("(?:[^"\\]|\\.)*")/g)]
    .map((m) => ({ name: JSON.parse(m[1] as string) as string, input: JSON.parse(m[2] as string) as string, expected: JSON.parse(m[3] as string) as string }));

  it('found the table', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(30);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    expect(expand(v.input, (name) => CONTEXT[name]).value).toBe(v.expected);
  });
});

describe('expand() with unknowable variables', () => {
  it('marks the result unknown only when an unknowable variable is referenced', () => {
    const lookup = (name: string): string | undefined | null => (name === 'CM' ? null : name === 'A' ? '1' : undefined);
    expect(expand('$(A)', lookup)).toEqual({ value: '1', known: true });
    expect(expand('$(CM)', lookup).known).toBe(false);
    expect(expand('$$(CM)', lookup)).toEqual({ value: '$(CM)', known: true });
    expect(expand('$(MISSING)', lookup)).toEqual({ value: '$(MISSING)', known: true });
  });
});
