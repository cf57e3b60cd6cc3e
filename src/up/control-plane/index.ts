// src/up/control-plane — the embedded control plane (etcd, kube-apiserver, kube-controller-manager from
// Go modules; see hack/build-control-plane.sh). Used by `concurrency-guard up` and by the tests through
// test/support/. Imports only Node built-ins, yaml and @peculiar/x509.
export { ControlPlane, CONTROLLERS, type ControlPlaneOptions, type ClientIdentity } from './control-plane.ts';
export { locateBinaries, readPinnedVersions, cacheRoot, type ControlPlaneBinaries } from './binaries.ts';
export { createAuthority, issueCertificate, createServiceAccountKeys, type Authority, type CertifiedKey } from './pki.ts';
export { renderKubeconfig } from './kubeconfig.ts';
export { freeLoopbackPort } from './ports.ts';
export { ManagedProcess } from './managed-process.ts';
