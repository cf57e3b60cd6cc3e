// src/runtime — process-level helpers every layer shares: the pino logger factory, the shutdown signal
// (SIGINT/SIGTERM → AbortSignal) and the exit codes. Bottom layer beside src/api: may import nothing
// from this project, and every layer may import it.
export * from './logger.ts';
export * from './shutdown.ts';
export * from './duration.ts';
