// vCard 3.0 / 4.0 reader (RFC 2426, RFC 6350), reduced to what a contact book for iMessage needs: a display name
// (FN, else N), phone numbers (TEL), e-mail addresses (EMAIL) and an inline photo (PHOTO as base64 with
// ENCODING=b, or a data: URI). Everything else is read past. Files come from the user's other address books, so
// the reader accepts what exporters actually write (folded lines with CRLF or LF, `item1.` groups, quoted parameter
// values, and the 2.1 habits phones still have: bare parameters and quoted-printable names with soft line breaks)
// and turns anything that is not vCard at all into a DecodeError. Photos are
// never fetched from links, are checked to be real images by their first bytes, and are never decoded when their
// size alone is over the limit.
import { fromBase64, utf8 } from '../codec/bytes';
import { DecodeError } from '../errors';

export interface VCardPhoto {
  /** The image type as its bytes show it (image/jpeg, image/png, image/gif or image/webp). */
  type: string;
  bytes: Uint8Array;
}

/** Why a card's PHOTO was not kept. */
export type PhotoSkipReason = 'too-large' | 'not-inline' | 'unknown-format' | 'bad-data';

export interface VCard {
  /** FN, or the N components in reading order when there is no FN. */
  name?: string;
  /** TEL values as written (a `tel:` URI's scheme and parameters removed). */
  tels: string[];
  /** EMAIL values (a `mailto:` scheme removed). */
  emails: string[];
  photo?: VCardPhoto;
  photoSkipped?: PhotoSkipReason;
}

export interface VCardLimits {
  /** Input length in UTF-16 units. */
  maxChars?: number;
  maxCards?: number;
  /** Content lines of one card, after unfolding. */
  maxPropertiesPerCard?: number;
  /** Decoded photo size; bigger photos are left out of the card (photoSkipped: 'too-large'). */
  maxPhotoBytes?: number;
}

export const DEFAULT_VCARD_LIMITS: Readonly<Required<VCardLimits>> = Object.freeze({
  maxChars: 64 * 1024 * 1024,
  maxCards: 10_000,
  maxPropertiesPerCard: 1000,
  maxPhotoBytes: 256 * 1024,
});

/** The image type the bytes start like, if it is one a browser shows safely as a contact picture. */
export function sniffImageType(b: Uint8Array): string | undefined {
  const starts = (...sig: number[]) => sig.every((x, i) => b[i] === x);
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  return undefined;
}

const MAX_TEXT_VALUE = 4096;

interface ContentLine {
  /** Upper-case, group prefix removed. */
  name: string;
  /** Parameter names upper-case; values lower-case, comma lists split, quotes removed. */
  params: Map<string, string[]>;
  value: string;
}

export function parseVCards(text: string, limits: VCardLimits = {}): VCard[] {
  const lim = { ...DEFAULT_VCARD_LIMITS, ...limits };
  if (typeof text !== 'string') throw new DecodeError('vcard-not-text', 'vCard input must be text');
  if (text.length > lim.maxChars) throw new DecodeError('vcard-too-large', `vCard text exceeds ${lim.maxChars} characters`);
  const cards: VCard[] = [];
  let current: ContentLine[] | undefined;
  for (const line of unfold(text)) {
    if (line.trim() === '') continue;
    const cl = parseContentLine(line);
    const isBegin = cl.name === 'BEGIN' && cl.value.trim().toUpperCase() === 'VCARD';
    const isEnd = cl.name === 'END' && cl.value.trim().toUpperCase() === 'VCARD';
    if (!current) {
      if (!isBegin) throw new DecodeError('vcard-outside-card', `expected BEGIN:VCARD, found ${cl.name}`);
      if (cards.length >= lim.maxCards) throw new DecodeError('vcard-too-many-cards', `more than ${lim.maxCards} cards`);
      current = [];
      continue;
    }
    // 2.1 could embed an AGENT card this way; nobody exports that for people, so it is not accepted.
    if (isBegin) throw new DecodeError('vcard-nested', 'a card inside a card is not supported');
    if (isEnd) {
      cards.push(buildCard(current, lim.maxPhotoBytes));
      current = undefined;
      continue;
    }
    if (current.length >= lim.maxPropertiesPerCard) {
      throw new DecodeError('vcard-too-many-properties', `a card has more than ${lim.maxPropertiesPerCard} properties`);
    }
    current.push(cl);
  }
  if (current) throw new DecodeError('vcard-unterminated', 'the last card has no END:VCARD');
  if (cards.length === 0) throw new DecodeError('vcard-empty', 'no vCards found');
  return cards;
}

/**
 * Logical lines: a physical line starting with a space or tab continues the one before it (RFC 6350 §3.2); in a
 * quoted-printable value a line ending in `=` continues on the next line (a soft line break, vCard 2.1).
 */
function unfold(text: string): string[] {
  const physical = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r\n|\r|\n/);
  const out: string[] = [];
  let parts: string[] | undefined;
  let qp = false;
  for (const p of physical) {
    if (parts) {
      const last = parts[parts.length - 1]!;
      if (qp && last.endsWith('=')) {
        parts[parts.length - 1] = last.slice(0, -1);
        parts.push(p);
        continue;
      }
      if (p.startsWith(' ') || p.startsWith('\t')) {
        parts.push(p.slice(1));
        continue;
      }
      out.push(parts.join(''));
    }
    parts = [p];
    qp = /^[^:]*;\s*(?:ENCODING\s*=\s*)?QUOTED-PRINTABLE\s*[;:]/i.test(p);
  }
  if (parts) out.push(parts.join(''));
  return out;
}

/** Splits on `sep` outside double quotes. */
function splitUnquoted(s: string, sep: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function parseContentLine(line: string): ContentLine {
  let colon = -1;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === ':' && !quoted) {
      colon = i;
      break;
    }
  }
  if (colon <= 0) throw new DecodeError('vcard-bad-line', 'a content line has no name or no ":"');
  const [head = '', ...rawParams] = splitUnquoted(line.slice(0, colon), ';');
  const dot = head.lastIndexOf('.');
  const name = head.slice(dot + 1).toUpperCase();
  if (!/^[A-Z0-9-]+$/.test(name) || (dot >= 0 && !/^[A-Za-z0-9-]+$/.test(head.slice(0, dot)))) {
    throw new DecodeError('vcard-bad-line', 'a content line has an invalid property name');
  }
  const params = new Map<string, string[]>();
  for (const raw of rawParams) {
    const eq = raw.indexOf('=');
    // vCard 2.1 writes bare types (TEL;CELL:…, PHOTO;JPEG:…).
    const key = eq < 0 ? 'TYPE' : raw.slice(0, eq).trim().toUpperCase();
    const values = splitUnquoted(eq < 0 ? raw : raw.slice(eq + 1), ',').map((v) => v.trim().replace(/^"|"$/g, '').toLowerCase());
    params.set(key, [...(params.get(key) ?? []), ...values]);
  }
  return { name, params, value: line.slice(colon + 1) };
}

/** The value's text: quoted-printable decoded in its CHARSET (UTF-8 when absent or unknown) for 2.1 values. */
function valueText(l: ContentLine): string {
  const encoding = [...(l.params.get('ENCODING') ?? []), ...(l.params.get('TYPE') ?? [])];
  if (!encoding.includes('quoted-printable')) return l.value;
  const bytes: number[] = [];
  for (const piece of l.value.split(/(=[0-9A-Fa-f]{2})/)) {
    if (/^=[0-9A-Fa-f]{2}$/.test(piece)) bytes.push(parseInt(piece.slice(1), 16));
    else for (const b of utf8(piece)) bytes.push(b);
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(l.params.get('CHARSET')?.[0] ?? 'utf-8');
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** Text value escapes: \n or \N is a line break, \\ \, \; \: stand for themselves. */
function unescapeText(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' || c === 'N' ? '\n' : c));
}

/** Splits a structured value (N) on unescaped semicolons, then unescapes each component. */
function structured(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === ';') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  // A component may be a comma list (several additional names); they read as words.
  return out.map((part) => unescapeText(part.replace(/(?<!\\),/g, ' ')).replace(/\s+/g, ' ').trim());
}

function nameFromN(value: string): string | undefined {
  const [family = '', given = '', additional = '', prefix = '', suffix = ''] = structured(value);
  const name = [prefix, given, additional, family, suffix].filter((p) => p.length > 0).join(' ');
  return name.length > 0 ? name : undefined;
}

function buildCard(lines: readonly ContentLine[], maxPhotoBytes: number): VCard {
  const card: VCard = { tels: [], emails: [] };
  let fn: string | undefined;
  let n: string | undefined;
  for (const l of lines) {
    // A name, number or address this long is not one; skipping it keeps decoding work bounded per value.
    if (l.name !== 'PHOTO' && l.value.length > MAX_TEXT_VALUE) continue;
    switch (l.name) {
      case 'FN': {
        const v = unescapeText(valueText(l)).trim();
        if (fn === undefined && v.length > 0) fn = v;
        break;
      }
      case 'N':
        n ??= nameFromN(valueText(l));
        break;
      case 'TEL': {
        // A 4.0 tel: URI may carry parameters (;ext=…) after the number.
        let v = unescapeText(valueText(l)).trim();
        if (/^tel:/i.test(v)) v = v.slice(4).split(';')[0]!.trim();
        if (v.length > 0) card.tels.push(v);
        break;
      }
      case 'EMAIL': {
        const v = unescapeText(valueText(l)).trim().replace(/^mailto:/i, '').trim();
        if (v.length > 0) card.emails.push(v);
        break;
      }
      case 'PHOTO':
        if (!card.photo) {
          const result = readPhoto(l, maxPhotoBytes);
          if ('bytes' in result) {
            card.photo = result;
            delete card.photoSkipped;
          } else card.photoSkipped = result.skipped;
        }
        break;
    }
  }
  const name = fn ?? n;
  if (name !== undefined) card.name = name;
  return card;
}

function readPhoto(l: ContentLine, maxBytes: number): VCardPhoto | { skipped: PhotoSkipReason } {
  const value = l.value.trim();
  const encoding = l.params.get('ENCODING') ?? [];
  let base64: string;
  if (encoding.includes('b') || encoding.includes('base64')) {
    base64 = value;
  } else {
    // data:[<media type>][;base64],<data>; only the base64 form carries an image compactly enough to be worth it.
    const m = /^data:[^,]*;base64,/i.exec(value);
    if (!m) return { skipped: 'not-inline' };
    base64 = value.slice(m[0].length);
  }
  const clean = base64.replace(/[\s=]+/g, '');
  if (Math.floor((clean.length * 3) / 4) > maxBytes) return { skipped: 'too-large' };
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(clean);
  } catch {
    return { skipped: 'bad-data' };
  }
  const type = sniffImageType(bytes);
  if (!type) return { skipped: 'unknown-format' };
  return { type, bytes };
}
