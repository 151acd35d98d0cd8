import net from 'node:net';
import type { ClientAddress } from '../server.js';
import { normalizeAddress } from './limits.js';

/**
 * The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt): a load balancer that
 * forwards TCP puts one header before the client's bytes, naming the client's address. With
 * --proxy-protocol the gateway reads it before it sends anything, and takes it only from the
 * --trusted-proxy ranges: anyone else could name any address they like.
 *
 * v1 is one text line, at most 107 bytes with its CRLF:
 *   "PROXY TCP4 192.0.2.1 198.51.100.1 56324 2222\r\n", "PROXY TCP6 …", "PROXY UNKNOWN …\r\n".
 * v2 is binary: a 12-byte signature, version/command, family/protocol, a 16-bit length, the
 * addresses (IPv4 12 bytes, IPv6 36, Unix 216) and TLVs, which we skip.
 * LOCAL (v2) and UNKNOWN (v1) are the balancer's own connections (health checks): the
 * connection's own address stands.
 */
export class ProxyProtocolError extends Error {
  /**
   * ERR_PROXY_SILENT: the peer closed without sending a byte, which is what a TCP health check
   * does; worth a debug record, not a refusal in the audit log every few seconds.
   */
  readonly code: 'ERR_PROXY_PROTOCOL' | 'ERR_PROXY_SILENT';
  constructor(message: string, code: 'ERR_PROXY_PROTOCOL' | 'ERR_PROXY_SILENT' = 'ERR_PROXY_PROTOCOL') {
    super(message);
    this.name = 'ProxyProtocolError';
    this.code = code;
  }
}

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107;
/** Addresses plus TLVs we accept after the 16-byte v2 header; real balancers send well under 300. */
export const V2_MAX_LENGTH = 1024;

export type ProxyHeader =
  | { done: false }
  | { done: true; length: number; client: ClientAddress | null; version: 1 | 2 };

/**
 * Parses a header at the start of `buf`. `done: false` means more bytes are needed (and may come:
 * nothing so far contradicts a header). `client` is null for LOCAL / UNKNOWN. Throws
 * ProxyProtocolError for anything else.
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { done: false };
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  throw new ProxyProtocolError('no PROXY protocol header');
}

function parseV1(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V1_PREFIX.length);
  if (!buf.subarray(0, n).equals(V1_PREFIX.subarray(0, n))) throw new ProxyProtocolError('no PROXY protocol header');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) throw new ProxyProtocolError('PROXY v1 line longer than 107 bytes');
    return { done: false };
  }
  const length = end + 2;
  if (length > V1_MAX) throw new ProxyProtocolError('PROXY v1 line longer than 107 bytes');
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { done: true, length, client: null, version: 1 };
  if (parts.length !== 6) throw new ProxyProtocolError('malformed PROXY v1 line');
  const [, proto, src, , sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) throw new ProxyProtocolError(`unknown PROXY v1 protocol ${JSON.stringify(proto.slice(0, 16))}`);
  if (net.isIP(src) !== family || net.isIP(parts[3]!) !== family) throw new ProxyProtocolError('malformed PROXY v1 address');
  const port = v1Port(sport);
  v1Port(dport);
  return { done: true, length, client: { address: normalizeAddress(src), port }, version: 1 };
}

function v1Port(s: string): number {
  // Decimal, 0..65535, no leading zeros (the spec's wording).
  if (!/^(0|[1-9]\d{0,4})$/.test(s) || Number(s) > 65535) throw new ProxyProtocolError('malformed PROXY v1 port');
  return Number(s);
}

function parseV2(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n))) throw new ProxyProtocolError('no PROXY protocol header');
  if (buf.length < 16) return { done: false };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`PROXY v2 version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`PROXY v2 command ${command}`);
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  // Checked before waiting for the body: a header announcing 64 KiB is refused at once.
  if (len > V2_MAX_LENGTH) throw new ProxyProtocolError(`PROXY v2 length ${len} over ${V2_MAX_LENGTH}`);
  const length = 16 + len;
  if (buf.length < length) return { done: false };
  if (command === 0) return { done: true, length, client: null, version: 2 }; // LOCAL
  const family = famProto >> 4;
  const proto = famProto & 0x0f;
  if (family === 0) return { done: true, length, client: null, version: 2 }; // UNSPEC: keep ours
  if (proto !== 1) throw new ProxyProtocolError('PROXY v2 transport is not a stream');
  if (family === 1) {
    if (len < 12) throw new ProxyProtocolError('PROXY v2 IPv4 addresses truncated');
    const a = buf.subarray(16, 20);
    return { done: true, length, client: { address: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, port: buf.readUInt16BE(24) }, version: 2 };
  }
  if (family === 2) {
    if (len < 36) throw new ProxyProtocolError('PROXY v2 IPv6 addresses truncated');
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + 2 * i).toString(16));
    const address = normalizeAddress(canonicalIPv6(groups.join(':')));
    return { done: true, length, client: { address, port: buf.readUInt16BE(48) }, version: 2 };
  }
  if (family === 3) return { done: true, length, client: null, version: 2 }; // AF_UNIX: no address to use
  throw new ProxyProtocolError(`PROXY v2 address family ${family}`);
}

/** The compressed text form of an IPv6 address, as sockets report them. */
function canonicalIPv6(full: string): string {
  const bl = new net.SocketAddress({ address: full, family: 'ipv6' });
  return bl.address;
}

/** Trusted proxy ranges ("addr/bits"), matched with IPv4-mapped IPv6 peers taken as IPv4. */
export class TrustedProxies {
  readonly #list = new net.BlockList();
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/') as [string, string];
      this.#list.addSubnet(addr, Number(bits), net.isIPv4(addr) ? 'ipv4' : 'ipv6');
    }
  }
  has(address: string): boolean {
    const a = normalizeAddress(address);
    if (net.isIPv4(a)) return this.#list.check(a, 'ipv4');
    if (net.isIPv6(a)) return this.#list.check(a, 'ipv6');
    return false;
  }
}

/**
 * Reads the header from a new socket before anything is sent: resolves the client (the
 * header's, or the socket's own for LOCAL/UNKNOWN) and leaves the bytes after the header in the
 * socket, paused, for the SSH transport. Rejects on a bad or missing header, a peer outside
 * `trusted`, the timeout, or the socket closing first.
 */
export function readProxyHeader(socket: net.Socket, trusted: TrustedProxies, timeoutMs = 5_000): Promise<ClientAddress> {
  const peer = { address: normalizeAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
  // A socket reset before we got to it has no address left: nothing to refuse or record.
  if (peer.address === '') return Promise.reject(new ProxyProtocolError('gone before it was read', 'ERR_PROXY_SILENT'));
  if (!trusted.has(peer.address)) return Promise.reject(new ProxyProtocolError(`PROXY header from ${peer.address}, which is not a --trusted-proxy`));
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (err: Error | null, client?: ClientAddress, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(client!);
    };
    const onData = (chunk: Buffer) => {
      // Bounded: a header is at most 16 + V2_MAX_LENGTH bytes, and parse throws past that.
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let h: ProxyHeader;
      try {
        h = parseProxyHeader(buf);
      } catch (err) {
        return finish(err as Error);
      }
      if (h.done) finish(null, h.client ?? peer, buf.subarray(h.length));
    };
    const onClose = () =>
      finish(
        buf.length === 0
          ? new ProxyProtocolError('closed without sending anything (a health check?)', 'ERR_PROXY_SILENT')
          : new ProxyProtocolError('closed before the PROXY header'),
      );
    const timer = setTimeout(() => finish(new ProxyProtocolError(`no PROXY header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}
