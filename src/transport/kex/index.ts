import { curve25519Kex } from './curve25519.js';
import { dhModpKex } from './dh-modp.js';
import { ecdhNistKex } from './ecdh-nist.js';
import type { KexMethod } from './types.js';

export type { KexExchange, KexMethod } from './types.js';
export { exchangeHash, KEX_HASHES, KEX_HASH_LENGTH, type ExchangeHashParts, type KexHash } from './exchange-hash.js';
export { deriveAll, deriveKey, type DerivedKeys, type KeyLengths, type KeyLetter } from './derive-keys.js';

/**
 * Every key-exchange method the server implements, by its SSH name, as a factory: each
 * exchange must use fresh ephemeral keys, so the transport takes a new method object per key
 * exchange (including rekeys) and never reuses one.
 *
 * Listed in our order of preference: X25519 first (cheapest), then the NIST curves, then the
 * MODP groups in OpenSSH's order. The groups cost the most CPU per login (DHEat,
 * CVE-2002-20001), so they come last; the client's order decides the method in any case
 * (RFC 4253 §7.1).
 *
 * The object has no prototype, so a peer-chosen name such as "constructor" or "__proto__"
 * looks up as undefined instead of reaching Object.prototype.
 */
export const KEX_METHODS: Readonly<Record<string, () => KexMethod>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, () => KexMethod>, {
    'curve25519-sha256': () => curve25519Kex('curve25519-sha256'),
    'curve25519-sha256@libssh.org': () => curve25519Kex('curve25519-sha256@libssh.org'),
    'ecdh-sha2-nistp256': () => ecdhNistKex('ecdh-sha2-nistp256'),
    'ecdh-sha2-nistp384': () => ecdhNistKex('ecdh-sha2-nistp384'),
    'ecdh-sha2-nistp521': () => ecdhNistKex('ecdh-sha2-nistp521'),
    'diffie-hellman-group16-sha512': () => dhModpKex('diffie-hellman-group16-sha512'),
    'diffie-hellman-group18-sha512': () => dhModpKex('diffie-hellman-group18-sha512'),
    'diffie-hellman-group14-sha256': () => dhModpKex('diffie-hellman-group14-sha256'),
  }),
);
