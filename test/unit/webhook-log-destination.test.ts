// The webhook's log writer: lines arrive complete and in order, many per write under load, flush waits
// for the fd, and a stalled reader costs dropped (counted) lines instead of unbounded memory.
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BatchedLineWriter } from '../../src/runtime/index.ts';

describe('BatchedLineWriter', () => {
  it('writes every line, in order, and flush resolves once they are in the file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cg-log-')), 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLineWriter({ fd });
    const log = pino({ level: 'info', base: null, timestamp: false }, writer);
    for (let i = 0; i < 5_000; i++) log.info({ i }, 'review');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    expect(lines).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    writer.write('{"late":true}\n');
    writer.flushSync();
    expect(readFileSync(file, 'utf8').trim().split('\n').at(-1)).toBe('{"late":true}');
    closeSync(fd);
  });

  it('drops and counts lines beyond its bound instead of growing', () => {
    const fd = openSync('/dev/null', 'w');
    const writer = new BatchedLineWriter({ fd, maxPendingBytes: 100 });
    for (let i = 0; i < 10; i++) writer.write(`${'x'.repeat(29)}\n`);
    expect(writer.dropped).toBe(7);
    writer.flushSync();
    closeSync(fd);
  });
});
