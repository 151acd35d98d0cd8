import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IdentReader, MAX_IDENT_LINE, MAX_PRE_IDENT_LINES, type IdentResult } from '../../src/transport/ident.js';
import { DisconnectError } from '../../src/transport/errors.js';
import { DISCONNECT } from '../../src/transport/constants.js';

const Ident = suite('transport/ident: IdentReader (RFC 4253 §4.2)');

/** What OpenSSH 9.2 on Debian 12 sends (recorded with a real client). */
const OPENSSH = 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10';

function pushAll(chunks: Array<Buffer | string>): IdentResult | null {
  const r = new IdentReader();
  let out: IdentResult | null = null;
  for (const c of chunks) {
    assert.is(out, null, 'nothing is pushed after the identification was returned');
    out = r.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  }
  return out;
}

function refused(chunks: Array<Buffer | string>, reason: number, pattern: RegExp): void {
  try {
    pushAll(chunks);
  } catch (err) {
    if (!(err instanceof DisconnectError)) throw err;
    assert.is(err.reason, reason);
    assert.match(err.message, pattern);
    return;
  }
  assert.unreachable('expected a DisconnectError');
}

Ident('reads an identification ended by CR LF', () => {
  const out = pushAll([`${OPENSSH}\r\n`]);
  assert.is(out?.ident, OPENSSH);
  assert.is(out?.rest.length, 0);
});

Ident('reads an identification ended by a bare LF', () => {
  // RFC 4253 §4.2 asks for CR LF, but old clients send LF alone; OpenSSH accepts it.
  assert.is(pushAll(['SSH-2.0-paramiko_3.4.0\n'])?.ident, 'SSH-2.0-paramiko_3.4.0');
});

Ident('keeps the comments after the software version', () => {
  assert.is(pushAll(['SSH-2.0-Go some comment here\r\n'])?.ident, 'SSH-2.0-Go some comment here');
});

Ident('returns null until the line is complete', () => {
  const r = new IdentReader();
  assert.is(r.push(Buffer.from('SSH-2.0-')), null);
  assert.is(r.push(Buffer.from('x\r')), null);
  assert.is(r.push(Buffer.from('\n'))?.ident, 'SSH-2.0-x');
});

Ident('skips lines before the identification', () => {
  const out = pushAll(['220 welcome\r\n', 'another line\n', '\r\n', `${OPENSSH}\r\n`]);
  assert.is(out?.ident, OPENSSH);
});

Ident('skips lines before the identification that arrive in the same chunk', () => {
  assert.is(pushAll([`banner 1\r\nbanner 2\n${OPENSSH}\r\n`])?.ident, OPENSSH);
});

Ident('accepts 16 lines before the identification', () => {
  const junk = Array.from({ length: MAX_PRE_IDENT_LINES }, (_, i) => `line ${i}\r\n`).join('');
  assert.is(MAX_PRE_IDENT_LINES, 16);
  assert.is(pushAll([junk + `${OPENSSH}\r\n`])?.ident, OPENSSH);
});

Ident('refuses 17 lines before the identification', () => {
  const junk = Array.from({ length: MAX_PRE_IDENT_LINES + 1 }, (_, i) => `line ${i}\r\n`).join('');
  refused([junk + `${OPENSSH}\r\n`], DISCONNECT.PROTOCOL_ERROR, /no identification string/);
});

Ident('refuses 17 empty lines fed one byte at a time', () => {
  refused(Array.from({ length: 17 }, () => '\n'), DISCONNECT.PROTOCOL_ERROR, /no identification string/);
});

Ident('refuses a line before the identification longer than 1024 bytes', () => {
  refused(['x'.repeat(1100) + '\r\n'], DISCONNECT.PROTOCOL_ERROR, /./);
});

Ident('refuses a peer that sends 1025 bytes with no line end', () => {
  const r = new IdentReader();
  assert.is(r.push(Buffer.alloc(1024, 0x41)), null);
  assert.throws(
    () => r.push(Buffer.of(0x41)),
    (e: unknown) => e instanceof DisconnectError && e.reason === DISCONNECT.PROTOCOL_ERROR,
  );
});

Ident('accepts an identification of exactly 255 bytes including CR LF', () => {
  const ident = 'SSH-2.0-' + 'x'.repeat(MAX_IDENT_LINE - 2 - 8);
  assert.is(ident.length + 2, 255);
  assert.is(pushAll([ident + '\r\n'])?.ident, ident);
});

Ident('refuses an identification of 256 bytes including CR LF', () => {
  const ident = 'SSH-2.0-' + 'x'.repeat(MAX_IDENT_LINE - 1 - 8);
  refused([ident + '\r\n'], DISCONNECT.PROTOCOL_ERROR, /longer than 255 bytes/);
});

Ident('refuses an identification over 255 bytes that arrives byte by byte', () => {
  const line = 'SSH-2.0-' + 'x'.repeat(300) + '\r\n';
  refused([...line], DISCONNECT.PROTOCOL_ERROR, /longer than 255 bytes/);
});

for (const [label, ch] of [
  ['NUL', '\x00'],
  ['a tab', '\t'],
  ['a bare CR', '\r'],
  ['ESC', '\x1b'],
  ['DEL', '\x7f'],
  ['a byte above 0x7e', '\xe9'],
] as const) {
  Ident(`refuses an identification holding ${label}`, () => {
    refused([`SSH-2.0-Open${ch}SSH\r\n`], DISCONNECT.PROTOCOL_ERROR, /control character/);
  });
}

Ident('accepts SSH-1.99 (RFC 4253 §5.1: a peer that also speaks 2.0)', () => {
  assert.is(pushAll(['SSH-1.99-OpenSSH_3.9\r\n'])?.ident, 'SSH-1.99-OpenSSH_3.9');
});

Ident('refuses SSH-1.5 with PROTOCOL_VERSION_NOT_SUPPORTED', () => {
  refused(['SSH-1.5-OpenSSH_2.0\r\n'], DISCONNECT.PROTOCOL_VERSION_NOT_SUPPORTED, /protocol version not supported/);
});

Ident('refuses SSH-2.00 and SSH-2.0 without a software version with PROTOCOL_VERSION_NOT_SUPPORTED', () => {
  refused(['SSH-2.00-x\r\n'], DISCONNECT.PROTOCOL_VERSION_NOT_SUPPORTED, /not supported/);
  refused(['SSH-2.0\r\n'], DISCONNECT.PROTOCOL_VERSION_NOT_SUPPORTED, /not supported/);
});

Ident('reads an identification split across many chunks, byte by byte', () => {
  const line = `${OPENSSH}\r\n`;
  const r = new IdentReader();
  for (let i = 0; i < line.length - 1; i++) assert.is(r.push(Buffer.from(line[i]!, 'latin1')), null, `byte ${i}`);
  const out = r.push(Buffer.from('\n'));
  assert.is(out?.ident, OPENSSH);
  assert.is(out?.rest.length, 0);
});

Ident('reads banner lines and the identification byte by byte', () => {
  const all = `hello\r\nworld\n${OPENSSH}\r\n`;
  assert.is(pushAll([...all])?.ident, OPENSSH);
});

Ident('reads the identification cut at every offset', () => {
  const all = Buffer.from(`banner\r\n${OPENSSH}\r\n\x00\x00\x01\x0c\x0a\x14`, 'latin1');
  for (let cut = 0; cut <= all.length; cut++) {
    const r = new IdentReader();
    let out = r.push(all.subarray(0, cut));
    // Once the identification is complete, the caller hands later chunks to the packet layer.
    let rest: Buffer;
    if (out === null) {
      out = r.push(all.subarray(cut));
      rest = out!.rest;
    } else {
      rest = Buffer.concat([out.rest, all.subarray(cut)]);
    }
    assert.is(out?.ident, OPENSSH, `cut at ${cut}`);
    assert.is(rest.toString('hex'), '0000010c0a14', `rest after cut at ${cut}`);
  }
});

Ident('returns the bytes after the identification in rest', () => {
  // The client's first binary packet often arrives in the same TCP segment as its identification.
  const packet = Buffer.from('000005dc0a14deadbeef', 'hex');
  const out = pushAll([Buffer.concat([Buffer.from(`${OPENSSH}\r\n`), packet])]);
  assert.is(out?.ident, OPENSSH);
  assert.ok(out?.rest.equals(packet));
});

Ident('returns the bytes after the identification in rest when they arrive with its last byte', () => {
  const r = new IdentReader();
  assert.is(r.push(Buffer.from(`${OPENSSH}\r`)), null);
  const out = r.push(Buffer.from('\n\x00\x01', 'latin1'));
  assert.equal([...out!.rest], [0, 1]);
});

Ident('rest does not alias the chunk, so the caller may reuse its buffer', () => {
  const chunk = Buffer.from(`${OPENSSH}\r\nABC`);
  const out = pushAll([chunk]);
  chunk.fill(0);
  assert.is(out?.rest.toString(), 'ABC');
});

Ident.run();
