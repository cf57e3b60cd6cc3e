// The slice of pino's interface this layer logs through, so callers pass their pino instance (or a child
// of it) and tests pass nothing.
export interface KubeLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const ignore = (): void => undefined;
export const silentLogger: KubeLogger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

/** What an error is, in one short line: never a whole response body. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message.slice(0, 300)}`;
  }
  return String(error).slice(0, 300);
}
