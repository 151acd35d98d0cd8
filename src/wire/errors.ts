/**
 * Errors raised by the codec. They carry a stable `code` so callers can branch without
 * matching message text, and a `name` that shows in stack traces (undici style).
 */

/** A message that does not parse: short, over a cap, or with a field out of range. */
export class MalformedError extends Error {
  readonly code = 'ERR_MALFORMED';
  constructor(message: string) {
    super(message);
    this.name = 'MalformedError';
  }
}
