import type { OpeningKey, SealingKey } from './types.js';

/**
 * The `none` cipher and MAC in force until the first NEWKEYS (RFC 4253 §6): no encryption,
 * no MAC, padding to 8 bytes with the length counted in the alignment. Seal and open do
 * nothing; the objects exist so the transport's packet loop has a single shape.
 */
class NoneSealingKey implements SealingKey {
  readonly blockSize = 8;
  readonly lengthAligned = true;
  readonly macLength = 0;

  seal(_seq: number, _packet: Buffer): void {}
}

class NoneOpeningKey implements OpeningKey {
  readonly blockSize = 8;
  readonly lengthAligned = true;
  readonly macLength = 0;
  readonly lengthBytes = 4;

  packetLength(_seq: number, head: Buffer): number {
    return head.readUInt32BE(0);
  }

  open(_seq: number, packet: Buffer): Buffer {
    return packet.subarray(4);
  }
}

export function noneSealingKey(): SealingKey {
  return new NoneSealingKey();
}

export function noneOpeningKey(): OpeningKey {
  return new NoneOpeningKey();
}
