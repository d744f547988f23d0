// Typed encode/decode of the NGM ("pair-ec") protobufs (imessage.md §5.2, ids.md §6.3–6.4). Every decode of
// peer-supplied bytes goes through here so that malformed input surfaces only as a DecodeError.
import {
  ScalarType,
  create,
  fromBinary,
  toBinary,
  type DescField,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { DecodeError } from '../errors';
import {
  InnerMessageSchema,
  KeyTransparencyLoggableDataSchema,
  NgmPublicIdentitySchema,
  OuterMessageSchema,
  PublicDevicePrekeySchema,
  type InnerMessage,
  type KeyTransparencyLoggableData,
  type NgmPublicIdentity as NgmPublicIdentityMessage,
  type OuterMessage,
  type PublicDevicePrekey,
} from './proto/ids_pb';

export type { InnerMessage, KeyTransparencyLoggableData, NgmPublicIdentityMessage, OuterMessage, PublicDevicePrekey };

/** Field values for an encoder; fields left out take their proto3 default and are not written. */
export type Fields<Desc extends DescMessage> = Omit<MessageInitShape<Desc>, '$typeName'>;

function encode<Desc extends DescMessage>(schema: Desc, fields: Fields<Desc>): Uint8Array<ArrayBuffer> {
  return toBinary(schema, create(schema, fields as MessageInitShape<Desc>));
}

/** protobuf-es's own default nesting limit for unknown groups. */
const RECURSION_LIMIT = 100;

function wireTypeOf(field: DescField): WireType {
  if (field.fieldKind !== 'scalar') return WireType.LengthDelimited;
  switch (field.scalar) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

/**
 * protobuf-es reads a known field by its declared type whatever the tag's wire type says; Go and prost reject
 * such tags, and so do we, so that a flipped tag bit cannot leave a message meaning the same thing.
 */
function checkWireTypes(schema: DescMessage, bytes: Uint8Array): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const field = schema.fields.find((f) => f.number === fieldNo);
    if (field && wireTypeOf(field) !== wireType) throw new Error(`field ${fieldNo} has wire type ${wireType}`);
    reader.skip(wireType, fieldNo, RECURSION_LIMIT);
  }
}

function decode<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, what: string): MessageShape<Desc> {
  try {
    checkWireTypes(schema, bytes);
    // Unknown fields are dropped: nothing here re-encodes peer messages, and keeping them only holds junk.
    return fromBinary(schema, bytes, { readUnknownFields: false, recursionLimit: RECURSION_LIMIT });
  } catch (e) {
    throw new DecodeError('bad-protobuf', `malformed ${what} protobuf`, { cause: e });
  }
}

export function encodeOuterMessage(fields: Fields<typeof OuterMessageSchema>): Uint8Array<ArrayBuffer> {
  return encode(OuterMessageSchema, fields);
}

export function decodeOuterMessage(bytes: Uint8Array): OuterMessage {
  return decode(OuterMessageSchema, bytes, 'OuterMessage');
}

export function encodeInnerMessage(fields: Fields<typeof InnerMessageSchema>): Uint8Array<ArrayBuffer> {
  return encode(InnerMessageSchema, fields);
}

export function decodeInnerMessage(bytes: Uint8Array): InnerMessage {
  return decode(InnerMessageSchema, bytes, 'InnerMessage');
}

export function encodePublicDevicePrekey(fields: Fields<typeof PublicDevicePrekeySchema>): Uint8Array<ArrayBuffer> {
  return encode(PublicDevicePrekeySchema, fields);
}

export function decodePublicDevicePrekey(bytes: Uint8Array): PublicDevicePrekey {
  return decode(PublicDevicePrekeySchema, bytes, 'PublicDevicePrekey');
}

export function encodeKeyTransparencyLoggableData(
  fields: Fields<typeof KeyTransparencyLoggableDataSchema>,
): Uint8Array<ArrayBuffer> {
  return encode(KeyTransparencyLoggableDataSchema, fields);
}

export function decodeKeyTransparencyLoggableData(bytes: Uint8Array): KeyTransparencyLoggableData {
  return decode(KeyTransparencyLoggableDataSchema, bytes, 'KeyTransparencyLoggableData');
}

export function encodeNgmPublicIdentityMessage(fields: Fields<typeof NgmPublicIdentitySchema>): Uint8Array<ArrayBuffer> {
  return encode(NgmPublicIdentitySchema, fields);
}

export function decodeNgmPublicIdentityMessage(bytes: Uint8Array): NgmPublicIdentityMessage {
  return decode(NgmPublicIdentitySchema, bytes, 'NgmPublicIdentity');
}
