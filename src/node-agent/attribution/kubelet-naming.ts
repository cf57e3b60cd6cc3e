// Where the kubelet and the runtimes put a pod's and a container's cgroups, relative to a hierarchy
// root (kubelet pkg/kubelet/cm/cgroup_manager_linux.go, containerd/CRI-O/cri-dockerd scope names):
//   cgroupfs driver: kubepods[/burstable|/besteffort]/pod<uid>/<container>
//   systemd driver:  kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_>.slice/<container>
//     where a slice's name repeats its ancestors joined with '-', and '-' inside the pod UID becomes '_'.
//   Guaranteed pods have no QoS level. --cgroup-root adds leading parts (kind: `kubelet`).
//   container: cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope (systemd);
//              <id> (containerd, docker) or crio-<id> (CRI-O) with cgroupfs.
// Static pods: the UID in the cgroup name is the config hash (32 hex, no dashes), not the mirror pod's
// API UID. Names are generated and tested for existence exactly, never matched by prefix, so a pod whose
// UID starts like another's is never taken for it.

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';
export const QOS_CLASSES: readonly QosClass[] = ['Burstable', 'BestEffort', 'Guaranteed'];

const QOS_PART: Readonly<Record<QosClass, string | undefined>> = {
  Guaranteed: undefined,
  Burstable: 'burstable',
  BestEffort: 'besteffort',
};

/** The UID the kubelet names a pod's cgroup after: the config hash for static (mirror) pods. */
export function cgroupPodUID(pod: { uid: string; annotations?: Readonly<Record<string, string>> }): string {
  const hash = pod.annotations?.['kubernetes.io/config.mirror'] ?? pod.annotations?.['kubernetes.io/config.hash'];
  return hash ?? pod.uid;
}

/** `containerd://<id>`, `cri-o://<id>`, `docker://<id>` (pod status) or a bare id → the id. */
export function bareContainerID(containerID: string): string {
  const scheme = containerID.indexOf('://');
  return scheme < 0 ? containerID : containerID.slice(scheme + 3);
}

function cgroupfsPath(parts: readonly string[]): string {
  return parts.join('/');
}

function systemdPath(parts: readonly string[]): string {
  // systemd escapes '-' in a unit name part as '_' (escapeSystemdCgroupName); the slice of each level
  // is named after all its ancestors joined with '-'.
  const escaped = parts.map((part) => part.replaceAll('-', '_'));
  return escaped.map((_, i) => `${escaped.slice(0, i + 1).join('-')}.slice`).join('/');
}

export interface PodCgroupCandidate {
  driver: 'cgroupfs' | 'systemd';
  qos: QosClass;
  relativePath: string;
}

/**
 * Every place the pod's cgroup can be, most likely first (the QoS hint, when known, first). `cgroupRoots`
 * are the kubelet's --cgroup-root split in parts: [] for the default, ['kubelet'] for kind.
 */
export function podCgroupCandidates(
  podUID: string,
  qosHint?: QosClass,
  cgroupRoots: readonly (readonly string[])[] = [[]],
): PodCgroupCandidate[] {
  const qosOrder = qosHint ? [qosHint, ...QOS_CLASSES.filter((q) => q !== qosHint)] : QOS_CLASSES;
  const candidates: PodCgroupCandidate[] = [];
  for (const root of cgroupRoots) {
    for (const qos of qosOrder) {
      const qosPart = QOS_PART[qos];
      const parts = [...root, 'kubepods', ...(qosPart ? [qosPart] : []), `pod${podUID}`];
      candidates.push({ driver: 'cgroupfs', qos, relativePath: cgroupfsPath(parts) });
      candidates.push({ driver: 'systemd', qos, relativePath: systemdPath(parts) });
    }
  }
  return candidates;
}

/** The container's directory names inside its pod's cgroup, for every runtime and driver. */
export function containerCgroupNames(containerID: string): string[] {
  const id = bareContainerID(containerID);
  return [`cri-containerd-${id}.scope`, `crio-${id}.scope`, `docker-${id}.scope`, id, `crio-${id}`];
}
