// The reference server of DESIGN.md's targets: fastify 5 over HTTPS that parses a Pod AdmissionReview
// (fastify's default JSON parser) and returns a fixed allowed review. Nothing else: no logger, no
// metrics, no validation. bench/webhook.ts runs it next to the real webhook, pinned to the same core.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';

export interface BareServerOptions {
  certPem: string;
  keyPem: string;
  port?: number;
}

const FIXED_REVIEW = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true },
};

export async function startBareServer(options: BareServerOptions): Promise<{ port: number; close: () => Promise<void> }> {
  const app = Fastify({ https: { cert: options.certPem, key: options.keyPem }, bodyLimit: 8 * 1024 * 1024 });
  app.post('/validate', (request) => {
    // The body is parsed by fastify before the handler runs; touching it keeps the comparison honest.
    if (typeof request.body !== 'object') throw new Error('unparsed body');
    return FIXED_REVIEW;
  });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}
