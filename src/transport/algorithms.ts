import type { HostKey } from './host-key-types.js';

/** Default preference order (issue #2; RFC 9142 for kex; no SHA-1, no CBC, no 3DES). */
export const DEFAULT_KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
] as const;

export const DEFAULT_CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
] as const;

export const DEFAULT_MACS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
] as const;

/** Only with `allowSha1Mac`, for clients too old for SHA-2 MACs. */
export const SHA1_MACS = ['hmac-sha1-etm@openssh.com', 'hmac-sha1'] as const;

export const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
] as const;

/** User-key signature algorithms we verify, announced as server-sig-algs. */
export function userKeyAlgorithms(allowSshRsaSha1: boolean): string[] {
  const list: string[] = [...DEFAULT_HOST_KEY_ALGORITHMS];
  if (allowSshRsaSha1) list.push('ssh-rsa');
  return list;
}

/** The host-key algorithms to offer: those of our keys, in the default order. */
export function hostKeyAlgorithmsFor(keys: readonly HostKey[], allowSshRsaSha1: boolean): string[] {
  const have = new Set(keys.flatMap((k) => k.algorithms));
  const order: string[] = [...DEFAULT_HOST_KEY_ALGORITHMS];
  if (allowSshRsaSha1) order.push('ssh-rsa');
  return order.filter((a) => have.has(a));
}

/**
 * Checks a configured list against what is implemented; returns an error message naming
 * the unknown entry, or null.
 */
export function checkList(what: string, list: readonly string[], known: readonly string[]): string | null {
  if (list.length === 0) return `${what}: the list is empty`;
  for (const a of list) if (!known.includes(a)) return `${what}: unsupported algorithm ${a}`;
  return null;
}
