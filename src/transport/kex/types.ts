/**
 * A key-exchange method on the server side. The messages are KEX_ECDH_INIT (30) and
 * KEX_ECDH_REPLY (31) for every method we offer: ECDH (RFC 5656 §4), curve25519 (RFC 8731)
 * and the fixed MODP groups (RFC 4253 §8 / RFC 8268, KEXDH_INIT/REPLY share the numbers).
 *
 * The difference between them is how the public values are encoded: ECDH and curve25519
 * send `string Q`, finite-field DH sends `mpint e` / `mpint f`. To keep the transport
 * ignorant of that, a method hands back each public value already encoded as its wire
 * field (length prefix included). The transport copies those fields unchanged into both the
 * reply and the exchange hash.
 */
export interface KexMethod {
  readonly name: string;
  /** Hash for the exchange hash and key derivation. */
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  /**
   * Reads the client's public value from the body of KEX_ECDH_INIT (after the message byte),
   * checks it, and completes the exchange. Throws DisconnectError(KEY_EXCHANGE_FAILED) for an
   * invalid, low-order or out-of-range value, or an all-zero shared secret.
   */
  exchange(initBody: Uint8Array): KexExchange;
}

export interface KexExchange {
  /** The client's public value as its wire field (`string Q_C` or `mpint e`). */
  clientField: Uint8Array;
  /** The server's public value as its wire field (`string Q_S` or `mpint f`). */
  serverField: Uint8Array;
  /** The shared secret K, mpint-encoded with its length prefix (RFC 4253 §7.2, RFC 8731 §3.1). */
  sharedSecret: Uint8Array;
}
