/**
 * A host key the server can sign with (RFC 4253 §6.6). One key may serve several signature
 * algorithms: an RSA key signs as rsa-sha2-512 and rsa-sha2-256 (RFC 8332), and as ssh-rsa
 * only when that is turned on.
 */
export interface HostKey {
  /** Key type as in the public key blob: 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa', … */
  readonly type: string;
  /**
   * Signature algorithms this key can sign with, in preference order. The server offers only
   * those its configuration allows (ssh-rsa only with allowSshRsaSha1).
   */
  readonly algorithms: readonly string[];
  /** The public key blob (RFC 4253 §6.6 / RFC 5656 §3.1 / RFC 8709 §4). */
  readonly publicBlob: Uint8Array;
  /** `SHA256:<base64 without padding>` exactly as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  /** Bits, as `ssh-keygen -lf` prints them (256 for ed25519, the modulus size for RSA). */
  readonly bits: number;
  /** Returns the signature blob: `string algorithm, string signature`. */
  sign(algorithm: string, data: Uint8Array): Uint8Array;
}
