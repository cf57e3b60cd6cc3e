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

/**
 * The client a role runs with: the kubeconfig and context it was given on its command line, else
 * in-cluster, else $KUBECONFIG / ~/.kube/config (loadConnection's order).
 */
export function createClientFor(target: { kubeconfig?: string | undefined; context?: string | undefined }, userAgent: string): Promise<KubeClient> {
  const source: ClientSource = target.kubeconfig || target.context
    ? { ...(target.kubeconfig ? { path: target.kubeconfig } : {}), ...(target.context ? { context: target.context } : {}) }
    : {};
  return createClient(source, { userAgent });
}
