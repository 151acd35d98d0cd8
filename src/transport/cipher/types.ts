/**
 * One direction of the binary packet protocol's protection (RFC 4253 §6), in the shape of
 * russh's opening and sealing keys: one object per direction, the sequence number passed in,
 * all work done in place on the packet buffer.
 *
 * Packet layout in the buffers these objects see, from offset 0:
 *
 *   uint32  packet_length          (4 bytes)
 *   byte    padding_length         (1)
 *   byte[]  payload
 *   byte[]  padding                (padding_length, >= 4)
 *   byte[]  mac                    (macLength; 0 for `none`)
 *
 * Alignment: when `lengthAligned` is true, 4 + packet_length is a multiple of `blockSize`
 * (RFC 4253 §6: `none` and encrypt-and-MAC modes). When false (AES-GCM, chacha20-poly1305,
 * EtM MACs) the length field is left out and packet_length itself is a multiple of
 * `blockSize`.
 */
export interface PacketProtection {
  /** Alignment unit for padding (8 for `none` and chacha20-poly1305, 16 for AES). */
  readonly blockSize: number;
  /** Whether the 4-byte length counts toward the alignment (see above). */
  readonly lengthAligned: boolean;
  /** Bytes of MAC or AEAD tag that follow each packet. */
  readonly macLength: number;
}

/** Where `sealTo` hands the sealed packet's bytes, in order (the transport's socket). */
export interface PacketSink {
  write(chunk: Buffer): unknown;
}

export interface SealingKey extends PacketProtection {
  /**
   * Encrypts `packet` in place and writes the MAC or tag into its last `macLength` bytes.
   * `packet` holds a complete plaintext packet as laid out above (padding already filled).
   */
  seal(seq: number, packet: Buffer): void;
  /**
   * Optional, for ciphers whose library returns the ciphertext in a buffer of its own anyway
   * (node's AES-GCM): seals the plaintext packet in `packet[0, length)` (no room for the tag
   * needed) and writes the wire bytes to `out` as pieces, leaving `packet` unchanged and free
   * for reuse once this returns. The bytes written equal those `seal` leaves in a packet.
   */
  sealTo?(seq: number, packet: Buffer, length: number, out: PacketSink): void;
}

export interface OpeningKey extends PacketProtection {
  /**
   * How many leading bytes must have arrived before `packetLength` can be called: 4 when
   * the length travels in clear or is encrypted on its own (chacha20-poly1305), the cipher's
   * block size when the first block must be decrypted to reveal it (CTR without EtM).
   */
  readonly lengthBytes: number;
  /**
   * Returns packet_length from the first `lengthBytes` of `head`. May decrypt those bytes in
   * place (CTR without EtM); `open` then continues from where this left off. Must not trust
   * the value: the transport checks it against its cap and the alignment before reading on.
   */
  packetLength(seq: number, head: Buffer): number;
  /**
   * Verifies and decrypts a whole packet (4 + packet_length + macLength bytes) and returns its
   * plaintext body, padding_length ‖ payload ‖ padding (packet_length bytes): a view of
   * `packet` decrypted in place, or (AES-GCM) the cipher's own output buffer, `packet` then
   * left as received. Throws MacError when the MAC or tag is wrong; no plaintext is returned
   * or written before the MAC or tag verified, except what encrypt-and-MAC must decrypt first
   * (see aes-ctr-hmac.ts). For AEAD and EtM the tag is checked before anything is decrypted.
   */
  open(seq: number, packet: Buffer): Buffer;
}

/** Static facts about a cipher, used for negotiation and key derivation. */
export interface CipherInfo {
  readonly keyLength: number;
  readonly ivLength: number;
  readonly blockSize: number;
  /** AEAD ciphers carry their own tag, so the negotiated MAC is ignored (OpenSSH PROTOCOL §1.6). */
  readonly aead: boolean;
}

export interface MacInfo {
  readonly keyLength: number;
  readonly macLength: number;
  /** encrypt-then-MAC (OpenSSH PROTOCOL §1.5). */
  readonly etm: boolean;
}

/** What key derivation hands to the factory for one direction. */
export interface DirectionKeys {
  cipher: string;
  mac: string | null;
  iv: Uint8Array;
  key: Uint8Array;
  macKey: Uint8Array;
}
