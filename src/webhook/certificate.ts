// The serving certificate: validated before use, and watched for changes by polling a hash of the PEMs,
// because kubelet updates a mounted Secret by swapping a symlink (inotify on the files misses it) and an
// informer-backed source has no file at all. A certificate that does not validate is never served: the
// previous one stays until a valid pair appears (a half-written rotation reads as cert ≠ key).
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';

export interface CertificatePair {
  certPem: string;
  keyPem: string;
}

export interface ServingCertificate extends CertificatePair {
  /** Hex serial of the leaf, as `openssl x509 -serial` prints it. */
  serialNumber: string;
  notAfter: Date;
  /** sha256 over cert and key PEM: what the watcher compares. */
  digest: string;
}

/** Reads the current pair from wherever it lives; undefined when it is not there (yet). */
export type CertificateSource = () => Promise<CertificatePair | undefined>;

export function certificateDigest(pair: CertificatePair): string {
  return createHash('sha256').update(pair.certPem).update('\0').update(pair.keyPem).digest('hex');
}

/**
 * Checks that the pair is usable for serving (Node can build a TLS context from it, the key belongs to
 * the leaf, the leaf is within its validity) and describes it. Throws with the reason otherwise.
 */
export function validateServingCertificate(pair: CertificatePair, now = new Date()): ServingCertificate {
  // createSecureContext is what setSecureContext runs; if it throws here the swap would throw there.
  createSecureContext({ cert: pair.certPem, key: pair.keyPem });
  const leaf = new X509Certificate(pair.certPem);
  if (!leaf.checkPrivateKey(createPrivateKey(pair.keyPem))) {
    throw new Error('serving certificate: the private key does not belong to the certificate');
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore) throw new Error(`serving certificate is not valid before ${notBefore.toISOString()}`);
  if (now > notAfter) throw new Error(`serving certificate expired at ${notAfter.toISOString()}`);
  return { ...pair, serialNumber: leaf.serialNumber, notAfter, digest: certificateDigest(pair) };
}

/** A mounted kubernetes.io/tls Secret: `tls.crt` and `tls.key` in one directory. */
export function directorySource(directory: string): CertificateSource {
  return async () => {
    try {
      const [certPem, keyPem] = await Promise.all([
        readFile(join(directory, 'tls.crt'), 'utf8'),
        readFile(join(directory, 'tls.key'), 'utf8'),
      ]);
      return { certPem, keyPem };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };
}

/** The shape of a kubernetes.io/tls Secret as an informer cache holds it. */
export interface TlsSecretLike {
  data?: Record<string, string>;
}

/** A Secret read from an informer cache (no API call per poll): base64 `tls.crt` / `tls.key`. */
export function secretSource(getSecret: () => TlsSecretLike | undefined): CertificateSource {
  return () => {
    const data = getSecret()?.data;
    const cert = data?.['tls.crt'];
    const key = data?.['tls.key'];
    if (!cert || !key) return Promise.resolve(undefined);
    return Promise.resolve({
      certPem: Buffer.from(cert, 'base64').toString('utf8'),
      keyPem: Buffer.from(key, 'base64').toString('utf8'),
    });
  };
}

export interface CertificateWatcherOptions {
  source: CertificateSource;
  pollIntervalMs: number;
  /** Called with each new valid certificate, the first one included. */
  onCertificate: (certificate: ServingCertificate) => void;
  /** Called when a changed pair does not validate; the previous certificate stays in use. */
  onInvalid?: (error: Error) => void;
}

/**
 * Polls the source, and hands every changed, valid pair to onCertificate. An invalid pair is reported
 * once per distinct content, not once per poll.
 */
export class CertificateWatcher {
  private readonly options: CertificateWatcherOptions;
  private timer: NodeJS.Timeout | undefined;
  private lastSeenDigest: string | undefined;
  private lastInvalidDigest: string | undefined;
  private currentCertificate: ServingCertificate | undefined;
  private polling: Promise<void> | undefined;

  constructor(options: CertificateWatcherOptions) {
    this.options = options;
  }

  get current(): ServingCertificate | undefined {
    return this.currentCertificate;
  }

  /** One poll now; resolves when it is done (concurrent callers share the poll in progress). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => { this.polling = undefined; });
    return this.polling;
  }

  start(): void {
    if (this.timer) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async pollOnce(): Promise<void> {
    let pair: CertificatePair | undefined;
    try {
      pair = await this.options.source();
    } catch (error) {
      this.options.onInvalid?.(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (!pair) return;
    const digest = certificateDigest(pair);
    if (digest === this.lastSeenDigest) return;
    let certificate: ServingCertificate;
    try {
      certificate = validateServingCertificate(pair);
    } catch (error) {
      // Not remembered as seen when it may be a half-written rotation: the next poll retries it, but a
      // persistently bad pair is reported only once.
      if (digest !== this.lastInvalidDigest) {
        this.lastInvalidDigest = digest;
        this.options.onInvalid?.(error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    this.lastSeenDigest = digest;
    this.currentCertificate = certificate;
    this.options.onCertificate(certificate);
  }
}
