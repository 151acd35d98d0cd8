/**
 * A copy of `bytes` in memory of its own. Buffer.from() and Buffer.allocUnsafe() place anything
 * under 4 KiB in a shared 8 KiB pool slab, and a small Buffer that lives as long as a
 * connection (a session ID, a key, a nonce) then keeps its whole slab alive: up to 8 KiB per
 * idle session for a few dozen bytes. Use this for such long-lived buffers; short-lived ones
 * are better off in the pool.
 */
export function unpooled(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(bytes.length);
  b.set(bytes);
  return b;
}
