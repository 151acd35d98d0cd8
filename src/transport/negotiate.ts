import { SshReader } from '../wire/reader.js';
import { SshWriter } from '../wire/writer.js';
import { DisconnectError } from './errors.js';
import { DISCONNECT, MSG } from './constants.js';

/**
 * KEXINIT (RFC 4253 §7.1):
 *
 *   byte         SSH_MSG_KEXINIT
 *   byte[16]     cookie (random bytes)
 *   name-list    kex_algorithms
 *   name-list    server_host_key_algorithms
 *   name-list    encryption_algorithms_client_to_server
 *   name-list    encryption_algorithms_server_to_client
 *   name-list    mac_algorithms_client_to_server
 *   name-list    mac_algorithms_server_to_client
 *   name-list    compression_algorithms_client_to_server
 *   name-list    compression_algorithms_server_to_client
 *   name-list    languages_client_to_server
 *   name-list    languages_server_to_client
 *   boolean      first_kex_packet_follows
 *   uint32       0 (reserved for future extension)
 */
export interface KexInit {
  cookie: Uint8Array;
  kex: string[];
  hostKey: string[];
  cipherC2S: string[];
  cipherS2C: string[];
  macC2S: string[];
  macS2C: string[];
  compC2S: string[];
  compS2C: string[];
  langC2S: string[];
  langS2C: string[];
  firstKexFollows: boolean;
}

/**
 * Caps on a peer's lists. OpenSSH 9.x sends about 1.5 KB in its largest list; these leave
 * room for every real client while refusing a KEXINIT built to make us split megabytes.
 */
const MAX_LIST_BYTES = 8192;
const MAX_LIST_NAMES = 128;

export function decodeKexInit(payload: Uint8Array): KexInit {
  const r = new SshReader(payload);
  if (r.u8() !== MSG.KEXINIT) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'not a KEXINIT');
  if (r.remaining < 16) throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'truncated KEXINIT');
  const cookie = r.buf.subarray(r.pos, r.pos + 16);
  r.pos += 16;
  const list = (what: string) => r.nameList(MAX_LIST_BYTES, MAX_LIST_NAMES, what);
  const msg: KexInit = {
    cookie,
    kex: list('kex_algorithms'),
    hostKey: list('server_host_key_algorithms'),
    cipherC2S: list('encryption_algorithms_client_to_server'),
    cipherS2C: list('encryption_algorithms_server_to_client'),
    macC2S: list('mac_algorithms_client_to_server'),
    macS2C: list('mac_algorithms_server_to_client'),
    compC2S: list('compression_algorithms_client_to_server'),
    compS2C: list('compression_algorithms_server_to_client'),
    langC2S: list('languages_client_to_server'),
    langS2C: list('languages_server_to_client'),
    firstKexFollows: r.bool(),
  };
  r.u32(); // reserved; RFC 4253 says "0" but implementations must ignore its value
  r.assertEnd('KEXINIT');
  return msg;
}

export function encodeKexInit(m: KexInit): Buffer {
  const w = new SshWriter(1024);
  w.u8(MSG.KEXINIT).raw(m.cookie);
  for (const l of [m.kex, m.hostKey, m.cipherC2S, m.cipherS2C, m.macC2S, m.macS2C, m.compC2S, m.compS2C, m.langC2S, m.langS2C]) {
    w.nameList(l);
  }
  w.bool(m.firstKexFollows).u32(0);
  return Buffer.from(w.bytes());
}

/** RFC 4253 §7.1: the first algorithm on the client's list that the server also supports. */
export function chooseAlgorithm(client: readonly string[], server: readonly string[], what: string): string {
  for (const c of client) if (server.includes(c)) return c;
  throw new DisconnectError(
    DISCONNECT.KEY_EXCHANGE_FAILED,
    `no matching ${what} (client offered ${client.join(',') || 'none'}; server supports ${server.join(',')})`,
  );
}

export interface Negotiated {
  kex: string;
  hostKey: string;
  cipherC2S: string;
  cipherS2C: string;
  /** null when the cipher is an AEAD and carries its own tag. */
  macC2S: string | null;
  macS2C: string | null;
}

/**
 * Chooses every algorithm. Markers such as ext-info-c and kex-strict-c-v00@openssh.com are
 * never chosen as a kex method: the server's list handed in here holds only real methods.
 * `isAead(cipher)` tells which ciphers make the MAC list irrelevant (OpenSSH PROTOCOL §1.6).
 */
export function negotiate(client: KexInit, server: KexInit, isAead: (cipher: string) => boolean): Negotiated {
  const kex = chooseAlgorithm(client.kex, server.kex, 'key exchange algorithm');
  const hostKey = chooseAlgorithm(client.hostKey, server.hostKey, 'host key algorithm');
  const cipherC2S = chooseAlgorithm(client.cipherC2S, server.cipherC2S, 'client to server cipher');
  const cipherS2C = chooseAlgorithm(client.cipherS2C, server.cipherS2C, 'server to client cipher');
  const macC2S = isAead(cipherC2S) ? null : chooseAlgorithm(client.macC2S, server.macC2S, 'client to server MAC');
  const macS2C = isAead(cipherS2C) ? null : chooseAlgorithm(client.macS2C, server.macS2C, 'server to client MAC');
  chooseAlgorithm(client.compC2S, server.compC2S, 'client to server compression');
  chooseAlgorithm(client.compS2C, server.compS2C, 'server to client compression');
  return { kex, hostKey, cipherC2S, cipherS2C, macC2S, macS2C };
}
