import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { attrsFlags, decodeAttrs, encodeAttrs, fromFileAttrs, MAX_EXTENDED_PAIRS, type Attrs } from '../../src/sftp/attrs.js';
import { MalformedError } from '../../src/wire/errors.js';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { hex } from '../helpers/golden.js';

const Attr = suite('sftp/attrs: ATTRS encode and decode');

const enc = (a: Attrs): Buffer => {
  const w = new SshWriter();
  encodeAttrs(w, a);
  return Buffer.from(w.bytes());
};
const dec = (b: Uint8Array): Attrs => {
  const r = new SshReader(b);
  const a = decodeAttrs(r);
  r.assertEnd('attrs');
  return a;
};
const golden = (...f: string[]): string => hex(...f).toString('hex');

function throwsMalformed(fn: () => unknown, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, MalformedError);
    if (re) assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected MalformedError');
}

Attr('empty ATTRS is a zero flag word', () => {
  assert.is(enc({}).toString('hex'), golden('00 00 00 00'));
  assert.equal(dec(hex('00 00 00 00')), {});
});

Attr('every field, in draft order (golden)', () => {
  const a: Attrs = {
    size: 2 ** 40 + 1,
    uid: 1000,
    gid: 100,
    permissions: 0o40755,
    atime: 1_700_000_000,
    mtime: 1_700_000_001,
    extended: [{ type: 'x@example.com', data: Buffer.from('v') }],
  };
  const want = golden(
    '80 00 00 0f', // flags EXTENDED|ACMODTIME|PERMISSIONS|UIDGID|SIZE
    '00 00 01 00 00 00 00 01', // size 2^40 + 1
    '00 00 03 e8', // uid 1000
    '00 00 00 64', // gid 100
    '00 00 41 ed', // permissions 040755
    '65 53 f1 00', // atime 1700000000
    '65 53 f1 01', // mtime 1700000001
    '00 00 00 01', // extended_count
    '00 00 00 0d 78 40 65 78 61 6d 70 6c 65 2e 63 6f 6d', // extended_type "x@example.com"
    '00 00 00 01 76', // extended_data "v"
  );
  assert.is(enc(a).toString('hex'), want);
  const back = dec(Buffer.from(want, 'hex'));
  assert.equal({ ...back, extended: back.extended!.map((e) => ({ type: e.type, data: Buffer.from(e.data) })) }, a);
});

Attr('flags follow the fields present', () => {
  assert.is(attrsFlags({ size: 0 }), 0x1);
  assert.is(attrsFlags({ uid: 0 }), 0x2);
  assert.is(attrsFlags({ permissions: 0 }), 0x4);
  assert.is(attrsFlags({ mtime: 0 }), 0x8);
  assert.is(attrsFlags({ extended: [] }), 0, 'an empty extended list is left out');
  assert.is(attrsFlags({ extended: [{ type: 'a', data: new Uint8Array(0) }] }), 0x80000000);
});

Attr('times outside uint32 are clamped, not wrapped', () => {
  const b = enc({ atime: -5, mtime: 2 ** 33 });
  assert.is(b.toString('hex'), golden('00 00 00 08', '00 00 00 00', 'ff ff ff ff'));
});

Attr('a flag bit version 3 does not define is malformed', () => {
  throwsMalformed(() => dec(hex('00 00 00 10')), /unknown flag bits 0x10/);
  throwsMalformed(() => dec(hex('40 00 00 00')), /0x40000000/);
});

Attr('truncated ATTRS are malformed at every cut', () => {
  const full = enc({ size: 1, uid: 2, gid: 3, permissions: 4, atime: 5, mtime: 6, extended: [{ type: 't', data: Buffer.from('d') }] });
  for (let cut = 0; cut < full.length; cut++) throwsMalformed(() => dec(full.subarray(0, cut)));
});

Attr('the extended count is bounded before any pair is read', () => {
  throwsMalformed(() => dec(hex('80 00 00 00', 'ff ff ff ff')), /limit is 64/);
  throwsMalformed(() => dec(hex('80 00 00 00', '00 00 00 40')), /too short/);
  const many = enc({ extended: Array.from({ length: MAX_EXTENDED_PAIRS }, (_, i) => ({ type: `t${i}`, data: Buffer.alloc(0) })) });
  assert.is(dec(many).extended!.length, MAX_EXTENDED_PAIRS);
});

Attr('an extended type over 256 bytes is malformed', () => {
  const w = new SshWriter();
  w.u32(0x80000000).u32(1).string('t'.repeat(257)).string('');
  throwsMalformed(() => dec(w.bytes()), /257/);
});

Attr('a size above 2^53 - 1 is malformed', () => {
  throwsMalformed(() => dec(hex('00 00 00 01', '00 20 00 00 00 00 00 00')), /2\^53/);
});

Attr('fromFileAttrs reports size, mode and times, and no owner', () => {
  assert.equal(fromFileAttrs({ mode: 0o100600, size: 7, mtime: 9, atime: 8 }), {
    size: 7,
    permissions: 0o100600,
    atime: 8,
    mtime: 9,
  });
});

Attr('round trip: arbitrary attributes decode to what was encoded', () => {
  const arb = fc.record(
    {
      size: fc.maxSafeNat(),
      uid: fc.nat({ max: 0xffffffff }),
      gid: fc.nat({ max: 0xffffffff }),
      permissions: fc.nat({ max: 0xffffffff }),
      atime: fc.nat({ max: 0xffffffff }),
      mtime: fc.nat({ max: 0xffffffff }),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(arb, (a) => {
      const want: Attrs = { ...a };
      if ((want.uid === undefined) !== (want.gid === undefined)) {
        want.uid ??= 0;
        want.gid ??= 0;
      }
      if ((want.atime === undefined) !== (want.mtime === undefined)) {
        want.atime ??= 0;
        want.mtime ??= 0;
      }
      assert.equal(dec(enc(a)), want);
    }),
    { numRuns: 500 },
  );
});

Attr.run();
