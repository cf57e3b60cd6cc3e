// SIGINT/SIGTERM become one AbortSignal that every long-running part listens to, so a pod stops by
// draining (close servers, stop informers, flush logs) instead of dying mid-write. A second signal means
// the operator has lost patience: exit at once with the conventional 128 + signal number.
import type { Logger } from 'pino';

export const EXIT_OK = 0;
/** A command ran and failed (lost the API server, could not bind, …). */
export const EXIT_FAILURE = 1;
/** The command line was wrong, or the subcommand is not available in this build. */
export const EXIT_USAGE = 2;

const SIGNAL_NUMBERS: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGINT: 2, SIGTERM: 15 };

export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 0);
}

/** The reason of the shutdown AbortSignal. */
export class ShutdownRequested extends Error {
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(`received ${signal}`);
    this.name = 'ShutdownRequested';
    this.signal = signal;
  }
}

export interface Shutdown {
  /** Aborted on the first SIGINT or SIGTERM; its reason is a ShutdownRequested. */
  readonly signal: AbortSignal;
  /** Removes the handlers (the process then reacts to signals as Node does by default). */
  dispose(): void;
}

export interface ShutdownOptions {
  log?: Logger;
  signals?: readonly NodeJS.Signals[];
  /** Called on the second signal; default: exit with 128 + signal number. Tests replace it. */
  onForce?: (signal: NodeJS.Signals) => void;
}

export function handleShutdownSignals(options: ShutdownOptions = {}): Shutdown {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const controller = new AbortController();
  const force = options.onForce ?? ((signal: NodeJS.Signals) => process.exit(exitCodeForSignal(signal)));
  const handler = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) {
      options.log?.info({ signal }, 'shutting down (send the signal again to exit at once)');
      controller.abort(new ShutdownRequested(signal));
      return;
    }
    options.log?.warn({ signal }, 'second signal: exiting without draining');
    force(signal);
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}

/**
 * Resolves when the signal aborts (at once if it already has). Keeps the process alive meanwhile: a
 * signal listener alone does not, and Node would end a command that only waits for SIGTERM with exit
 * code 13 (unsettled top-level await) the moment its last socket closed.
 */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    signal.addEventListener('abort', () => {
      clearInterval(keepAlive);
      resolve();
    }, { once: true });
  });
}
