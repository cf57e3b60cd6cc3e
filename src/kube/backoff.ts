// Jittered exponential backoff, shared by the informer's restarts and the work queue's retries.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per failure; 2 doubles. */
  factor?: number;
  /** Fraction of the delay randomised away: 0.5 → a delay in [d/2, d]. Spreads reconnect storms. */
  jitter?: number;
}

/** The delay before attempt `failures + 1`, having failed `failures` times (≥ 1) in a row. */
export function backoffDelay(failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0;
  const exponent = Math.max(0, failures - 1);
  const raw = Math.min(options.maxMs, options.initialMs * factor ** exponent);
  return Math.round(raw * (1 - jitter * random()));
}
