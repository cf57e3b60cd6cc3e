// The certificate state machine on real certificates: creation, a forced CA rotation step by step (the
// new CA is trusted before it signs the served leaf), leaf renewal and retiring the old CA.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAuthority, issueServingCertificate, issuedBy, splitPemBundle } from '../../src/pki/index.ts';
import {
  NEXT_CA_PUBLISHED_ANNOTATION, ROTATE_ANNOTATION, ROTATED_ANNOTATION, SECRET_KEYS, desiredBundle, planCertificates,
  type CertificateSettings, type SecretState,
} from '../../src/controllers/certificates/rotation.ts';

const DAY = 24 * 3600_000;
const settings: CertificateSettings = {
  caValidityMs: 300 * DAY, leafValidityMs: 90 * DAY, renewBeforeFraction: 1 / 3, bundlePropagationMs: 30_000,
  previousCaRetentionMs: 3600_000, dnsNames: ['svc.ns.svc', 'svc'], ipAddresses: ['127.0.0.1'],
};

async function freshState(now: number): Promise<SecretState> {
  const ca = await createAuthority('test-ca', settings.caValidityMs, now);
  const leaf = await issueServingCertificate(ca, { commonName: 'svc.ns.svc', dnsNames: settings.dnsNames, ipAddresses: settings.ipAddresses, validityMs: settings.leafValidityMs }, now);
  return { data: { [SECRET_KEYS.ca]: ca.certPem, [SECRET_KEYS.caKey]: ca.keyPem, [SECRET_KEYS.cert]: leaf.certPem, [SECRET_KEYS.key]: leaf.keyPem }, annotations: {} };
}

describe('pki', () => {
  it('issues a serving certificate its CA verifies, with the configured names, within the CA lifetime', async () => {
    const now = Date.now();
    const state = await freshState(now);
    const leaf = new X509Certificate(state.data[SECRET_KEYS.cert]!);
    expect(issuedBy(state.data[SECRET_KEYS.cert]!, state.data[SECRET_KEYS.ca]!)).toBe(true);
    expect(leaf.subjectAltName).toBe('DNS:svc.ns.svc, DNS:svc, IP Address:127.0.0.1');
    expect(leaf.ca).toBe(false);
    expect(new X509Certificate(state.data[SECRET_KEYS.ca]!).ca).toBe(true);
    const other = await createAuthority('other', DAY, now);
    expect(issuedBy(state.data[SECRET_KEYS.cert]!, other.certPem)).toBe(false);
  });
});

describe('planCertificates', () => {
  it('creates when there is no Secret or it holds nothing usable', () => {
    expect(planCertificates(undefined, settings, Date.now()).kind).toBe('create');
    expect(planCertificates({ data: { [SECRET_KEYS.cert]: 'garbage' }, annotations: {} }, settings, Date.now()).kind).toBe('create');
  });

  it('leaves a fresh pair alone until a third of its lifetime is left', async () => {
    const now = Date.now();
    const state = await freshState(now);
    const idle = planCertificates(state, settings, now);
    expect(idle.kind).toBe('none');
    // The leaf (90 days) is due first: at 60 days minus the 5-minute backdate.
    expect(planCertificates(state, settings, now + 61 * DAY).kind).toBe('renew-leaf');
    expect(planCertificates(state, settings, now + 201 * DAY).kind).toBe('publish-next-ca');
  });

  it('rotates the CA on request: publish, wait for the bundle, promote, then retire the old CA', async () => {
    const now = Date.now();
    const state = await freshState(now);
    state.annotations[ROTATE_ANNOTATION] = 'r1';
    expect(planCertificates(state, settings, now).kind).toBe('publish-next-ca');

    const next = await createAuthority('next-ca', settings.caValidityMs, now);
    state.data[SECRET_KEYS.nextCa] = next.certPem;
    state.data[SECRET_KEYS.nextCaKey] = next.keyPem;
    const bundle = desiredBundle(state.data);
    expect(splitPemBundle(bundle).map((b) => b.trim())).toEqual([state.data[SECRET_KEYS.ca]!.trim(), next.certPem.trim()]);
    // Not yet seen in the VWC: nothing may sign with the new CA.
    expect(planCertificates(state, settings, now + DAY)).toEqual({ kind: 'none', recheckInMs: 1_000 });
    state.annotations[NEXT_CA_PUBLISHED_ANNOTATION] = new Date(now).toISOString();
    expect(planCertificates(state, settings, now + 29_000)).toMatchObject({ kind: 'none' });
    expect(planCertificates(state, settings, now + 30_000).kind).toBe('promote-next-ca');

    // What the controller's promote step writes.
    const leaf = await issueServingCertificate(next, { commonName: 'svc', dnsNames: settings.dnsNames, ipAddresses: settings.ipAddresses, validityMs: settings.leafValidityMs }, now);
    const promoted: SecretState = {
      data: { [SECRET_KEYS.ca]: next.certPem, [SECRET_KEYS.caKey]: next.keyPem, [SECRET_KEYS.cert]: leaf.certPem, [SECRET_KEYS.key]: leaf.keyPem, [SECRET_KEYS.previousCa]: state.data[SECRET_KEYS.ca] },
      annotations: { [ROTATE_ANNOTATION]: 'r1', [ROTATED_ANNOTATION]: 'r1' },
    };
    expect(splitPemBundle(desiredBundle(promoted.data)).map((b) => b.trim())).toEqual([next.certPem.trim(), state.data[SECRET_KEYS.ca]!.trim()]);
    expect(planCertificates(promoted, settings, now + 31_000).kind).toBe('none');
    expect(planCertificates(promoted, settings, now + 3600_000 + 31_000).kind).toBe('retire-previous-ca');
  });

  it('renews a leaf that names other hosts', async () => {
    const now = Date.now();
    const state = await freshState(now);
    expect(planCertificates(state, { ...settings, dnsNames: ['svc.other.svc'] }, now)).toMatchObject({ kind: 'renew-leaf', reason: 'the certificate names other hosts than configured' });
  });
});
