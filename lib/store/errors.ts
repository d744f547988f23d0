// The one error type of the client store. Callers switch on `code`; messages name the table or field involved,
// never message text or key material.
import { CeruleanError } from '../errors';

export type StoreErrorCode =
  /** A method got a value of the wrong type or shape (bad handle, non-UUID message id, NaN time, …). */
  | 'bad-input'
  /** The id names no stored account, chat, message, device or outbox item. */
  | 'not-found'
  /** An insert whose id is already taken (outgoing message, outbox item). */
  | 'duplicate'
  /** The store was closed (or another tab forced the IndexedDB connection closed). */
  | 'closed'
  /** The storage holds a newer schema version than this code knows. */
  | 'too-new'
  /** A schema upgrade step failed; the storage is left at its old version. */
  | 'migration-failed'
  /** The file store is not in the expected format or its journal is damaged before its last line. */
  | 'corrupt'
  /** Another process (or another open in this process) holds the file store. */
  | 'locked'
  /** The file store was asked to keep a CryptoKey but has no KeyVault. */
  | 'no-key-vault'
  /** A key vault can only wrap keys it can export. */
  | 'key-not-extractable'
  /** A wrapped key did not decrypt (wrong passphrase or tampered data). */
  | 'key-unwrap-failed'
  /** The browser refused the write for lack of space. */
  | 'quota'
  /** Reading or writing the underlying storage failed. */
  | 'io';

export class StoreError extends CeruleanError {
  declare readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
