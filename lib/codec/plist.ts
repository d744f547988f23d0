// The value model shared by the binary and XML property-list codecs (plist-binary.ts, plist-xml.ts).
//
//   string            <string>, binary ASCII or UTF-16 strings
//   number            <integer> when Number.isInteger(n), else <real>
//   bigint            <integer> outside the safe-integer range (64-bit signed, or unsigned up to 2^64-1)
//   PlistReal         <real> with an integral value: keeps 1.0 a real across a round trip
//   boolean           <true/>, <false/>
//   Uint8Array        <data>
//   Date              <date>
//   PlistUID          UID (binary only; NSKeyedArchiver references)
//   PlistValue[]      <array>
//   PlistDict         <dict>: a plain object, keys in document order
//
// Decoders return the narrowest form: integers as number when safe, else bigint; integral reals as PlistReal.

export class PlistReal {
  constructor(readonly value: number) {}
}

export class PlistUID {
  constructor(readonly value: number) {}
}

export type PlistValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | Date
  | PlistReal
  | PlistUID
  | PlistValue[]
  | PlistDict;

export interface PlistDict {
  [key: string]: PlistValue;
}
