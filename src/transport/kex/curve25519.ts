import { x25519 } from '@noble/curves/ed25519.js';
import { SshReader } from '../../wire/reader.js';
import { SshWriter } from '../../wire/writer.js';
import { DISCONNECT } from '../constants.js';
import { DisconnectError } from '../errors.js';
import type { KexExchange, KexMethod } from './types.js';

/** X25519 public values and outputs are 32 bytes (RFC 7748 §5). */
const X25519_BYTES = 32;

/**
 * curve25519-sha256 and its pre-RFC alias curve25519-sha256@libssh.org (RFC 8731 §3), which
 * differ only in name. KEX_ECDH_INIT carries `string Q_C`, the reply `string Q_S`, and K is
 * the 32-byte X25519 output read as a big-endian unsigned integer, encoded as an mpint.
 *
 * `randomSecretKey` exists so the tests can run the RFC 7748 vectors through the whole
 * exchange; the server always uses the default, a fresh CSPRNG scalar per exchange.
 */
export function curve25519Kex(
  name: 'curve25519-sha256' | 'curve25519-sha256@libssh.org',
  randomSecretKey: () => Uint8Array = x25519.utils.randomSecretKey,
): KexMethod {
  return {
    name,
    hash: 'sha256',
    exchange(initBody: Uint8Array): KexExchange {
      // RFC 5656 §4 / RFC 8731 §3: KEX_ECDH_INIT is `string Q_C`, nothing else.
      const r = new SshReader(initBody);
      const qc = r.bytes(Infinity, 'Q_C');
      r.assertEnd('KEX_ECDH_INIT');
      // RFC 8731 §3: Q_C MUST be exactly 32 bytes; anything else is a failed exchange, not a
      // value to pad or truncate.
      if (qc.length !== X25519_BYTES) {
        throw new DisconnectError(
          DISCONNECT.KEY_EXCHANGE_FAILED,
          `curve25519 Q_C is ${qc.length} bytes, expected ${X25519_BYTES}`,
        );
      }

      const secretKey = randomSecretKey();
      let shared: Uint8Array;
      try {
        // The shared secret comes first so a bad Q_C costs us no fixed-base multiplication.
        // noble refuses the low-order u-coordinates (the libsodium blocklist, after reducing mod
        // p and masking bit 255) before running the ladder: with them every scalar gives the
        // all-zero output, so the "secret" would be known to anyone watching (RFC 7748 §6.1).
        shared = x25519.getSharedSecret(secretKey, qc);
      } catch {
        secretKey.fill(0);
        throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, 'curve25519 Q_C is a low-order point');
      }
      const qs = x25519.getPublicKey(secretKey);
      secretKey.fill(0);

      // RFC 8731 §3 requires aborting on an all-zero K. The blocklist above already excludes
      // every input that produces one; this check keeps the guarantee here, independent of the
      // library, and ORs every byte so it does not stop at the first nonzero one.
      let acc = 0;
      for (let i = 0; i < shared.length; i++) acc |= shared[i]!;
      if (acc === 0) {
        throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, 'curve25519 shared secret is all zero');
      }

      // RFC 8731 §3.1: the X25519 output bytes, unchanged, as a big-endian unsigned integer.
      // mpint() drops leading zero bytes and adds 0x00 when the top bit is set.
      const sharedSecret = new SshWriter(X25519_BYTES + 5).mpint(shared).bytes();
      shared.fill(0);
      return {
        // A fresh copy: `qc` is a view into the packet buffer, which the framer reuses.
        clientField: new SshWriter(X25519_BYTES + 4).string(qc).bytes(),
        serverField: new SshWriter(X25519_BYTES + 4).string(qs).bytes(),
        sharedSecret,
      };
    },
  };
}
