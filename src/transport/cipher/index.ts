import { ctrHmacOpeningKey, ctrHmacSealingKey, type CtrAlgorithm, type HmacHash, type HmacSpec } from './aes-ctr-hmac.js';
import { gcmOpeningKey, gcmSealingKey, type GcmAlgorithm } from './aes-gcm.js';
import { chachaPolyOpeningKey, chachaPolySealingKey } from './chacha20-poly1305.js';
import type { CipherInfo, DirectionKeys, MacInfo, OpeningKey, SealingKey } from './types.js';

export { noneOpeningKey, noneSealingKey } from './none.js';
export type { CipherInfo, DirectionKeys, MacInfo, OpeningKey, SealingKey } from './types.js';

/**
 * The binary-packet ciphers we implement, by SSH name. Key and IV lengths are what key
 * derivation must produce (RFC 4253 §7.2). AEAD ciphers carry their own tag and ignore the
 * negotiated MAC (OpenSSH PROTOCOL §1.6); chacha20-poly1305 takes no IV, its nonce being the
 * sequence number.
 */
export const CIPHERS: Readonly<Record<string, CipherInfo>> = Object.freeze({
  'chacha20-poly1305@openssh.com': { keyLength: 64, ivLength: 0, blockSize: 8, aead: true },
  'aes128-gcm@openssh.com': { keyLength: 16, ivLength: 12, blockSize: 16, aead: true },
  'aes256-gcm@openssh.com': { keyLength: 32, ivLength: 12, blockSize: 16, aead: true },
  'aes128-ctr': { keyLength: 16, ivLength: 16, blockSize: 16, aead: false },
  'aes192-ctr': { keyLength: 24, ivLength: 16, blockSize: 16, aead: false },
  'aes256-ctr': { keyLength: 32, ivLength: 16, blockSize: 16, aead: false },
});

/** MACs for the CTR ciphers. The key is as long as the hash output (RFC 4253 §6.4, RFC 6668). */
export const MACS: Readonly<Record<string, MacInfo>> = Object.freeze({
  'hmac-sha2-256-etm@openssh.com': { keyLength: 32, macLength: 32, etm: true },
  'hmac-sha2-512-etm@openssh.com': { keyLength: 64, macLength: 64, etm: true },
  'hmac-sha1-etm@openssh.com': { keyLength: 20, macLength: 20, etm: true },
  'hmac-sha2-256': { keyLength: 32, macLength: 32, etm: false },
  'hmac-sha2-512': { keyLength: 64, macLength: 64, etm: false },
  'hmac-sha1': { keyLength: 20, macLength: 20, etm: false },
});

const GCM: Readonly<Record<string, GcmAlgorithm>> = {
  'aes128-gcm@openssh.com': 'aes-128-gcm',
  'aes256-gcm@openssh.com': 'aes-256-gcm',
};

const CTR: Readonly<Record<string, CtrAlgorithm>> = {
  'aes128-ctr': 'aes-128-ctr',
  'aes192-ctr': 'aes-192-ctr',
  'aes256-ctr': 'aes-256-ctr',
};

const MAC_HASH: Readonly<Record<string, HmacHash>> = {
  'hmac-sha2-256-etm@openssh.com': 'sha256',
  'hmac-sha2-512-etm@openssh.com': 'sha512',
  'hmac-sha1-etm@openssh.com': 'sha1',
  'hmac-sha2-256': 'sha256',
  'hmac-sha2-512': 'sha512',
  'hmac-sha1': 'sha1',
};

function cipherInfo(name: string): CipherInfo {
  const info = Object.hasOwn(CIPHERS, name) ? CIPHERS[name] : undefined;
  if (info === undefined) throw new Error(`unsupported cipher ${name}`);
  return info;
}

/** The MAC half for a non-AEAD cipher; the key is checked here so a KDF bug fails loudly. */
function hmacSpec(k: DirectionKeys): HmacSpec {
  const name = k.mac;
  const info = name !== null && Object.hasOwn(MACS, name) ? MACS[name] : undefined;
  if (name === null || info === undefined) throw new Error(`cipher ${k.cipher} needs a supported MAC, got ${name}`);
  if (k.macKey.length !== info.keyLength) throw new RangeError(`${name} needs a ${info.keyLength}-byte key`);
  return { hash: MAC_HASH[name]!, key: k.macKey, macLength: info.macLength, etm: info.etm };
}

export function createSealingKey(k: DirectionKeys): SealingKey {
  cipherInfo(k.cipher);
  const gcm = GCM[k.cipher];
  if (gcm !== undefined) return gcmSealingKey(gcm, k.key, k.iv);
  if (k.cipher === 'chacha20-poly1305@openssh.com') return chachaPolySealingKey(k.key);
  return ctrHmacSealingKey(CTR[k.cipher]!, k.key, k.iv, hmacSpec(k));
}

export function createOpeningKey(k: DirectionKeys): OpeningKey {
  cipherInfo(k.cipher);
  const gcm = GCM[k.cipher];
  if (gcm !== undefined) return gcmOpeningKey(gcm, k.key, k.iv);
  if (k.cipher === 'chacha20-poly1305@openssh.com') return chachaPolyOpeningKey(k.key);
  return ctrHmacOpeningKey(CTR[k.cipher]!, k.key, k.iv, hmacSpec(k));
}
