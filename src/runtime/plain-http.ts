// The plain-HTTP side every role serves beside its work: /metrics and the probes. Listening, closing
// and answering a scrape are the same for all; the probes' answers are each role's own.
import type { Server, ServerResponse } from 'node:http';

/** Listens and resolves with the port (0 picks a free one). */
export function listen(server: Server, port: number, host = '0.0.0.0'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** Stops listening and drops idle and in-flight probe connections (scrapes are cheap to retry). */
export function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The registry's exposition (prom-client's Registry, structurally); a failing collector is a 500, never a crash. */
export async function answerScrape(registry: { metrics(): Promise<string>; contentType: string }, response: ServerResponse): Promise<void> {
  try {
    const body = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType }).end(body);
  } catch {
    if (!response.headersSent) response.writeHead(500);
    response.end();
  }
}
