/*
 * Poly1305 one-time authenticator (RFC 8439 §2.5) for WebAssembly, written for s3gw.
 *
 * Built by scripts/build-wasm.sh into src/transport/cipher/poly1305-wasm.ts; edit this file,
 * then run that script. Freestanding C: no libc, no imports, no dynamic allocation, so the
 * module can touch nothing outside its own fixed memory.
 *
 * Arithmetic. The accumulator h and the clamped key half r are numbers below 2^131, held as
 * five 26-bit limbs (x = x0 + x1·2^26 + x2·2^52 + x3·2^78 + x4·2^104) in 32-bit words. Every
 * limb product is below 2^64, so it is one wasm i64.mul: no 128-bit type is needed, and 26-bit
 * limbs leave enough headroom to add a whole sum of products before carrying.
 *
 * Per 16-byte block (RFC 8439 §2.5.1): h = (h + n) · r mod p, p = 2^130 − 5, where n is the
 * block read little-endian with one more byte of value 1 above its top (2^128 for a full
 * block). Since 2^130 ≡ 5 (mod p), a product term that lands at limb position 5 + k is folded
 * back to position k multiplied by 5; r1..r4 · 5 are precomputed for that.
 *
 * Nothing here branches or indexes memory on a secret: block counts and lengths are public,
 * and the final "subtract p if h ≥ p" is a mask select.
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

#define EXPORT(name) __attribute__((export_name(name)))
#define LIMB 0x3ffffffu /* 2^26 − 1 */

/*
 * The whole MAC input of one SSH packet (4-byte length ‖ packet_length ≤ 256 KiB bytes) fits
 * in one call; longer messages are fed in slices of this size. A multiple of 16, so slices
 * end on block boundaries.
 */
#define INPUT_SIZE (256u * 1024u + 1024u)

static u8 key_in[32];
static u8 tag_out[16];
static u8 input[INPUT_SIZE] __attribute__((aligned(16)));

/* State of the one message in progress; wiped by poly1305_finish. */
static u32 r0, r1, r2, r3, r4; /* r, clamped, in limbs */
static u32 h0, h1, h2, h3, h4; /* accumulator */
static u64 s_lo, s_hi;         /* s, the second key half, added at the end */

/* Wasm is little-endian and allows unaligned loads; memcpy-free reads keep this freestanding. */
static inline u64 load64(const u8 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

static inline void store64(u8 *p, u64 v) { __builtin_memcpy(p, &v, 8); }

EXPORT("key_buffer") u8 *key_buffer(void) { return key_in; }
EXPORT("tag_buffer") u8 *tag_buffer(void) { return tag_out; }
EXPORT("input_buffer") u8 *input_buffer(void) { return input; }
EXPORT("input_size") u32 input_size(void) { return INPUT_SIZE; }

/* Starts a message under the 32-byte one-time key r ‖ s at `key`. */
EXPORT("poly1305_init") void poly1305_init(const u8 *key) {
  /* RFC 8439 §2.5: clear the top 4 bits of r[3], r[7], r[11], r[15], the low 2 of r[4], r[8], r[12]. */
  u64 lo = load64(key) & 0x0ffffffc0fffffffull;
  u64 hi = load64(key + 8) & 0x0ffffffc0ffffffcull;
  r0 = (u32)lo & LIMB;
  r1 = (u32)(lo >> 26) & LIMB;
  r2 = (u32)((lo >> 52) | (hi << 12)) & LIMB;
  r3 = (u32)(hi >> 14) & LIMB;
  r4 = (u32)(hi >> 40);
  s_lo = load64(key + 16);
  s_hi = load64(key + 24);
  h0 = h1 = h2 = h3 = h4 = 0;
}

/*
 * Absorbs `count` 16-byte blocks from `m`, each with `top` (2^24 in limb 4, i.e. 2^128) added
 * above its 128 bits. The state lives in locals across the loop so the loop body is pure
 * register arithmetic.
 */
static void absorb(const u8 *m, u32 count, u32 top) {
  const u32 r0_ = r0, r1_ = r1, r2_ = r2, r3_ = r3, r4_ = r4;
  const u32 f1 = r1 * 5, f2 = r2 * 5, f3 = r3 * 5, f4 = r4 * 5;
  u32 a0 = h0, a1 = h1, a2 = h2, a3 = h3, a4 = h4;

  for (; count > 0; count--, m += 16) {
    u64 lo = load64(m), hi = load64(m + 8);
    a0 += (u32)lo & LIMB;
    a1 += (u32)(lo >> 26) & LIMB;
    a2 += (u32)((lo >> 52) | (hi << 12)) & LIMB;
    a3 += (u32)(hi >> 14) & LIMB;
    a4 += (u32)(hi >> 40) | top;

    /*
     * Limbs of a are below 2^27 here (below 2^26 plus a small carry, plus a message limb),
     * r limbs below 2^26 and f limbs below 2^29, so each sum of five products is below 2^59.
     */
    u64 t0 = (u64)a0 * r0_ + (u64)a1 * f4 + (u64)a2 * f3 + (u64)a3 * f2 + (u64)a4 * f1;
    u64 t1 = (u64)a0 * r1_ + (u64)a1 * r0_ + (u64)a2 * f4 + (u64)a3 * f3 + (u64)a4 * f2;
    u64 t2 = (u64)a0 * r2_ + (u64)a1 * r1_ + (u64)a2 * r0_ + (u64)a3 * f4 + (u64)a4 * f3;
    u64 t3 = (u64)a0 * r3_ + (u64)a1 * r2_ + (u64)a2 * r1_ + (u64)a3 * r0_ + (u64)a4 * f4;
    u64 t4 = (u64)a0 * r4_ + (u64)a1 * r3_ + (u64)a2 * r2_ + (u64)a3 * r1_ + (u64)a4 * r0_;

    /* Partial carry: enough to bring every limb back near 26 bits for the next block. */
    t1 += t0 >> 26;
    a0 = (u32)t0 & LIMB;
    t2 += t1 >> 26;
    a1 = (u32)t1 & LIMB;
    t3 += t2 >> 26;
    a2 = (u32)t2 & LIMB;
    t4 += t3 >> 26;
    a3 = (u32)t3 & LIMB;
    a4 = (u32)t4 & LIMB;
    /* What overflowed 2^130 comes back ×5 at the bottom (t4 >> 26 is below 2^33). */
    u64 back = (u64)a0 + (t4 >> 26) * 5;
    a0 = (u32)back & LIMB;
    a1 += (u32)(back >> 26);
  }
  h0 = a0;
  h1 = a1;
  h2 = a2;
  h3 = a3;
  h4 = a4;
}

/* Absorbs `len` bytes of whole blocks (len a multiple of 16; any remainder is ignored). */
EXPORT("poly1305_blocks") void poly1305_blocks(const u8 *m, u32 len) { absorb(m, len / 16, 1u << 24); }

/*
 * Absorbs the last `len` bytes of the message (any length, 0 included), then writes the tag
 * (h + s) mod 2^128 to `tag` and wipes the state.
 */
EXPORT("poly1305_finish") void poly1305_finish(const u8 *m, u32 len, u8 *tag) {
  u32 whole = len / 16;
  absorb(m, whole, 1u << 24);
  u32 rest = len % 16;
  if (rest != 0) {
    /* A short last block: its bytes, then the 1 byte, then zeros; no 2^128 added. */
    u8 last[16] = {0};
    const u8 *p = m + whole * 16;
    for (u32 i = 0; i < rest; i++) last[i] = p[i];
    last[rest] = 1;
    absorb(last, 1, 0);
  }

  /* Carry fully: after this pass limbs 1..4 are below 2^26, limb 0 below 2^26 + 5. */
  u32 c;
  c = h1 >> 26; h1 &= LIMB; h2 += c;
  c = h2 >> 26; h2 &= LIMB; h3 += c;
  c = h3 >> 26; h3 &= LIMB; h4 += c;
  c = h4 >> 26; h4 &= LIMB; h0 += c * 5;
  /* And once more without wrapping: limbs 0..3 exact, h4 at most 2^26, so h < 2^130 + 2^104 < 2p. */
  c = h0 >> 26; h0 &= LIMB; h1 += c;
  c = h1 >> 26; h1 &= LIMB; h2 += c;
  c = h2 >> 26; h2 &= LIMB; h3 += c;
  c = h3 >> 26; h3 &= LIMB; h4 += c;

  /* g = h + 5; h ≥ p exactly when g reaches 2^130, i.e. when bit 26 of g4 is set. */
  u32 g0, g1, g2, g3, g4;
  g0 = h0 + 5;        c = g0 >> 26; g0 &= LIMB;
  g1 = h1 + c;        c = g1 >> 26; g1 &= LIMB;
  g2 = h2 + c;        c = g2 >> 26; g2 &= LIMB;
  g3 = h3 + c;        c = g3 >> 26; g3 &= LIMB;
  g4 = h4 + c;
  /* All ones when h ≥ p (take g − 2^130 = h − p), zero otherwise (keep h). Constant time. */
  u32 take_g = 0u - (g4 >> 26);
  g4 &= LIMB;
  h0 = (h0 & ~take_g) | (g0 & take_g);
  h1 = (h1 & ~take_g) | (g1 & take_g);
  h2 = (h2 & ~take_g) | (g2 & take_g);
  h3 = (h3 & ~take_g) | (g3 & take_g);
  h4 = (h4 & ~take_g) | (g4 & take_g);

  /* h mod 2^128 as two 64-bit words (the top two bits of h4 fall off), plus s with carry. */
  u64 lo = (u64)h0 | ((u64)h1 << 26) | ((u64)h2 << 52);
  u64 hi = ((u64)h2 >> 12) | ((u64)h3 << 14) | ((u64)h4 << 40);
  u64 sum_lo = lo + s_lo;
  u64 sum_hi = hi + s_hi + (sum_lo < lo);
  store64(tag, sum_lo);
  store64(tag + 8, sum_hi);

  /* The one-time key must not outlive its message in shared memory. */
  r0 = r1 = r2 = r3 = r4 = 0;
  h0 = h1 = h2 = h3 = h4 = 0;
  s_lo = s_hi = 0;
}
