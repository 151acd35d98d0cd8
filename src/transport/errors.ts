/**
 * Fatal for a connection: the transport sends DISCONNECT with `reason` (when it still can)
 * and closes the socket. `message` goes to the peer and to the log, so it must never hold a
 * secret.
 */
export class DisconnectError extends Error {
  readonly code = 'ERR_SSH_DISCONNECT';
  readonly reason: number;
  constructor(reason: number, message: string) {
    super(message);
    this.name = 'DisconnectError';
    this.reason = reason;
  }
}

/** A packet whose MAC or AEAD tag does not verify. Becomes DISCONNECT MAC_ERROR. */
export class MacError extends Error {
  readonly code = 'ERR_SSH_MAC';
  constructor(message = 'message authentication code incorrect') {
    super(message);
    this.name = 'MacError';
  }
}

/** The peer sent DISCONNECT; carries its reason code and its (escaped) description. */
export class PeerDisconnectError extends Error {
  readonly code = 'ERR_SSH_PEER_DISCONNECT';
  readonly reason: number;
  constructor(reason: number, description: string) {
    super(`peer disconnected (reason ${reason}): ${description}`);
    this.name = 'PeerDisconnectError';
    this.reason = reason;
  }
}
