// One way to build a logger, so every process logs the same JSON lines to stderr (stdout stays free for
// command output such as `check`'s findings) with the same redaction.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  /** Default: $LOG_LEVEL, else info. */
  level?: LogLevel;
  /** The `name` field of every line, e.g. concurrency-guard-agent. */
  name?: string;
  /** Fields on every line. */
  bindings?: Record<string, unknown>;
  /**
   * Default: stderr, written synchronously so that the last lines before an exit are never lost. A
   * high-volume writer (the webhook) may pass `pino.destination({ fd: 2, sync: false })` and flush on exit.
   */
  destination?: DestinationStream;
}

// Tokens and certificates must never reach a log line (DESIGN.md "Privacy"); these are the places our
// own objects and client errors carry them.
const REDACT_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  // Nested only: a top-level `key` is a work-queue key (namespace/name), which operators need to see.
  '*.key',
  'password',
  '*.password',
];

export function createLogger(options: LoggerOptions = {}): Logger {
  const envLevel = process.env['LOG_LEVEL'];
  const level = options.level ?? (envLevel !== undefined && isLogLevel(envLevel) ? envLevel : 'info');
  return pino(
    {
      level,
      ...(options.name !== undefined ? { name: options.name } : {}),
      base: { pid: process.pid, ...options.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
