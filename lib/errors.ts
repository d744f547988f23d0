// Typed errors for everything that parses untrusted bytes or checks a signature. Callers switch on `code`;
// messages name what was wrong but never include secret or message content.

export class CeruleanError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Malformed or over-limit input to a decoder (plist, frame, protobuf, gzip, envelope). */
export class DecodeError extends CeruleanError {}

/** A value that cannot be encoded (wrong type, out of range, too large). */
export class EncodeError extends CeruleanError {}

/** A signature, MAC or key-validator check failed, or a key is unusable. */
export class CryptoError extends CeruleanError {}
