// src/pki — certificate authorities and the certificates they sign (@peculiar/x509, ECDSA P-256), and the
// few facts rotation reads back from a PEM. Used by the controller (the webhook's CA and serving
// certificate) and src/up (the embedded control plane). Bottom layer beside src/api and src/runtime:
// imports nothing of ours. Not re-exported by src/runtime on purpose: the node agent never loads it.
export * from './certificates.ts';
