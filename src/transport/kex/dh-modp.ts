import { createDiffieHellman, getDiffieHellman, randomBytes } from 'node:crypto';
import { SshReader } from '../../wire/reader.js';
import { SshWriter } from '../../wire/writer.js';
import { DISCONNECT } from '../constants.js';
import { DisconnectError } from '../errors.js';
import type { KexExchange, KexMethod } from './types.js';

export type ModpName =
  | 'diffie-hellman-group14-sha256'
  | 'diffie-hellman-group16-sha512'
  | 'diffie-hellman-group18-sha512';

/**
 * RFC 8268 §3 (and RFC 4253 §8.2 for group 14): each name is an RFC 3526 MODP group with
 * generator 2 and a hash. node:crypto's 'modp14'/'modp16'/'modp18' are the RFC 3526 §3/§5/§7
 * primes; spec/transport/kex/dh-modp.test.ts rebuilds them from the RFC's formula to prove it.
 */
const GROUPS = {
  'diffie-hellman-group14-sha256': { group: 'modp14', bits: 2048, hash: 'sha256' },
  'diffie-hellman-group16-sha512': { group: 'modp16', bits: 4096, hash: 'sha512' },
  'diffie-hellman-group18-sha512': { group: 'modp18', bits: 8192, hash: 'sha512' },
} as const;

const GENERATOR = 2;

/**
 * Bits in the server's secret exponent x, for every group. The best attacks on a short
 * exponent (Pollard's lambda, baby-step giant-step) take about 2^(bits/2) steps, so the
 * exponent needs twice the group's security strength (RFC 3526 §8; RFC 4419 §6.2 asks for
 * twice the bits of the symmetric key). The moduli give roughly 112, 150 and 200 bits
 * (NIST SP 800-57 Part 1 Table 2), and our strongest ciphers take 256-bit keys, so 512 bits
 * covers all three groups; it is also the floor OpenSSH uses (dh_gen_key doubles at least
 * 256). The cost of the two modexps grows with these bits, not the modulus alone, which is
 * why we do not use a full-size exponent.
 */
export const DH_EXPONENT_BITS = 512;

interface Group {
  prime: Buffer;
  /** p − 1, big-endian, the same length as p: the upper bound for e and f. */
  pMinus1: Buffer;
  /** The modulus length in bytes. */
  bytes: number;
}

const groups = new Map<string, Group>();

function loadGroup(group: 'modp14' | 'modp16' | 'modp18', bits: number): Group {
  let g = groups.get(group);
  if (g === undefined) {
    const prime = getDiffieHellman(group).getPrime();
    if (prime.length * 8 !== bits) throw new Error(`node:crypto ${group} is ${prime.length * 8} bits, expected ${bits}`);
    const pMinus1 = Buffer.from(prime);
    // An RFC 3526 prime ends in 64 one bits, so p − 1 only clears the last bit.
    pMinus1[pMinus1.length - 1]! &= 0xfe;
    g = { prime, pMinus1, bytes: prime.length };
    groups.set(group, g);
  }
  return g;
}

/** A fresh exponent of exactly DH_EXPONENT_BITS bits: the top bit is set so it is never short. */
function randomExponent(): Uint8Array {
  const x = randomBytes(DH_EXPONENT_BITS / 8);
  x[0]! |= 0x80;
  return x;
}

function fail(name: string, message: string): never {
  throw new DisconnectError(DISCONNECT.KEY_EXCHANGE_FAILED, `${name}: ${message}`);
}

/**
 * Finite-field Diffie-Hellman over a fixed RFC 3526 group (RFC 4253 §8, RFC 8268).
 * KEXDH_INIT (30) carries `mpint e`, the reply `mpint f`; K = e^x mod p as an mpint.
 *
 * The modular exponentiation uses node:crypto (OpenSSL): noble has no modexp, and JavaScript
 * BigInt is tens of times slower at 4096–8192 bits, which would turn every login that picks
 * these methods into a CPU-exhaustion lever (DHEat, CVE-2002-20001). Curves are preferred in
 * our KEXINIT; these groups are there for clients that have nothing else.
 *
 * `exponent` exists for tests; the server always draws a fresh random one.
 */
export function dhModpKex(name: ModpName, exponent: () => Uint8Array = randomExponent): KexMethod {
  const { group, bits, hash } = GROUPS[name];
  return {
    name,
    hash,
    exchange(initBody: Uint8Array): KexExchange {
      const g = loadGroup(group, bits);
      const r = new SshReader(initBody);
      // Read the field raw and check it here, so every bad e is KEY_EXCHANGE_FAILED with a
      // precise reason. The view costs nothing; the framer already capped the packet size.
      const field = r.bytes(Infinity, 'e');
      r.assertEnd('KEXDH_INIT');

      // Length first: nothing may cost more than a comparison until e is known to be in range.
      // A minimal mpint below p has at most one 0x00 byte in front of the modulus length.
      if (field.length > g.bytes + 1) fail(name, `e is ${field.length} bytes, longer than the ${bits}-bit modulus`);
      if (field.length === 0) fail(name, 'e is 0');
      if (field[0]! & 0x80) fail(name, 'e is negative');
      let e = field;
      if (e[0] === 0) {
        // RFC 4251 §5: no unnecessary leading zero bytes. We hash clientField as received, so
        // a non-minimal e would be hashed differently by a client that re-encodes it.
        if (e.length === 1 || (e[1]! & 0x80) === 0) fail(name, 'e is not a minimal mpint');
        e = e.subarray(1);
      }
      // RFC 4253 §8: "Values of 'e' or 'f' that are not in the range [1, p-1] MUST NOT be sent
      // or accepted". We also refuse 1 and p − 1: they are the elements of order 1 and 2, and
      // would make K one of two values anyone can guess (the 2 <= e <= p − 2 range check of
      // NIST SP 800-56A §5.6.2.3).
      if (e.length > g.bytes) fail(name, 'e is not below p');
      if (e.length === 1 && e[0] === 1) fail(name, 'e is 1');
      if (e.length === g.bytes && Buffer.compare(e, g.pMinus1) >= 0) fail(name, 'e is not below p - 1');

      // A new object per exchange: node:crypto keeps the private key inside it, and its
      // construction from a known prime is cheap (no primality test, a few microseconds).
      const x = exponent();
      const dh = createDiffieHellman(g.prime, GENERATOR);
      dh.setPrivateKey(x);
      x.fill(0);
      const f = dh.generateKeys();
      let k: Buffer;
      try {
        k = dh.computeSecret(e);
      } catch {
        // Unreachable after the range checks above; kept so an OpenSSL refusal is still a
        // KEX failure and not an internal error.
        fail(name, 'e was refused by the DH implementation');
      }
      // p is a safe prime (p = 2q + 1) and 1 < e < p − 1, so e has order q or 2q, and with
      // 0 < x < q the result is never 0, 1 or p − 1: no check of K is needed.
      const sharedSecret = new SshWriter(g.bytes + 5).mpint(k).bytes();
      k.fill(0);
      return {
        clientField: new SshWriter(e.length + 5).mpint(e).bytes(),
        serverField: new SshWriter(g.bytes + 5).mpint(f).bytes(),
        sharedSecret,
      };
    },
  };
}
