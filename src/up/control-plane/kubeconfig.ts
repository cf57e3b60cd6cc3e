import { stringify } from 'yaml';

export interface KubeconfigInput {
  server: string;
  caPem: string;
  certPem?: string;
  keyPem?: string;
  token?: string;
  name?: string;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

export function renderKubeconfig(input: KubeconfigInput): string {
  const name = input.name ?? 'embedded';
  const user: Record<string, string> = {};
  if (input.token) user['token'] = input.token;
  if (input.certPem) user['client-certificate-data'] = b64(input.certPem);
  if (input.keyPem) user['client-key-data'] = b64(input.keyPem);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: input.server, 'certificate-authority-data': b64(input.caPem) } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
  });
}
