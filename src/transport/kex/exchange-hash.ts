import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { MSG } from '../constants.js';
import { SshWriter } from '../../wire/writer.js';
import type { KexMethod } from './types.js';

/** The hash a key-exchange method names (RFC 4253 §8, RFC 5656 §6.2, RFC 8731 §3, RFC 8268 §3). */
export type KexHash = KexMethod['hash'];

/** One-shot and incremental hashers by KEX hash name; shared with derive-keys. */
export const KEX_HASHES = { sha256, sha384, sha512 } as const;

/** Digest length in bytes of each KEX hash. */
export const KEX_HASH_LENGTH: Readonly<Record<KexHash, number>> = { sha256: 32, sha384: 48, sha512: 64 };

export interface ExchangeHashParts {
  /** V_C: the client's identification line without CR LF, one char per byte (latin1). */
  clientIdent: string;
  /** V_S: the server's identification line without CR LF, one char per byte (latin1). */
  serverIdent: string;
  /** I_C: the client's whole KEXINIT payload, starting with the message byte 20. */
  clientKexinit: Uint8Array;
  /** I_S: the server's whole KEXINIT payload, starting with the message byte 20. */
  serverKexinit: Uint8Array;
  /** K_S: the server host key blob. */
  hostKeyBlob: Uint8Array;
  /** `string Q_C` or `mpint e`, already wire-encoded (KexExchange.clientField). */
  clientField: Uint8Array;
  /** `string Q_S` or `mpint f`, already wire-encoded (KexExchange.serverField). */
  serverField: Uint8Array;
  /** `mpint K`, already wire-encoded (KexExchange.sharedSecret). */
  sharedSecret: Uint8Array;
}

/**
 * The exchange hash H (RFC 4253 §8, RFC 5656 §4, RFC 8731 §3):
 *
 *   string V_C, string V_S, string I_C, string I_S, string K_S,
 *   Q_C / e, Q_S / f, mpint K
 *
 * The last three are copied as the method encoded them, so this function never needs to know
 * whether the method sends strings or mpints.
 */
export function exchangeHash(hash: KexHash, parts: ExchangeHashParts): Uint8Array {
  // These checks catch caller bugs, not peer input. Each one would otherwise give a hash that
  // silently disagrees with the client's, which surfaces as a signature failure on the client
  // with nothing to say why.
  const vc = identBytes(parts.clientIdent, 'clientIdent');
  const vs = identBytes(parts.serverIdent, 'serverIdent');
  checkKexinit(parts.clientKexinit, 'clientKexinit');
  checkKexinit(parts.serverKexinit, 'serverKexinit');

  const size =
    20 + vc.length + vs.length + parts.clientKexinit.length + parts.serverKexinit.length +
    parts.hostKeyBlob.length + parts.clientField.length + parts.serverField.length +
    parts.sharedSecret.length;
  const w = new SshWriter(size);
  w.string(vc).string(vs).string(parts.clientKexinit).string(parts.serverKexinit).string(parts.hostKeyBlob);
  w.raw(parts.clientField).raw(parts.serverField).raw(parts.sharedSecret);
  const buf = w.bytes();
  const h = KEX_HASHES[hash](buf);
  // The buffer holds K; clear it rather than leave the secret in a pooled allocation.
  buf.fill(0);
  return h;
}

/**
 * The identification line's bytes. The line is printable US-ASCII by RFC 4253 §4.2, but we
 * encode as latin1 so that an ident decoded one byte per char round-trips exactly; a char
 * above 0xFF means it was decoded some other way and the bytes cannot be recovered.
 */
function identBytes(ident: string, what: string): Buffer {
  for (let i = 0; i < ident.length; i++) {
    const c = ident.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) throw new RangeError(`${what} must not include CR or LF`);
    if (c > 0xff) throw new RangeError(`${what} must be decoded one byte per char (latin1)`);
  }
  return Buffer.from(ident, 'latin1');
}

function checkKexinit(payload: Uint8Array, what: string): void {
  if (payload.length === 0 || payload[0] !== MSG.KEXINIT) {
    throw new RangeError(`${what} must be the whole KEXINIT payload, starting with byte ${MSG.KEXINIT}`);
  }
}
