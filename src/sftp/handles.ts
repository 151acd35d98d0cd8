import type { DirEntry, ReadHandle, WriteHandle, WriteOptions } from '../backend.js';
import type { FxStatus } from './constants.js';

/**
 * Open handles of one session. A handle on the wire is 4 opaque bytes: a counter that starts at
 * 1 and never goes back, so a handle string is never reused within a session (a late request
 * for a closed handle cannot land on a newer file). The table is bounded; a slot is reserved
 * before the backend is asked to open anything, so a flood of OPENs cannot exceed the bound
 * while their opens are still in flight.
 */
export const HANDLE_BYTES = 4;

export type WriteMode = NonNullable<WriteOptions['mode']>;

interface HandleBase {
  /** Map key: the wire bytes as a latin1 string. */
  readonly key: string;
  /** The wire bytes. */
  readonly handle: Buffer;
  /** The normalised path the handle was opened on. */
  readonly path: string;
  /** performance.now() at OPEN/OPENDIR, for the audit event's duration. */
  readonly openedAt: number;
  /** Set when CLOSE is received: later requests on the handle are refused at once. */
  closing: boolean;
}

export interface ReadFileHandle extends HandleBase {
  readonly kind: 'read';
  readonly file: ReadHandle;
  /** Bytes sent in DATA replies. */
  bytes: number;
}

export interface WriteFileHandle extends HandleBase {
  readonly kind: 'write';
  readonly file: WriteHandle;
  /**
   * Set by the first WRITE that failed. The upload can no longer be complete, so CLOSE aborts it
   * instead of committing a file with a hole or a missing tail, and says why. The status is
   * kept so later requests answer as the first did: OpenSSH's sftp shows the last status it
   * hears, and "Permission denied" must not turn into "Failure".
   */
  failed: { status: FxStatus; message: string } | null;
  /** Modification time for FSTAT while the upload is open (FSETSTAT or OPEN attrs), seconds. */
  mtime: number | null;
  /** What the OPEN flags asked for (WriteOptions.mode). */
  readonly mode: WriteMode;
}

export interface DirHandle extends HandleBase {
  readonly kind: 'dir';
  readonly pages: AsyncIterator<DirEntry[]>;
  /** The backend page being handed out, and how far into it READDIR has got. */
  page: DirEntry[];
  pos: number;
  /** The backend said there are no more pages. */
  done: boolean;
}

export type Handle = ReadFileHandle | WriteFileHandle | DirHandle;

type NewHandle =
  | Omit<ReadFileHandle, 'key' | 'handle' | 'closing'>
  | Omit<WriteFileHandle, 'key' | 'handle' | 'closing'>
  | Omit<DirHandle, 'key' | 'handle' | 'closing'>;

export class HandleTable {
  readonly max: number;
  readonly #open = new Map<string, Handle>();
  readonly #onTransfers: ((delta: number) => void) | undefined;
  #next = 1;
  #reserved = 0;

  /** `onTransfers` hears +1 / -1 as file (not directory) handles open and go: a session is busy. */
  constructor(max: number, onTransfers?: (delta: number) => void) {
    this.max = max;
    this.#onTransfers = onTransfers;
  }

  /** Open handles plus opens in progress. */
  get size(): number {
    return this.#open.size + this.#reserved;
  }

  /** Takes a slot for an open about to start; false when the table is full. */
  reserve(): boolean {
    if (this.size >= this.max || this.#next > 0xffff_ffff) return false;
    this.#reserved++;
    return true;
  }

  /** Gives back a reserved slot when the open failed. */
  release(): void {
    this.#reserved--;
  }

  /** Turns a reserved slot into an open handle. */
  add<T extends NewHandle>(h: T): T & Handle {
    this.#reserved--;
    const handle = Buffer.allocUnsafe(HANDLE_BYTES);
    handle.writeUInt32BE(this.#next++, 0);
    const entry = { ...h, key: handle.toString('latin1'), handle, closing: false } as T & Handle;
    this.#open.set(entry.key, entry);
    if (entry.kind !== 'dir') this.#onTransfers?.(1);
    return entry;
  }

  /** The handle the client named, unless it is unknown or already being closed. */
  get(wire: Uint8Array): Handle | undefined {
    if (wire.length !== HANDLE_BYTES) return undefined;
    const h = this.#open.get(Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength).toString('latin1'));
    return h === undefined || h.closing ? undefined : h;
  }

  delete(h: Handle): void {
    if (this.#open.delete(h.key) && h.kind !== 'dir') this.#onTransfers?.(-1);
  }

  /** Every handle still open (for the end of the session). */
  all(): Handle[] {
    return [...this.#open.values()];
  }
}
