// gzip (RFC 1952) on the platform's CompressionStream, and the "maybe gzipped" rule of iMessage payloads:
// a payload that starts with the gzip magic 1F 8B is gunzipped, anything else is taken as is.
import { DecodeError } from '../errors';
import { concat, exact } from './bytes';

/** Default cap on inflated size: payloads and IDS bodies are small; a bomb must not exhaust memory. */
export const DEFAULT_MAX_INFLATED = 16 * 1024 * 1024;

async function pipe(data: Uint8Array, stream: GenericTransformStream, limit: number): Promise<Uint8Array> {
  const writer = stream.writable.getWriter();
  // Errors surface on the reader; the writer's promises are observed so they never go unhandled.
  writer.write(exact(data)).catch(() => {});
  writer.close().catch(() => {});
  const reader = (stream.readable as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new DecodeError('gzip-too-large', `inflated data exceeds ${limit} bytes`);
    }
    chunks.push(value);
  }
  return concat(...chunks);
}

export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  return pipe(data, new CompressionStream('gzip'), Number.MAX_SAFE_INTEGER);
}

export async function gunzip(data: Uint8Array, maxOutput = DEFAULT_MAX_INFLATED): Promise<Uint8Array> {
  try {
    return await pipe(data, new DecompressionStream('gzip'), maxOutput);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError('bad-gzip', 'data is not valid gzip', { cause: e });
  }
}

export function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** The receivers' rule (imessage.md §3.6): gunzip when the gzip magic is present, else return the bytes. */
export async function maybeGunzip(data: Uint8Array, maxOutput = DEFAULT_MAX_INFLATED): Promise<Uint8Array> {
  return isGzip(data) ? gunzip(data, maxOutput) : data;
}
