// Where hack/build-control-plane.sh put the pinned binaries. The cache root and the versions are read
// the same way the script reads them, so the two cannot disagree about a path.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  helm: string;
  versions: PinnedVersions;
}

export interface PinnedVersions {
  kubernetes: string;
  etcd: string;
  helm: string;
}

const repoRoot = resolve(import.meta.dirname, '../../..');

export function readPinnedVersions(file = join(repoRoot, 'hack/versions.env')): PinnedVersions {
  const values = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(\S+)\s*$/.exec(line);
    if (match?.[1] && match[2]) values.set(match[1], match[2]);
  }
  const need = (key: string): string => {
    const value = values.get(key);
    if (!value) throw new Error(`${file} has no ${key}`);
    return value;
  };
  return { kubernetes: need('K8S_VERSION'), etcd: need('ETCD_VERSION'), helm: need('HELM_VERSION') };
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env['CG_CACHE_DIR']) return env['CG_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'concurrency-guard');
}

type BinaryName = Exclude<keyof ControlPlaneBinaries, 'versions'>;
const CONTROL_PLANE: readonly BinaryName[] = ['etcd', 'kubeApiserver', 'kubeControllerManager', 'kubectl'];

/** Throws with the command that builds them when any binary in `need` is missing. */
export function locateBinaries(need: readonly BinaryName[] = CONTROL_PLANE, env: NodeJS.ProcessEnv = process.env): ControlPlaneBinaries {
  const versions = readPinnedVersions();
  const root = cacheRoot(env);
  const kube = join(root, `kubernetes-${versions.kubernetes}`, 'bin');
  const binaries: ControlPlaneBinaries = {
    etcd: join(root, `etcd-${versions.etcd}`, 'bin', 'etcd'),
    kubeApiserver: join(kube, 'kube-apiserver'),
    kubeControllerManager: join(kube, 'kube-controller-manager'),
    kubectl: join(kube, 'kubectl'),
    helm: join(root, `helm-${versions.helm}`, 'bin', 'helm'),
    versions,
  };
  const missing = need.map((name) => binaries[name]).filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`control-plane binaries missing: ${missing.join(', ')}; build them with: npm run build:control-plane`);
  }
  return binaries;
}
