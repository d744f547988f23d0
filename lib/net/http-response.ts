// Strict HTTP/1.1 response parsing (RFC 9112) for a client that must not trust the server: every line, header
// block, chunk size and body is bounded before it is read, ambiguous framing (Transfer-Encoding with
// Content-Length, differing Content-Lengths) is refused rather than guessed, and gzip bodies are inflated under
// the same size cap.
import { DecodeError } from '../errors';
import { gunzip } from '../codec/gzip';
import type { BufferedReader } from './buffered-reader';
import { ByteSink } from './byte-sink';
import { NetError } from './errors';

export interface HttpResponse {
  status: number;
  reason: string;
  /** Lower-case names; every value of a repeated header, in order. */
  headers: Record<string, string[]>;
  /** The body, already gunzipped when the server sent Content-Encoding: gzip. */
  body: Uint8Array;
}

export interface ResponseLimits {
  /** Status line, headers, interim responses and trailers together. */
  maxHeaderBytes: number;
  /** The body as received and, when gzipped, as inflated. */
  maxBodyBytes: number;
}

export interface ParsedResponse extends HttpResponse {
  /** Whether the connection may carry another request. */
  keepAlive: boolean;
}

/** A chunk-size line is a few hex digits plus rarely used extensions. */
const MAX_CHUNK_LINE = 1024;
const MAX_INTERIM_RESPONSES = 8;
/** RFC 9110 token: method and field names. */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, SP and HTAB; no other control characters.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

function bad(message: string): NetError {
  return new NetError('http-bad-response', message);
}

/** Reads one response to a request with `method`. */
export async function readResponse(reader: BufferedReader, method: string, limits: ResponseLimits): Promise<ParsedResponse> {
  const budget = new HeaderBudget(limits.maxHeaderBytes);
  let head = await readHead(reader, budget);
  for (let interim = 0; head.status < 200; interim++) {
    // 1xx responses (100 Continue, 103 Early Hints) precede the real one; 101 would switch protocols.
    if (head.status === 101 || interim === MAX_INTERIM_RESPONSES) throw bad(`unexpected ${head.status} response`);
    head = await readHead(reader, budget);
  }
  const { status, reason, headers, minor } = head;
  let keepAlive = minor === 1 && !hasToken(headers.connection, 'close');
  let body: Uint8Array;
  if (method === 'HEAD' || status === 204 || status === 304) {
    body = new Uint8Array(0);
  } else if (headers['transfer-encoding']) {
    if (headers['content-length']) throw bad('both Transfer-Encoding and Content-Length');
    const codings = listTokens(headers['transfer-encoding']);
    if (minor === 0 || codings.length !== 1 || codings[0] !== 'chunked') throw bad('unsupported Transfer-Encoding');
    body = await readChunked(reader, budget, limits.maxBodyBytes);
  } else if (headers['content-length']) {
    const length = contentLength(headers['content-length']);
    if (length > limits.maxBodyBytes) {
      throw new NetError('http-body-too-large', `the response body (${length} bytes) exceeds ${limits.maxBodyBytes} bytes`);
    }
    const sink = new ByteSink(limits.maxBodyBytes);
    await reader.readInto(length, sink);
    body = sink.bytes();
  } else {
    // Delimited by the end of the connection, which therefore cannot be reused.
    keepAlive = false;
    const sink = new ByteSink(limits.maxBodyBytes);
    await reader.readToEnd(sink);
    body = sink.bytes();
  }
  return { status, reason, headers, body: await decodeContent(headers['content-encoding'], body, limits.maxBodyBytes), keepAlive };
}

class HeaderBudget {
  constructor(private left: number) {}

  /** Reads a line that counts against the budget (its CRLF included). */
  async line(reader: BufferedReader): Promise<Uint8Array | null> {
    const tooLarge = () => new NetError('http-headers-too-large', 'the response headers are too large');
    const line = await reader.readLine(Math.max(0, this.left - 2), tooLarge);
    if (line) this.left -= line.length + 2;
    if (this.left < 0) throw tooLarge();
    return line;
  }
}

interface Head {
  minor: number;
  status: number;
  reason: string;
  headers: Record<string, string[]>;
}

async function readHead(reader: BufferedReader, budget: HeaderBudget): Promise<Head> {
  const first = await budget.line(reader);
  if (first === null) throw new NetError('connection-closed', 'the server closed the connection without responding');
  const m = STATUS_LINE.exec(latin1(first));
  if (!m) throw bad('malformed status line');
  return { minor: Number(m[1]), status: Number(m[2]), reason: m[3] ?? '', headers: await readFields(reader, budget) };
}

/** Header (or trailer) fields up to the empty line. */
async function readFields(reader: BufferedReader, budget: HeaderBudget): Promise<Record<string, string[]>> {
  const fields: Record<string, string[]> = Object.create(null);
  for (;;) {
    const line = await budget.line(reader);
    if (line === null) throw new NetError('connection-closed', 'the server closed the connection in the headers');
    if (line.length === 0) return fields;
    const text = latin1(line);
    // Folded continuation lines are obsolete and a classic smuggling vector.
    if (text[0] === ' ' || text[0] === '\t') throw bad('folded header line');
    const colon = text.indexOf(':');
    const name = text.slice(0, Math.max(0, colon));
    if (!HTTP_TOKEN.test(name)) throw bad('malformed header name');
    const value = text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw bad('control character in a header value');
    (fields[name.toLowerCase()] ??= []).push(value);
  }
}

async function readChunked(reader: BufferedReader, budget: HeaderBudget, maxBody: number): Promise<Uint8Array> {
  const sink = new ByteSink(maxBody);
  for (;;) {
    const line = await reader.readLine(MAX_CHUNK_LINE, () => bad('chunk size line too long'));
    if (line === null) throw new NetError('connection-closed', 'the server closed the connection mid-body');
    const m = /^([0-9A-Fa-f]+)[ \t]*(;[\t\x20-\x7e\x80-\xff]*)?$/.exec(latin1(line));
    if (!m) throw bad('malformed chunk size');
    const digits = m[1]!.replace(/^0+(?=.)/, '');
    // More than 8 hex digits is ≥ 4 GiB: over any limit, and past where parseInt stays exact.
    if (digits.length > 8 || sink.length + parseInt(digits, 16) > maxBody) {
      throw new NetError('http-body-too-large', `the chunked response body exceeds ${maxBody} bytes`);
    }
    const size = parseInt(digits, 16);
    if (size === 0) {
      await readFields(reader, budget);
      return sink.bytes();
    }
    await reader.readInto(size, sink);
    const crlf = await reader.readExact(2);
    if (crlf[0] !== 0x0d || crlf[1] !== 0x0a) throw bad('chunk data not followed by CRLF');
  }
}

function contentLength(values: string[]): number {
  const parts = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  if (!parts.every((p) => /^\d{1,15}$/.test(p)) || new Set(parts.map(Number)).size !== 1) {
    throw bad('malformed or conflicting Content-Length');
  }
  return Number(parts[0]);
}

async function decodeContent(encoding: string[] | undefined, body: Uint8Array, max: number): Promise<Uint8Array> {
  const codings = listTokens(encoding ?? []).filter((c) => c !== 'identity');
  if (codings.length === 0) return body;
  if (codings.length !== 1 || (codings[0] !== 'gzip' && codings[0] !== 'x-gzip')) {
    throw bad(`unsupported Content-Encoding ${codings.join(', ')}`);
  }
  try {
    return await gunzip(body, max);
  } catch (e) {
    if (e instanceof DecodeError && e.code === 'gzip-too-large') {
      throw new NetError('http-body-too-large', `the inflated response body exceeds ${max} bytes`, { cause: e });
    }
    throw new NetError('http-bad-response', 'the gzip response body is corrupt', { cause: e });
  }
}

function listTokens(values: string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim().toLowerCase()).filter(Boolean);
}

function hasToken(values: string[] | undefined, token: string): boolean {
  return listTokens(values ?? []).includes(token);
}

/** Header bytes as ISO-8859-1 text (one char per byte), which is what the regexes above validate. */
function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}
