import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { chooseAlgorithm, decodeKexInit, encodeKexInit, negotiate, type KexInit } from '../../src/transport/negotiate.js';
import { DisconnectError } from '../../src/transport/errors.js';
import { DISCONNECT } from '../../src/transport/constants.js';
import { MalformedError } from '../../src/wire/errors.js';
import { hex, packet } from '../helpers/golden.js';

const Negotiate = suite('transport/negotiate: KEXINIT codec and algorithm choice');

/** Our server's lists (src/transport/algorithms.ts defaults), written out so the test pins them. */
const SERVER: KexInit = {
  cookie: new Uint8Array(16),
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group14-sha256',
  ],
  hostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
  cipherC2S: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
  cipherS2C: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
  macC2S: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  macS2C: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  compC2S: ['none'],
  compS2C: ['none'],
  langC2S: [],
  langS2C: [],
  firstKexFollows: false,
};

const AEAD = new Set(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']);
const isAead = (c: string): boolean => AEAD.has(c);

function disconnect(fn: () => unknown, reason: number, pattern?: RegExp): DisconnectError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof DisconnectError)) throw err;
    assert.is(err.reason, reason);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.unreachable('expected a DisconnectError');
  throw new Error('unreachable');
}

const plain = (m: KexInit) => ({ ...m, cookie: [...m.cookie] });

// --- golden bytes --------------------------------------------------------------------------

/** A small KEXINIT, one wire field per line (RFC 4253 §7.1). */
const SMALL_BYTES = hex(
  '14', // byte      SSH_MSG_KEXINIT
  '00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f', // byte[16]  cookie
  '00 00 00 11', // name-list kex_algorithms (17)
  '  63 75 72 76 65 32 35 35 31 39 2d 73 68 61 32 35 36', //   curve25519-sha256
  '00 00 00 0b', // name-list server_host_key_algorithms (11)
  '  73 73 68 2d 65 64 32 35 35 31 39', //   ssh-ed25519
  '00 00 00 16', // name-list encryption c2s (22)
  '  61 65 73 31 32 38 2d 67 63 6d 40 6f 70 65 6e 73 73 68 2e 63 6f 6d', //   aes128-gcm@openssh.com
  '00 00 00 0a', // name-list encryption s2c (10)
  '  61 65 73 31 32 38 2d 63 74 72', //   aes128-ctr
  '00 00 00 0d', // name-list mac c2s (13)
  '  68 6d 61 63 2d 73 68 61 32 2d 32 35 36', //   hmac-sha2-256
  '00 00 00 00', // name-list mac s2c ()
  '00 00 00 09', // name-list compression c2s (9)
  '  6e 6f 6e 65 2c 7a 6c 69 62', //   none,zlib
  '00 00 00 04', // name-list compression s2c (4)
  '  6e 6f 6e 65', //   none
  '00 00 00 00', // name-list languages c2s ()
  '00 00 00 02', // name-list languages s2c (2)
  '  65 6e', //   en
  '01', // boolean   first_kex_packet_follows
  '00 00 00 00', // uint32    0 (reserved)
);

const SMALL: KexInit = {
  cookie: Uint8Array.from({ length: 16 }, (_, i) => i),
  kex: ['curve25519-sha256'],
  hostKey: ['ssh-ed25519'],
  cipherC2S: ['aes128-gcm@openssh.com'],
  cipherS2C: ['aes128-ctr'],
  macC2S: ['hmac-sha2-256'],
  macS2C: [],
  compC2S: ['none', 'zlib'],
  compS2C: ['none'],
  langC2S: [],
  langS2C: ['en'],
  firstKexFollows: true,
};

Negotiate('encodeKexInit writes the golden bytes', () => {
  assert.is(encodeKexInit(SMALL).toString('hex'), SMALL_BYTES.toString('hex'));
});

Negotiate('decodeKexInit reads the golden bytes', () => {
  assert.equal(plain(decodeKexInit(SMALL_BYTES)), plain(SMALL));
});

/** The first packet of a real OpenSSH 9.2p1 client (fixtures/packets/openssh-9.2-kexinit.hex). */
const OPENSSH_BYTES = packet('openssh-9.2-kexinit');

Negotiate('decodeKexInit reads the KEXINIT of OpenSSH 9.2', () => {
  const m = decodeKexInit(OPENSSH_BYTES);
  assert.is(Buffer.from(m.cookie).toString('hex'), '69182043b84e1d9d3bf6179f71808aee');
  assert.is(m.kex.length, 13);
  assert.is(m.kex[0], 'sntrup761x25519-sha512');
  assert.ok(m.kex.includes('ext-info-c'));
  assert.is(m.kex[m.kex.length - 1], 'kex-strict-c-v00@openssh.com');
  assert.is(m.hostKey.length, 16);
  assert.is(m.hostKey[0], 'ssh-ed25519-cert-v01@openssh.com');
  assert.equal(m.cipherC2S, [
    'chacha20-poly1305@openssh.com',
    'aes128-ctr',
    'aes192-ctr',
    'aes256-ctr',
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
  ]);
  assert.equal(m.cipherS2C, m.cipherC2S);
  assert.is(m.macC2S.length, 10);
  assert.is(m.macC2S[0], 'umac-64-etm@openssh.com');
  assert.equal(m.compC2S, ['none', 'zlib@openssh.com', 'zlib']);
  assert.equal(m.langC2S, []);
  assert.equal(m.langS2C, []);
  assert.is(m.firstKexFollows, false);
});

Negotiate('encodeKexInit re-encodes the OpenSSH 9.2 KEXINIT byte for byte', () => {
  assert.is(encodeKexInit(decodeKexInit(OPENSSH_BYTES)).toString('hex'), OPENSSH_BYTES.toString('hex'));
});

Negotiate('KEXINITs round-trip (property)', () => {
  const name = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,24}$/);
  const list = fc.array(name, { maxLength: 10 });
  const kexinit: fc.Arbitrary<KexInit> = fc.record({
    cookie: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    kex: list,
    hostKey: list,
    cipherC2S: list,
    cipherS2C: list,
    macC2S: list,
    macS2C: list,
    compC2S: list,
    compS2C: list,
    langC2S: list,
    langS2C: list,
    firstKexFollows: fc.boolean(),
  });
  fc.assert(
    fc.property(kexinit, (m) => {
      const bytes = encodeKexInit(m);
      assert.equal(plain(decodeKexInit(bytes)), plain(m));
    }),
    { numRuns: 300 },
  );
});

// --- hostile KEXINITs ----------------------------------------------------------------------

Negotiate('decodeKexInit refuses another message type', () => {
  const b = Buffer.from(SMALL_BYTES);
  b[0] = 21; // NEWKEYS
  disconnect(() => decodeKexInit(b), DISCONNECT.PROTOCOL_ERROR, /not a KEXINIT/);
});

Negotiate('decodeKexInit refuses a cookie shorter than 16 bytes', () => {
  disconnect(() => decodeKexInit(SMALL_BYTES.subarray(0, 16)), DISCONNECT.PROTOCOL_ERROR, /truncated KEXINIT/);
});

Negotiate('decodeKexInit refuses an empty payload', () => {
  assert.throws(() => decodeKexInit(new Uint8Array(0)), (e: unknown) => e instanceof MalformedError);
});

Negotiate('decodeKexInit refuses every truncation of the OpenSSH KEXINIT', () => {
  for (let len = 0; len < OPENSSH_BYTES.length; len++) {
    assert.throws(
      () => decodeKexInit(OPENSSH_BYTES.subarray(0, len)),
      (e: unknown) => e instanceof MalformedError || e instanceof DisconnectError,
      `truncated to ${len}`,
    );
  }
});

Negotiate('decodeKexInit refuses a trailing byte', () => {
  assert.throws(() => decodeKexInit(Buffer.concat([SMALL_BYTES, Buffer.of(0)])), /1 trailing bytes after KEXINIT/);
});

Negotiate('decodeKexInit ignores a non-zero reserved field (RFC 4253 §7.1)', () => {
  const b = Buffer.from(SMALL_BYTES);
  b.writeUInt32BE(0xdeadbeef, b.length - 4);
  assert.equal(plain(decodeKexInit(b)), plain(SMALL));
});

Negotiate('decodeKexInit reads any non-zero first_kex_packet_follows as true', () => {
  const b = Buffer.from(OPENSSH_BYTES);
  b[b.length - 5] = 0x80;
  assert.is(decodeKexInit(b).firstKexFollows, true);
});

/** A KEXINIT whose kex_algorithms is `kexField` (a whole name-list field) and the rest empty. */
function withKexField(kexField: Uint8Array): Buffer {
  return Buffer.concat([hex('14', '00'.repeat(16)), kexField, Buffer.alloc(9 * 4), hex('00', '00 00 00 00')]);
}

const nameListField = (s: string): Buffer => {
  const b = Buffer.alloc(4 + s.length);
  b.writeUInt32BE(s.length, 0);
  b.write(s, 4, 'latin1');
  return b;
};

Negotiate('decodeKexInit refuses a name-list over 8192 bytes', () => {
  const list = Array.from({ length: 100 }, (_, i) => `m${i}-`.padEnd(82, 'x')).join(',');
  assert.ok(list.length > 8192);
  assert.throws(() => decodeKexInit(withKexField(nameListField(list))), /exceeds the limit of 8192/);
});

Negotiate('decodeKexInit refuses a 4 GiB name-list length without reading further', () => {
  assert.throws(() => decodeKexInit(withKexField(hex('ff ff ff ff'))), /kex_algorithms of 4294967295 bytes exceeds the limit/);
});

Negotiate('decodeKexInit refuses a name-list of 129 names', () => {
  const list = Array.from({ length: 129 }, (_, i) => `k${i}`).join(',');
  assert.throws(() => decodeKexInit(withKexField(nameListField(list))), /129 names, the limit is 128/);
});

Negotiate('decodeKexInit accepts a name-list of 128 names', () => {
  const list = Array.from({ length: 128 }, (_, i) => `k${i}`).join(',');
  assert.is(decodeKexInit(withKexField(nameListField(list))).kex.length, 128);
});

Negotiate('decodeKexInit refuses an empty name in a list', () => {
  assert.throws(() => decodeKexInit(withKexField(nameListField('curve25519-sha256,'))), /kex_algorithms has an empty name/);
});

Negotiate('decodeKexInit refuses a name with a space', () => {
  assert.throws(() => decodeKexInit(withKexField(nameListField('curve25519 sha256'))), /non-printable/);
});

// --- chooseAlgorithm (RFC 4253 §7.1) ---------------------------------------------------------

Negotiate("chooseAlgorithm picks the client's first algorithm that the server also has", () => {
  // RFC 4253 §7.1: "the first algorithm on the client's name-list that is also on the server's".
  assert.is(chooseAlgorithm(['aes256-ctr', 'aes128-ctr'], ['aes128-ctr', 'aes256-ctr'], 'cipher'), 'aes256-ctr');
  assert.is(chooseAlgorithm(['3des-cbc', 'aes128-ctr', 'aes256-ctr'], ['aes256-ctr', 'aes128-ctr'], 'cipher'), 'aes128-ctr');
  assert.is(chooseAlgorithm(['none'], ['none'], 'compression'), 'none');
});

Negotiate("chooseAlgorithm ignores the server's order", () => {
  const server = ['a', 'b', 'c', 'd'];
  assert.is(chooseAlgorithm(['d', 'a'], server, 'x'), 'd');
  assert.is(chooseAlgorithm(['x', 'y', 'c', 'b'], server, 'x'), 'c');
});

Negotiate('chooseAlgorithm fails with KEY_EXCHANGE_FAILED naming what and both lists', () => {
  const err = disconnect(
    () => chooseAlgorithm(['3des-cbc', 'blowfish-cbc'], ['aes128-ctr', 'aes256-ctr'], 'client to server cipher'),
    DISCONNECT.KEY_EXCHANGE_FAILED,
  );
  assert.match(err.message, /no matching client to server cipher/);
  assert.match(err.message, /3des-cbc,blowfish-cbc/);
  assert.match(err.message, /aes128-ctr,aes256-ctr/);
});

Negotiate('chooseAlgorithm says "none" when the client offered nothing', () => {
  const err = disconnect(() => chooseAlgorithm([], ['aes128-ctr'], 'cipher'), DISCONNECT.KEY_EXCHANGE_FAILED);
  assert.match(err.message, /client offered none/);
});

// --- negotiate -----------------------------------------------------------------------------

Negotiate('negotiate against OpenSSH 9.2 picks curve25519, ed25519, chacha20-poly1305 and no MAC', () => {
  const client = decodeKexInit(OPENSSH_BYTES);
  assert.equal(negotiate(client, SERVER, isAead), {
    kex: 'curve25519-sha256',
    hostKey: 'ssh-ed25519',
    cipherC2S: 'chacha20-poly1305@openssh.com',
    cipherS2C: 'chacha20-poly1305@openssh.com',
    macC2S: null,
    macS2C: null,
  });
});

Negotiate('negotiate never picks the ext-info-c or kex-strict-c markers', () => {
  const client: KexInit = { ...SERVER, kex: ['ext-info-c', 'kex-strict-c-v00@openssh.com', 'ecdh-sha2-nistp384'] };
  assert.is(negotiate(client, SERVER, isAead).kex, 'ecdh-sha2-nistp384');
});

Negotiate('negotiate picks a MAC for a non-AEAD cipher and none for an AEAD cipher, per direction', () => {
  const client: KexInit = {
    ...SERVER,
    cipherC2S: ['aes256-ctr', 'aes128-gcm@openssh.com'],
    cipherS2C: ['aes128-gcm@openssh.com', 'aes256-ctr'],
    macC2S: ['hmac-sha2-512', 'hmac-sha2-256'],
    macS2C: ['hmac-sha2-256'],
  };
  const n = negotiate(client, SERVER, isAead);
  assert.is(n.cipherC2S, 'aes256-ctr');
  assert.is(n.macC2S, 'hmac-sha2-512');
  assert.is(n.cipherS2C, 'aes128-gcm@openssh.com');
  assert.is(n.macS2C, null);
});

Negotiate('negotiate succeeds with an AEAD cipher even when the MAC lists have nothing in common', () => {
  // OpenSSH PROTOCOL §1.6: with an AEAD cipher the MAC list is ignored.
  const client: KexInit = { ...SERVER, cipherC2S: ['chacha20-poly1305@openssh.com'], cipherS2C: ['aes256-gcm@openssh.com'], macC2S: ['umac-64@openssh.com'], macS2C: [] };
  const n = negotiate(client, SERVER, isAead);
  assert.is(n.macC2S, null);
  assert.is(n.macS2C, null);
});

Negotiate('negotiate fails when a non-AEAD cipher has no common MAC', () => {
  const client: KexInit = { ...SERVER, cipherC2S: ['aes128-ctr'], macC2S: ['hmac-sha1', 'umac-64@openssh.com'] };
  disconnect(() => negotiate(client, SERVER, isAead), DISCONNECT.KEY_EXCHANGE_FAILED, /no matching client to server MAC.*hmac-sha1,umac-64@openssh.com/);
});

Negotiate('negotiate fails when there is no common compression', () => {
  const client: KexInit = { ...SERVER, compS2C: ['zlib@openssh.com', 'zlib'] };
  disconnect(() => negotiate(client, SERVER, isAead), DISCONNECT.KEY_EXCHANGE_FAILED, /no matching server to client compression/);
});

Negotiate('negotiate fails when there is no common key exchange, naming both lists', () => {
  const client: KexInit = { ...SERVER, kex: ['diffie-hellman-group1-sha1', 'ext-info-c'] };
  const err = disconnect(() => negotiate(client, SERVER, isAead), DISCONNECT.KEY_EXCHANGE_FAILED, /no matching key exchange algorithm/);
  assert.match(err.message, /diffie-hellman-group1-sha1,ext-info-c/);
  assert.match(err.message, /curve25519-sha256,/);
});

Negotiate('negotiate fails when there is no common host key algorithm', () => {
  const client: KexInit = { ...SERVER, hostKey: ['ssh-dss'] };
  disconnect(() => negotiate(client, SERVER, isAead), DISCONNECT.KEY_EXCHANGE_FAILED, /host key algorithm/);
});

Negotiate('negotiate does not look at the language lists', () => {
  const client: KexInit = { ...SERVER, langC2S: ['fr'], langS2C: ['de'] };
  assert.is(negotiate(client, SERVER, isAead).kex, 'curve25519-sha256');
});

Negotiate.run();
