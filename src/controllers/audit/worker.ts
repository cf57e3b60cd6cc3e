// Entry point of the audit worker thread (node:worker_threads). The pod informer, the evaluation of every
// pod and the report writes live here, so a full audit of thousands of pods never stalls the main
// thread's event loop (the webhook shares it in `manager`). Its own API connection and logger; it talks
// to the main thread only through the messages of ./protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { KubeClient, describeError } from '../../kube/index.ts';
import { createLogger } from '../../runtime/index.ts';
import { Auditor } from './auditor.ts';
import type { EngineModule } from './engine.ts';
import type { AuditWorkerData, FromWorker, ToWorker } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('src/controllers/audit/worker.ts runs only as a worker thread');
const data = workerData as AuditWorkerData;
const send = (message: FromWorker): void => port.postMessage(message);
const log = createLogger({ name: 'concurrency-guard-audit', level: data.logLevel });

try {
  const { createEngine } = (await import(data.engineModule)) as EngineModule;
  const client = new KubeClient(data.connection, { userAgent: 'concurrency-guard-controller-audit' });
  const auditor = new Auditor({
    client, engine: createEngine(), settings: data.settings, logger: log,
    onSynced: (pods, listMs) => send({ type: 'synced', pods, listMs: Math.round(listMs) }),
    onStats: (policies) => send({ type: 'stats', policies }),
    onPass: (figures) => send({ type: 'pass', figures }),
  });
  port.on('message', (message: ToWorker) => {
    try {
      switch (message.type) {
        case 'policies': auditor.setPolicies(message.policies); break;
        case 'namespaces': auditor.setNamespaces(message.namespaces); break;
        case 'limitRanges': auditor.setLimitRanges(message.limitRanges); break;
        case 'stop':
          void auditor.stop().finally(() => {
            client.close();
            send({ type: 'stopped' });
            port.close();
          });
          break;
      }
    } catch (error) {
      log.error({ error: describeError(error) }, 'audit worker could not apply a message');
    }
  });
  auditor.start();
} catch (error) {
  send({ type: 'fatal', error: describeError(error) });
  port.close();
}
