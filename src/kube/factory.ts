// One call from "where is the cluster" to a client: a kubeconfig file or text, the pod's service account,
// or a connection built by the caller.
import { KubeClient, type ClientOptions } from './client.ts';
import { loadConnection, type KubeConnection, type KubeconfigSource } from './kubeconfig.ts';

export type ClientSource =
  | (KubeconfigSource & { inCluster?: false })
  | { inCluster: true }
  | { connection: KubeConnection };

export async function createClient(source: ClientSource = {}, options: ClientOptions = {}): Promise<KubeClient> {
  if ('connection' in source) return new KubeClient(source.connection, options);
  return new KubeClient(await loadConnection(source), options);
}
