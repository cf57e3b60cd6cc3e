// test/support — what plays the rest of a cluster for tests and the demo: the control plane and kubectl
// (cluster.ts), a fault-injecting proxy (tcp-proxy.ts), and later the kubelet stand-ins (cgroups, pods,
// logs). May import from src/ freely; src/ never imports from here except src/up for the demo.
export * from './cluster.ts';
export * from './tcp-proxy.ts';
export * from './require.ts';
export * from './reports.ts';
