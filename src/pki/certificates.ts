// Certificate authorities and the certificates they sign, made with @peculiar/x509 (Node's crypto can
// parse X.509 but not create it): the webhook's CA and serving certificate (the controller), and the
// embedded control plane's CA, serving and client certificates (src/up). ECDSA P-256: fast to generate,
// accepted by every API server and client.
// @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** notBefore this far back, so a peer whose clock lags a little accepts a certificate made just now. */
const BACKDATE_MS = 5 * 60_000;

export interface KeyAndCertificate {
  certPem: string;
  keyPem: string;
}

function serialNumber(): string {
  // Positive (leading nibble below 8) and 128 bits, as RFC 5280 asks.
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decode(keyPem)[0];
  if (!der) throw new Error('no PEM block in the CA key');
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

export async function createAuthority(commonName: string, validityMs: number, now = Date.now()): Promise<KeyAndCertificate> {
  const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityMs),
    keys,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

export interface CertificateRequest {
  commonName: string;
  /** Subject O= entries: Kubernetes reads them as the client's groups. */
  organizations?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  usage: 'server' | 'client';
  validityMs: number;
}

export type ServingCertificateRequest = Omit<CertificateRequest, 'usage' | 'organizations'> & { dnsNames: readonly string[] };

export async function issueCertificate(authority: KeyAndCertificate, request: CertificateRequest, now = Date.now()): Promise<KeyAndCertificate> {
  const caCert = new x509.X509Certificate(authority.certPem);
  const caKey = await importKey(authority.keyPem);
  const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']));
  const names: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  // A leaf never outlives its CA: a client would reject the chain after the CA expires anyway.
  const notAfter = Math.min(now + request.validityMs, Date.parse(caCert.notAfter.toISOString()));
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([request.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [`CN=${request.commonName}`, ...(request.organizations ?? []).map((o) => `O=${o}`)].join(', '),
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ecdsa,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

export function issueServingCertificate(authority: KeyAndCertificate, request: ServingCertificateRequest, now = Date.now()): Promise<KeyAndCertificate> {
  return issueCertificate(authority, { ...request, usage: 'server' }, now);
}

export interface CertificateFacts {
  notBefore: number;
  notAfter: number;
  fingerprint: string;
  subject: string;
  issuer: string;
  /** DNS and IP names, sorted. */
  names: string[];
}

/** What rotation decisions need from a PEM certificate (the first one in the text); undefined if unreadable. */
export function certificateFacts(pem: string | undefined): CertificateFacts | undefined {
  if (!pem) return undefined;
  try {
    const cert = new NodeX509(pem);
    const names = (cert.subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address):/, '')).filter(Boolean).sort();
    return {
      notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo),
      fingerprint: cert.fingerprint256, subject: cert.subject, issuer: cert.issuer, names,
    };
  } catch {
    return undefined;
  }
}

/** Whether `leafPem` was signed by `caPem`'s key. */
export function issuedBy(leafPem: string, caPem: string): boolean {
  try {
    return new NodeX509(leafPem).verify(new NodeX509(caPem).publicKey);
  } catch {
    return false;
  }
}

/** Splits a bundle of PEM certificates into single PEM blocks. */
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}
