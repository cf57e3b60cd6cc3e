// src/api — the CRD types of concurrencyguard.io/v1alpha1 and the small Kubernetes shapes they embed.
// Types and constants only: no I/O, no behaviour beyond tiny pure helpers on these shapes.
// May import nothing from this project; every other layer imports from here.
export * from './v1alpha1.ts';
export * from './conditions.ts';
