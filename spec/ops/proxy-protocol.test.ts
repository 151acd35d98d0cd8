/**
 * The PROXY protocol reader against the examples and rules of HAProxy's proxy-protocol.txt:
 * v1 lines (TCP4, TCP6, UNKNOWN), v2 headers built field by field (PROXY and LOCAL, IPv4, IPv6,
 * UNIX, TLVs), every truncation point, oversized and malformed headers, split delivery, the
 * bytes after the header kept for SSH, and trusted ranges.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProxyProtocolError, TrustedProxies, V2_MAX_LENGTH, V2_SIGNATURE, parseProxyHeader, readProxyHeader } from '../../src/ops/proxy-protocol.js';

const test = suite('ops/proxy-protocol');

const v1 = (s: string) => Buffer.from(s, 'latin1');

/** A v2 header: signature, ver/cmd, fam/proto, length, then `body`. */
function v2(cmd: number, famProto: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  V2_SIGNATURE.copy(h);
  h[12] = 0x20 | cmd;
  h[13] = famProto;
  h.writeUInt16BE(body.length, 14);
  return Buffer.concat([h, body]);
}

function ipv4Body(src: number[], dst: number[], sport: number, dport: number, tlvs = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return Buffer.concat([b, tlvs]);
}

function ipv6Body(src: string, sport: number): Buffer {
  const b = Buffer.alloc(36);
  const groups = (a: string) => {
    const [head = '', tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    return [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  };
  groups(src).forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  groups('2001:db8::2').forEach((g, i) => b.writeUInt16BE(g, 16 + 2 * i));
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(2222, 34);
  return b;
}

const throwsProxy = (buf: Buffer, re: RegExp) =>
  assert.throws(() => parseProxyHeader(buf), (e: unknown) => e instanceof ProxyProtocolError && re.test((e as Error).message));

test('v1 TCP4, TCP6 and UNKNOWN', () => {
  const a = v1('PROXY TCP4 192.0.2.1 198.51.100.1 56324 2222\r\nSSH-2.0-x\r\n');
  assert.equal(parseProxyHeader(a), { done: true, length: 46, client: { address: '192.0.2.1', port: 56324 }, version: 1 });
  const b = v1('PROXY TCP6 2001:db8::1 2001:db8::2 65535 22\r\n');
  assert.equal(parseProxyHeader(b), { done: true, length: b.length, client: { address: '2001:db8::1', port: 65535 }, version: 1 });
  const c = v1('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n');
  assert.equal(parseProxyHeader(c), { done: true, length: c.length, client: null, version: 1 });
  assert.equal(parseProxyHeader(v1('PROXY UNKNOWN\r\n')), { done: true, length: 15, client: null, version: 1 });
});

test('v1: the worst-case line of 107 bytes passes, 108 fails; malformed fields fail', () => {
  const worst = v1('PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n');
  assert.is(worst.length, 107);
  assert.ok(parseProxyHeader(worst).done);
  const at107 = v1('PROXY UNKNOWN ' + 'x'.repeat(107 - 16) + '\r\n');
  assert.is(at107.length, 107);
  assert.ok(parseProxyHeader(at107).done);
  throwsProxy(v1('PROXY UNKNOWN ' + 'x'.repeat(92) + '\r\n'), /longer than 107/);
  throwsProxy(v1('PROXY UNKNOWN ' + 'x'.repeat(200)), /longer than 107/);
  throwsProxy(v1('PROXY TCP4 192.0.2.1 198.51.100.1 056324 2222\r\n'), /port/);
  throwsProxy(v1('PROXY TCP4 192.0.2.1 198.51.100.1 65536 2222\r\n'), /port/);
  throwsProxy(v1('PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n'), /address/);
  throwsProxy(v1('PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n'), /address/);
  throwsProxy(v1('PROXY UDP4 192.0.2.1 198.51.100.1 1 2\r\n'), /protocol/);
  throwsProxy(v1('PROXY TCP4 192.0.2.1 198.51.100.1 1\r\n'), /malformed/);
  throwsProxy(v1('PROXY  TCP4 192.0.2.1 198.51.100.1 1 2\r\n'), /malformed|protocol/);
  throwsProxy(v1('SSH-2.0-OpenSSH_9.2\r\n'), /no PROXY protocol header/);
  throwsProxy(v1('PROXX TCP4'), /no PROXY protocol header/);
});

test('v2 PROXY over IPv4 and IPv6, TLVs skipped; LOCAL, UNSPEC and UNIX keep the socket address', () => {
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0xaa, 0xbb, 0xcc]); // PP2_TYPE_NOOP with 3 bytes
  const a = v2(1, 0x11, ipv4Body([192, 0, 2, 1], [198, 51, 100, 1], 56324, 2222, tlv));
  assert.equal(parseProxyHeader(a), { done: true, length: 16 + 12 + 6, client: { address: '192.0.2.1', port: 56324 }, version: 2 });
  const b = v2(1, 0x21, ipv6Body('2001:db8::1', 40000));
  assert.equal(parseProxyHeader(b), { done: true, length: 52, client: { address: '2001:db8::1', port: 40000 }, version: 2 });
  const mapped = v2(1, 0x21, ipv6Body('::ffff:c000:201', 1234));
  assert.equal((parseProxyHeader(mapped) as { client: unknown }).client, { address: '192.0.2.1', port: 1234 });
  assert.equal(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { done: true, length: 16, client: null, version: 2 });
  assert.equal(parseProxyHeader(v2(0, 0x11, ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))), { done: true, length: 28, client: null, version: 2 });
  assert.equal(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0))), { done: true, length: 16, client: null, version: 2 });
  assert.equal(parseProxyHeader(v2(1, 0x31, Buffer.alloc(216))), { done: true, length: 232, client: null, version: 2 });
});

test('v2: every truncation asks for more; bad version, command, family, protocol and lengths fail', () => {
  const whole = v2(1, 0x11, ipv4Body([192, 0, 2, 1], [198, 51, 100, 1], 56324, 2222));
  for (let n = 0; n < whole.length; n++) assert.equal(parseProxyHeader(whole.subarray(0, n)), { done: false }, `at ${n}`);
  const bad = (mut: (b: Buffer) => void) => {
    const b = Buffer.from(whole);
    mut(b);
    return b;
  };
  throwsProxy(bad((b) => (b[12] = 0x11)), /version 1/);
  throwsProxy(bad((b) => (b[12] = 0x22)), /command 2/);
  throwsProxy(bad((b) => (b[13] = 0x41)), /family 4/);
  throwsProxy(bad((b) => (b[13] = 0x12)), /not a stream/);
  throwsProxy(bad((b) => (b[5] = 0x0e)), /no PROXY protocol header/);
  throwsProxy(v2(1, 0x11, Buffer.alloc(8)), /IPv4 addresses truncated/);
  throwsProxy(v2(1, 0x21, Buffer.alloc(20)), /IPv6 addresses truncated/);
  // An oversized length is refused from the 16 header bytes alone, before any body arrives.
  const huge = Buffer.from(whole.subarray(0, 16));
  huge.writeUInt16BE(V2_MAX_LENGTH + 1, 14);
  throwsProxy(huge, /length 1025/);
  huge.writeUInt16BE(0xffff, 14);
  throwsProxy(huge, /length 65535/);
});

test('trusted ranges: IPv4, IPv6, IPv4-mapped peers, single addresses', () => {
  const t = new TrustedProxies(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32']);
  assert.ok(t.has('10.1.2.3'));
  assert.ok(t.has('::ffff:10.1.2.3'));
  assert.ok(t.has('2001:db8:1::5'));
  assert.ok(t.has('192.0.2.7'));
  assert.not.ok(t.has('192.0.2.8'));
  assert.not.ok(t.has('11.0.0.1'));
  assert.not.ok(t.has('2001:db9::1'));
  assert.not.ok(t.has('not an address'));
});

/** A connected pair over loopback: what the client writes reaches `server`. */
async function pair(): Promise<{ client: net.Socket; server: net.Socket; close: () => void }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  return { client, server, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

test('readProxyHeader: split delivery, the bytes after the header stay for SSH', async () => {
  const { client, server, close } = await pair();
  try {
    const header = v2(1, 0x11, ipv4Body([203, 0, 113, 9], [10, 0, 0, 1], 50000, 2222));
    const wire = Buffer.concat([header, Buffer.from('SSH-2.0-client\r\n')]);
    const got = readProxyHeader(server, new TrustedProxies(['127.0.0.0/8']));
    for (const b of wire) {
      client.write(Buffer.of(b));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await got, { address: '203.0.113.9', port: 50000 });
    assert.ok(server.isPaused(), 'left paused for the transport');
    const rest: Buffer[] = [];
    server.on('data', (d: Buffer) => rest.push(d));
    server.resume();
    await new Promise((r) => setTimeout(r, 50));
    assert.is(Buffer.concat(rest).toString(), 'SSH-2.0-client\r\n');
  } finally {
    close();
  }
});

test('readProxyHeader: untrusted peers, garbage, silence and early close are refused', async () => {
  {
    const { server, close } = await pair();
    await readProxyHeader(server, new TrustedProxies(['10.0.0.0/8'])).then(
      () => assert.unreachable('an untrusted peer'),
      (e: Error) => assert.match(e.message, /not a --trusted-proxy/),
    );
    close();
  }
  {
    const { client, server, close } = await pair();
    const p = readProxyHeader(server, new TrustedProxies(['127.0.0.1/32']));
    client.write('SSH-2.0-OpenSSH_9.2\r\n');
    await p.then(() => assert.unreachable('no header'), (e: Error) => assert.match(e.message, /no PROXY protocol header/));
    close();
  }
  {
    const { server, close } = await pair();
    await readProxyHeader(server, new TrustedProxies(['127.0.0.1/32']), 100).then(
      () => assert.unreachable('silence'),
      (e: Error) => assert.match(e.message, /within 100 ms/),
    );
    close();
  }
  {
    const { client, server, close } = await pair();
    const p = readProxyHeader(server, new TrustedProxies(['127.0.0.1/32']));
    client.end('PROXY TCP4 ');
    await p.then(
      () => assert.unreachable('closed'),
      (e: ProxyProtocolError) => assert.equal([e.code, /closed before/.test(e.message)], ['ERR_PROXY_PROTOCOL', true]),
    );
    close();
  }
  {
    // A TCP health check: connect, then close without a byte. Told apart so it is not audited.
    const { client, server, close } = await pair();
    const p = readProxyHeader(server, new TrustedProxies(['127.0.0.1/32']));
    client.end();
    await p.then(() => assert.unreachable('closed'), (e: ProxyProtocolError) => assert.is(e.code, 'ERR_PROXY_SILENT'));
    close();
  }
});

test.run();
