// src/runtime — process-level helpers every layer shares: the pino logger factory and a batched
// asynchronous line writer for high-volume logs, the shutdown signal (SIGINT/SIGTERM → AbortSignal)
// and the exit codes. Bottom layer beside src/api: may import nothing from this project, and every
// layer may import it.
export * from './logger.ts';
export * from './batched-line-writer.ts';
export * from './plain-http.ts';
export * from './shutdown.ts';
export * from './duration.ts';
