import { DisconnectError } from './errors.js';
import { DISCONNECT } from './constants.js';

/**
 * The identification exchange, RFC 4253 §4.2: `SSH-protoversion-softwareversion SP
 * comments CR LF`, at most 255 bytes including CR LF. Other lines may come first; we accept
 * a few (some load balancers and test tools send a greeting) but bound both their length
 * and their count, so a peer that never sends an identification costs us little.
 */
export const MAX_IDENT_LINE = 255;
export const MAX_PRE_IDENT_LINES = 16;
const MAX_PRE_IDENT_LINE = 1024;

export interface IdentResult {
  /** The identification without CR LF, as it enters the exchange hash. */
  ident: string;
  /** Bytes of the input that follow the identification line (the first binary packet). */
  rest: Buffer;
}

/**
 * Accumulates input until the peer's identification line is complete. Returns null while it
 * needs more, an IdentResult when done, and throws DisconnectError on anything it refuses.
 */
export class IdentReader {
  #buf: Buffer = Buffer.alloc(0);
  #lines = 0;

  push(chunk: Buffer): IdentResult | null {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl < 0) {
        if (this.#buf.length > MAX_PRE_IDENT_LINE) {
          throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'identification line too long');
        }
        return null;
      }
      let end = nl;
      if (end > 0 && this.#buf[end - 1] === 0x0d) end--;
      const line = this.#buf.subarray(0, end);
      const rest = this.#buf.subarray(nl + 1);
      if (line.subarray(0, 4).toString('latin1') === 'SSH-') {
        if (nl + 1 > MAX_IDENT_LINE) {
          throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'identification string longer than 255 bytes');
        }
        const ident = line.toString('latin1');
        for (let i = 0; i < ident.length; i++) {
          const c = ident.charCodeAt(i);
          if (c < 0x20 || c > 0x7e) {
            throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'identification string has a control character');
          }
        }
        // RFC 4253 §5.1: "1.99" announces a server compatible with both; clients that send it
        // speak version 2.
        if (!ident.startsWith('SSH-2.0-') && !ident.startsWith('SSH-1.99-')) {
          throw new DisconnectError(DISCONNECT.PROTOCOL_VERSION_NOT_SUPPORTED, 'protocol version not supported');
        }
        return { ident, rest: Buffer.from(rest) };
      }
      if (nl + 1 > MAX_PRE_IDENT_LINE || ++this.#lines > MAX_PRE_IDENT_LINES) {
        throw new DisconnectError(DISCONNECT.PROTOCOL_ERROR, 'no identification string');
      }
      this.#buf = rest;
    }
  }
}
