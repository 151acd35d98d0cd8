import { p256, p384, p521 } from '@noble/curves/nist.js';
import { SshReader } from '../../wire/reader.js';
import { SshWriter } from '../../wire/writer.js';
import { DISCONNECT } from '../constants.js';
import { DisconnectError } from '../errors.js';
import type { KexExchange, KexMethod } from './types.js';

export type EcdhName = 'ecdh-sha2-nistp256' | 'ecdh-sha2-nistp384' | 'ecdh-sha2-nistp521';

/** RFC 5656 §6.2.1: the curve and hash each method name stands for. */
const CURVES = {
  'ecdh-sha2-nistp256': { curve: p256, hash: 'sha256' },
  'ecdh-sha2-nistp384': { curve: p384, hash: 'sha384' },
  'ecdh-sha2-nistp521': { curve: p521, hash: 'sha512' },
} as const;

/** SEC1 §2.3.3: the uncompressed point form 0x04 || X || Y. */
const UNCOMPRESSED = 0x04;

/**
 * ECDH over NIST P-256/384/521 (RFC 5656 §4). KEX_ECDH_INIT carries `string Q_C`, the reply
 * `string Q_S`, both SEC1 uncompressed points; K is the x coordinate of the shared point
 * (RFC 5656 §4, SEC1 §3.3.1) as an mpint.
 *
 * `randomSecretKey` exists for tests; the server always uses a fresh CSPRNG scalar.
 */
export function ecdhNistKex(name: EcdhName, randomSecretKey?: () => Uint8Array): KexMethod {
  const { curve, hash } = CURVES[name];
  const Point = curve.Point;
  const fieldLen = Point.Fp.BYTES;
  const pointLen = 1 + 2 * fieldLen;
  const newSecretKey = randomSecretKey ?? (() => curve.utils.randomSecretKey());
  return {
    name,
    hash,
    exchange(initBody: Uint8Array): KexExchange {
      const r = new SshReader(initBody);
      const qc = r.bytes(Infinity, 'Q_C');
      r.assertEnd('KEX_ECDH_INIT');

      // RFC 5656 §4 requires the server to verify Q_C (SEC1 §3.2.2.1) before using it. We
      // check the cheap things first: the exact length and the 0x04 tag. That refuses the
      // compressed form (OpenSSH refuses it too, so no client sends it: accepting it would
      // only add a square root to what a peer can make us compute) and the one-byte
      // encoding of the point at infinity.
      if (qc.length !== pointLen || qc[0] !== UNCOMPRESSED) {
        throw new DisconnectError(
          DISCONNECT.KEY_EXCHANGE_FAILED,
          `${name} Q_C must be an uncompressed point of ${pointLen} bytes`,
        );
      }
      let peer: ReturnType<typeof Point.fromBytes>;
      try {
        // fromBytes checks that X and Y are field elements below p and that the point is on
        // the curve; an off-curve point would leak the secret scalar modulo small orders
        // (the invalid-curve attack).
        peer = Point.fromBytes(qc);
        peer.assertValidity();
      } catch {
        throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, `${name} Q_C is not a point on the curve`);
      }
      // Unreachable through fromBytes (infinity has no uncompressed encoding) but it is the
      // last SEC1 §3.2.2.1 condition and costs nothing. The NIST curves have cofactor 1, so
      // every other on-curve point has the full prime order: no subgroup check is needed.
      if (peer.is0()) throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, `${name} Q_C is the point at infinity`);

      const secretKey = newSecretKey();
      const scalar = Point.Fn.fromBytes(secretKey);
      // The scalar is in [1, n-1] and the peer has prime order n, so the product is never
      // infinity and toBytes() cannot throw.
      const x = peer.multiply(scalar).toBytes(true).subarray(1);
      const qs = curve.getPublicKey(secretKey, false);
      secretKey.fill(0);

      const sharedSecret = new SshWriter(fieldLen + 5).mpint(x).bytes();
      x.fill(0);
      return {
        // A fresh copy: `qc` is a view into the packet buffer, which the framer reuses.
        clientField: new SshWriter(pointLen + 4).string(qc).bytes(),
        serverField: new SshWriter(pointLen + 4).string(qs).bytes(),
        sharedSecret,
      };
    },
  };
}
