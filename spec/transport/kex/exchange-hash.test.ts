import {
  createDiffieHellman,
  createECDH,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  getDiffieHellman,
  randomBytes,
} from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { exchangeHash, type ExchangeHashParts } from '../../../src/transport/kex/exchange-hash.js';
import { deriveAll } from '../../../src/transport/kex/derive-keys.js';
import { KEX_METHODS } from '../../../src/transport/kex/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
const str = (b: Uint8Array | string): Buffer => {
  const v = typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b);
  return Buffer.concat([u32(v.length), v]);
};
function mpint(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = Buffer.from(magnitude.subarray(i));
  return str(m.length > 0 && m[0]! & 0x80 ? Buffer.concat([Buffer.of(0), m]) : m);
}

/** The client's side of H, built by hand as RFC 4253 §8 / RFC 5656 §4 lay it out. */
function referenceH(alg: string, p: ExchangeHashParts): Buffer {
  return createHash(alg)
    .update(str(p.clientIdent))
    .update(str(p.serverIdent))
    .update(str(p.clientKexinit))
    .update(str(p.serverKexinit))
    .update(str(p.hostKeyBlob))
    .update(p.clientField)
    .update(p.serverField)
    .update(p.sharedSecret)
    .digest();
}

/** A plausible KEXINIT payload: byte 20, cookie, and some name-lists. */
function kexinit(kex: string): Buffer {
  const lists = [kex, 'ssh-ed25519', 'aes128-ctr', 'aes128-ctr', 'hmac-sha2-256', 'hmac-sha2-256', 'none', 'none', '', ''];
  return Buffer.concat([Buffer.of(20), randomBytes(16), ...lists.map((l) => str(l)), Buffer.of(0), u32(0)]);
}

const HOST_KEY = Buffer.concat([str('ssh-ed25519'), str(randomBytes(32))]);

function parts(kex: string): ExchangeHashParts {
  return {
    clientIdent: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3',
    serverIdent: 'SSH-2.0-s3gw_0.1',
    clientKexinit: kexinit(kex),
    serverKexinit: kexinit(kex),
    hostKeyBlob: HOST_KEY,
    clientField: str(randomBytes(32)),
    serverField: str(randomBytes(32)),
    sharedSecret: mpint(randomBytes(32)),
  };
}

/** A client for each method, written with node:crypto only: its init body and how it gets K. */
function simulatedClient(name: string): { init: Buffer; clientField: Buffer; sharedSecret: (serverField: Uint8Array) => Buffer } {
  if (name.startsWith('curve25519')) {
    const kp = generateKeyPairSync('x25519');
    const q = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    return {
      init: str(q),
      clientField: str(q),
      sharedSecret: (sf) => {
        const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(sf.subarray(4)).toString('base64url') }, format: 'jwk' });
        return mpint(diffieHellman({ privateKey: kp.privateKey, publicKey: pub }));
      },
    };
  }
  if (name.startsWith('ecdh-sha2-')) {
    const curve = { 'ecdh-sha2-nistp256': 'prime256v1', 'ecdh-sha2-nistp384': 'secp384r1', 'ecdh-sha2-nistp521': 'secp521r1' }[name]!;
    const ecdh = createECDH(curve);
    const q = ecdh.generateKeys();
    return { init: str(q), clientField: str(q), sharedSecret: (sf) => mpint(ecdh.computeSecret(sf.subarray(4))) };
  }
  const group = { 'diffie-hellman-group14-sha256': 'modp14', 'diffie-hellman-group16-sha512': 'modp16', 'diffie-hellman-group18-sha512': 'modp18' }[name]!;
  const dh = createDiffieHellman(getDiffieHellman(group).getPrime(), 2);
  const e = dh.generateKeys();
  return { init: mpint(e), clientField: mpint(e), sharedSecret: (sf) => mpint(dh.computeSecret(sf.subarray(4))) };
}

const Hash = suite('exchange-hash');

Hash('H is HASH(string V_C, V_S, I_C, I_S, K_S, then the three fields as given) for each hash', () => {
  for (const alg of ['sha256', 'sha384', 'sha512'] as const) {
    const p = parts('curve25519-sha256');
    assert.is(hex(exchangeHash(alg, p)), hex(referenceH(alg, p)), alg);
  }
});

Hash('the wire fields are copied as-is, not re-encoded', () => {
  // A DH-style exchange: mpint e and f, one of them with a leading 0x00.
  const p = { ...parts('diffie-hellman-group14-sha256'), clientField: mpint(Buffer.from('ff01', 'hex')), serverField: mpint(Buffer.from('7f', 'hex')) };
  assert.is(hex(p.clientField), '0000000300ff01');
  assert.is(hex(exchangeHash('sha256', p)), hex(referenceH('sha256', p)));
});

Hash('idents are hashed one byte per char, without CR LF', () => {
  const p = { ...parts('curve25519-sha256'), clientIdent: 'SSH-2.0-caf\u00e9 comment' };
  const want = createHash('sha256')
    .update(Buffer.concat([u32(20), Buffer.from('SSH-2.0-caf', 'latin1'), Buffer.of(0xe9), Buffer.from(' comment')]))
    .update(str(p.serverIdent)).update(str(p.clientKexinit)).update(str(p.serverKexinit)).update(str(p.hostKeyBlob))
    .update(p.clientField).update(p.serverField).update(p.sharedSecret)
    .digest();
  assert.is(hex(exchangeHash('sha256', p)), hex(want));
});

Hash('caller mistakes that would silently break H are RangeErrors', () => {
  const p = parts('curve25519-sha256');
  assert.throws(() => exchangeHash('sha256', { ...p, clientIdent: p.clientIdent + '\r\n' }), RangeError);
  assert.throws(() => exchangeHash('sha256', { ...p, serverIdent: 'SSH-2.0-x\n' }), RangeError);
  assert.throws(() => exchangeHash('sha256', { ...p, clientIdent: 'SSH-2.0-\u20ac' }), RangeError);
  assert.throws(() => exchangeHash('sha256', { ...p, clientKexinit: p.clientKexinit.subarray(1) }), RangeError);
  assert.throws(() => exchangeHash('sha256', { ...p, serverKexinit: new Uint8Array(0) }), RangeError);
});

Hash('every method: exchangeHash + deriveAll agree with a client built on node:crypto alone', () => {
  for (const name of Object.keys(KEX_METHODS)) {
    const method = KEX_METHODS[name]!();
    const client = simulatedClient(name);
    const ex = method.exchange(client.init);

    // The client's view: its own public value, the server's from the reply, its own K.
    const clientK = client.sharedSecret(ex.serverField);
    assert.is(hex(clientK), hex(ex.sharedSecret), `${name} K`);
    const base = parts(name);
    const serverParts = { ...base, clientField: ex.clientField, serverField: ex.serverField, sharedSecret: ex.sharedSecret };
    const clientParts = { ...base, clientField: client.clientField, serverField: Buffer.from(ex.serverField), sharedSecret: clientK };

    const H = exchangeHash(method.hash, serverParts);
    const clientH = referenceH(method.hash, clientParts);
    assert.is(hex(H), hex(clientH), `${name} H`);

    // First exchange: session_id = H. Client keys by RFC 4253 §7.2 with node:crypto.
    const lengths = { ivC2S: 12, ivS2C: 12, keyC2S: 32, keyS2C: 32, macC2S: 64, macS2C: 64 };
    const keys = deriveAll(method.hash, ex.sharedSecret, H, H, lengths);
    const expand = (letter: string, len: number): Buffer => {
      let out = createHash(method.hash).update(clientK).update(clientH).update(letter).update(clientH).digest();
      while (out.length < len) out = Buffer.concat([out, createHash(method.hash).update(clientK).update(clientH).update(out).digest()]);
      return out.subarray(0, len);
    };
    assert.is(hex(keys.ivC2S), hex(expand('A', 12)), `${name} A`);
    assert.is(hex(keys.ivS2C), hex(expand('B', 12)), `${name} B`);
    assert.is(hex(keys.keyC2S), hex(expand('C', 32)), `${name} C`);
    assert.is(hex(keys.keyS2C), hex(expand('D', 32)), `${name} D`);
    assert.is(hex(keys.macC2S), hex(expand('E', 64)), `${name} E`);
    assert.is(hex(keys.macS2C), hex(expand('F', 64)), `${name} F`);
  }
});

Hash.run();
