// When and how the webhook's certificates change (certificates.provider: controller). The Secret is the
// source of truth and the state machine at once:
//   tls.crt/tls.key   the serving leaf (what the webhook serves; it reloads on change)
//   ca.crt/ca.key     the CA that signed the leaf
//   next-ca.crt/.key  a new CA, already in the VWC's caBundle, not signing yet
//   previous-ca.crt   the CA of the leaf before, still in the caBundle for connections made before the switch
// A CA rotation therefore goes: publish next CA in the bundle (old + new trusted) → wait until the API
// server has had time to load the bundle → sign a new leaf with the new CA and serve it → later drop the
// old CA from the bundle. At no point does the API server see a leaf it does not trust.
import { certificateFacts, issuedBy, type CertificateFacts } from '../../pki/index.ts';

export const SECRET_KEYS = {
  cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key',
  nextCa: 'next-ca.crt', nextCaKey: 'next-ca.key', previousCa: 'previous-ca.crt',
} as const;

/** Set by a person (any new value) to rotate CA and leaf now. */
export const ROTATE_ANNOTATION = 'concurrencyguard.io/rotate';
/** The ROTATE_ANNOTATION value last acted on. */
export const ROTATED_ANNOTATION = 'concurrencyguard.io/rotated';
/** When the VWC was first seen carrying next-ca.crt in every webhook's caBundle. */
export const NEXT_CA_PUBLISHED_ANNOTATION = 'concurrencyguard.io/next-ca-published';

export interface CertificateSettings {
  caValidityMs: number;
  leafValidityMs: number;
  /** Renew a certificate once less than this fraction of its lifetime remains. */
  renewBeforeFraction: number;
  /** How long a caBundle change is given to reach every API server before a leaf relies on it. */
  bundlePropagationMs: number;
  /** How long the previous CA stays in the bundle after the new leaf is first served. */
  previousCaRetentionMs: number;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

export interface SecretState {
  data: Record<string, string | undefined>;
  annotations: Record<string, string | undefined>;
}

export type CertificateAction =
  | { kind: 'create'; reason: string }
  | { kind: 'publish-next-ca'; reason: string }
  | { kind: 'promote-next-ca'; reason: string }
  | { kind: 'renew-leaf'; reason: string }
  | { kind: 'retire-previous-ca'; reason: string }
  | { kind: 'none'; recheckInMs: number };

function renewalDue(facts: CertificateFacts, fraction: number, now: number): boolean {
  return facts.notAfter - now < (facts.notAfter - facts.notBefore) * fraction;
}

function sameNames(facts: CertificateFacts, settings: CertificateSettings): boolean {
  const wanted = [...settings.dnsNames, ...settings.ipAddresses].sort();
  return wanted.length === facts.names.length && wanted.every((name, i) => facts.names[i] === name);
}

/** The one next step for the Secret, or how long until one may be due. */
export function planCertificates(state: SecretState | undefined, settings: CertificateSettings, now: number): CertificateAction {
  const data = state?.data ?? {};
  const ca = certificateFacts(data[SECRET_KEYS.ca]);
  const leaf = certificateFacts(data[SECRET_KEYS.cert]);
  if (!state || !ca || !leaf || !data[SECRET_KEYS.caKey] || !data[SECRET_KEYS.key] || ca.notAfter <= now) {
    return { kind: 'create', reason: state ? 'the Secret holds no usable CA and certificate' : 'no Secret yet' };
  }
  const next = certificateFacts(data[SECRET_KEYS.nextCa]);
  if (next && data[SECRET_KEYS.nextCaKey]) {
    const published = Date.parse(state.annotations[NEXT_CA_PUBLISHED_ANNOTATION] ?? '');
    if (!Number.isFinite(published)) return { kind: 'none', recheckInMs: 1_000 };
    const wait = published + settings.bundlePropagationMs - now;
    return wait <= 0 ? { kind: 'promote-next-ca', reason: 'the new CA has been in the caBundle long enough' } : { kind: 'none', recheckInMs: wait };
  }
  const requested = state.annotations[ROTATE_ANNOTATION];
  if (requested && requested !== state.annotations[ROTATED_ANNOTATION]) {
    return { kind: 'publish-next-ca', reason: `rotation requested (${ROTATE_ANNOTATION}=${requested})` };
  }
  if (renewalDue(ca, settings.renewBeforeFraction, now)) return { kind: 'publish-next-ca', reason: 'the CA nears expiry' };
  if (!issuedBy(data[SECRET_KEYS.cert]!, data[SECRET_KEYS.ca]!)) return { kind: 'renew-leaf', reason: 'the certificate was not signed by the CA' };
  if (leaf.notAfter <= now || renewalDue(leaf, settings.renewBeforeFraction, now)) return { kind: 'renew-leaf', reason: 'the certificate nears expiry' };
  if (!sameNames(leaf, settings)) return { kind: 'renew-leaf', reason: 'the certificate names other hosts than configured' };
  const previous = certificateFacts(data[SECRET_KEYS.previousCa]);
  if (data[SECRET_KEYS.previousCa] !== undefined) {
    // The leaf's notBefore is backdated by a few minutes; its issue time is what the retention counts from.
    const retireAt = Math.min(previous?.notAfter ?? 0, leaf.notBefore + 5 * 60_000 + settings.previousCaRetentionMs);
    if (!previous || retireAt <= now) return { kind: 'retire-previous-ca', reason: 'the new certificate has been served long enough' };
  }
  const nextDue = Math.min(
    ca.notAfter - (ca.notAfter - ca.notBefore) * settings.renewBeforeFraction,
    leaf.notAfter - (leaf.notAfter - leaf.notBefore) * settings.renewBeforeFraction,
  );
  return { kind: 'none', recheckInMs: Math.max(1_000, nextDue - now) };
}

/** The caBundle every webhook of the VWC should carry: every CA a served leaf may chain to. */
export function desiredBundle(data: Record<string, string | undefined>): string {
  const blocks = [data[SECRET_KEYS.ca], data[SECRET_KEYS.nextCa], data[SECRET_KEYS.previousCa]]
    .filter((pem): pem is string => Boolean(pem))
    .map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`));
  return [...new Set(blocks)].join('');
}
