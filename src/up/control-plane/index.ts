// src/up/control-plane — the embedded control plane (etcd, kube-apiserver, kube-controller-manager from
// Go modules; see hack/build-control-plane.sh). Used by `concurrency-guard up` and by the tests through
// test/support/. Imports Node built-ins, yaml and src/pki.
export { ControlPlane, CONTROLLERS, type ControlPlaneOptions, type ClientIdentity } from './control-plane.ts';
export { locateBinaries, readPinnedVersions, cacheRoot, type ControlPlaneBinaries } from './binaries.ts';
export { createServiceAccountKeys } from './service-account-keys.ts';
export { renderKubeconfig } from './kubeconfig.ts';
export { freeLoopbackPort } from './ports.ts';
export { ManagedProcess } from './managed-process.ts';
