// The XHTML body `x` of a message and the `epb` of an edit (imessage.md §3.2): `<html><body>` followed by
// top-level parts, each carrying `message-part="N"`. Plain text spans become text parts; everything else
// (attachments, mentions, formatting, unknown tags) is kept as its raw XML so a caller can still show or forward it.
import { DecodeError, EncodeError } from '../errors';

export interface TextPart {
  kind: 'text';
  /** message-part index: tapbacks, edits and replies address parts by it. */
  part: number;
  text: string;
}

export interface RawPart {
  kind: 'raw';
  /** message-part index, when the element has a valid one. */
  part?: number;
  /** The element exactly as it appeared. */
  xml: string;
}

export type XhtmlPart = TextPart | RawPart;

// XML 1.0 Char production; lone surrogates fall outside it too.
const INVALID_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * Escapes text for element content. `\r` becomes a character reference because XML parsers turn a literal CR
 * into LF; `\n` is left to the caller (spans use `<br/>`).
 */
export function escapeXmlText(text: string): string {
  if (INVALID_XML_CHAR.test(text)) throw new EncodeError('xml-invalid-char', 'text holds a character XML cannot carry');
  return text.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

function checkPart(part: number): void {
  if (!Number.isSafeInteger(part) || part < 0) throw new EncodeError('bad-part', 'message-part must be a non-negative integer');
}

/** One plain text span; line breaks become `<br/>`. */
export function textSpan(part: number, text: string): string {
  checkPart(part);
  return `<span message-part="${part}">${escapeXmlText(text).split('\n').join('<br/>')}</span>`;
}

export function buildXhtml(parts: readonly XhtmlPart[]): string {
  const body = parts.map((p) => (p.kind === 'text' ? textSpan(p.part, p.text) : p.xml)).join('');
  return `<html><body>${body}</body></html>`;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const PART_INDEX = /^[0-9]{1,9}$/;
const BR = /<br\s*\/>/y;

interface Tag {
  name: string;
  kind: 'open' | 'close' | 'empty';
  attrs: Map<string, string>;
}

interface Element {
  tag: Tag;
  start: number;
  /** Where the content ends (the close tag starts); equals `end` for an empty element. */
  contentEnd: number;
  contentStart: number;
  end: number;
}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}

  fail(why: string): never {
    throw new DecodeError('bad-xhtml', `message XHTML: ${why}`);
  }

  skipWs(): void {
    while (this.pos < this.s.length && ' \t\r\n'.includes(this.s[this.pos]!)) this.pos++;
  }

  at(str: string): boolean {
    return this.s.startsWith(str, this.pos);
  }

  skipPast(terminator: string): void {
    const i = this.s.indexOf(terminator, this.pos);
    if (i < 0) this.fail(`unterminated construct, expected "${terminator}"`);
    this.pos = i + terminator.length;
  }

  /** Skips a comment, processing instruction or CDATA section at pos; false when none is there. */
  skipSpecial(): boolean {
    if (this.at('<!--')) this.skipPast('-->');
    else if (this.at('<?')) this.skipPast('?>');
    else if (this.at('<![CDATA[')) this.skipPast(']]>');
    else return false;
    return true;
  }

  /** Whitespace, comments and processing instructions (the XML declaration) between structural tags. */
  skipMisc(): void {
    for (;;) {
      this.skipWs();
      if (!this.skipSpecial()) return;
    }
  }

  name(): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.s);
    if (!m) this.fail('expected a name');
    this.pos += m[0].length;
    return m[0];
  }

  tag(): Tag {
    if (this.s[this.pos] !== '<') this.fail('expected a tag');
    this.pos++;
    if (this.s[this.pos] === '/') {
      this.pos++;
      const name = this.name();
      this.skipWs();
      if (this.s[this.pos] !== '>') this.fail('malformed closing tag');
      this.pos++;
      return { name, kind: 'close', attrs: new Map() };
    }
    const name = this.name();
    const attrs = new Map<string, string>();
    for (;;) {
      const before = this.pos;
      this.skipWs();
      if (this.at('/>')) {
        this.pos += 2;
        return { name, kind: 'empty', attrs };
      }
      if (this.at('>')) {
        this.pos++;
        return { name, kind: 'open', attrs };
      }
      if (this.pos === before) this.fail('attributes must be separated by whitespace');
      const attr = this.name();
      this.skipWs();
      if (this.s[this.pos] !== '=') this.fail('attribute without a value');
      this.pos++;
      this.skipWs();
      const quote = this.s[this.pos];
      if (quote !== '"' && quote !== "'") this.fail('unquoted attribute value');
      const close = this.s.indexOf(quote, this.pos + 1);
      if (close < 0) this.fail('unterminated attribute value');
      const value = this.s.slice(this.pos + 1, close);
      if (value.includes('<')) this.fail('"<" in an attribute value');
      if (!attrs.has(attr)) attrs.set(attr, value);
      this.pos = close + 1;
    }
  }

  /** Reads a whole element starting at pos, checking that nested tags are balanced. */
  element(): Element {
    const start = this.pos;
    const tag = this.tag();
    if (tag.kind === 'close') this.fail(`unexpected </${tag.name}>`);
    const contentStart = this.pos;
    if (tag.kind === 'empty') return { tag, start, contentStart, contentEnd: this.pos, end: this.pos };
    const open = [tag.name];
    for (;;) {
      const lt = this.s.indexOf('<', this.pos);
      if (lt < 0) this.fail(`<${tag.name}> is not closed`);
      this.pos = lt;
      if (this.skipSpecial()) continue;
      const inner = this.tag();
      if (inner.kind === 'open') open.push(inner.name);
      else if (inner.kind === 'close') {
        if (open.pop() !== inner.name) this.fail(`mismatched </${inner.name}>`);
        if (open.length === 0) return { tag, start, contentStart, contentEnd: lt, end: this.pos };
      }
    }
  }
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function entity(ref: string): string | null {
  const named = NAMED_ENTITIES[ref];
  if (named !== undefined) return named;
  const m = /^#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}))$/.exec(ref);
  if (!m) return null;
  const cp = m[1] !== undefined ? parseInt(m[1], 10) : parseInt(m[2]!, 16);
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
  const ch = String.fromCodePoint(cp);
  return INVALID_XML_CHAR.test(ch) ? null : ch;
}

/** The text of span content made only of character data, entities and `<br/>`; null when it holds anything else. */
function plainText(content: string): string | null {
  let out = '';
  let i = 0;
  while (i < content.length) {
    const c = content[i]!;
    if (c === '<') {
      BR.lastIndex = i;
      const m = BR.exec(content);
      if (!m) return null;
      out += '\n';
      i += m[0].length;
    } else if (c === '&') {
      // Look only a short way ahead: a long run of '&' must not make this quadratic.
      const semi = content.slice(i, i + 12).indexOf(';') + i;
      if (semi < i) return null;
      const ch = entity(content.slice(i + 1, semi));
      if (ch === null) return null;
      out += ch;
      i = semi + 1;
    } else if (c === '\r') {
      // XML end-of-line handling: CRLF and lone CR read as LF.
      out += '\n';
      i += content[i + 1] === '\n' ? 2 : 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function partIndex(tag: Tag): number | undefined {
  const v = tag.attrs.get('message-part');
  return v !== undefined && PART_INDEX.test(v) ? parseInt(v, 10) : undefined;
}

function topLevelPart(sc: Scanner, el: Element): XhtmlPart {
  const part = partIndex(el.tag);
  if (el.tag.name.toLowerCase() === 'span' && part !== undefined) {
    const text = plainText(sc.s.slice(el.contentStart, el.contentEnd));
    if (text !== null) return { kind: 'text', part, text };
  }
  const xml = sc.s.slice(el.start, el.end);
  return part === undefined ? { kind: 'raw', xml } : { kind: 'raw', part, xml };
}

function expectTag(sc: Scanner, name: string, kinds: Tag['kind'][]): Tag {
  const tag = sc.tag();
  if (tag.name.toLowerCase() !== name || !kinds.includes(tag.kind)) sc.fail(`expected <${name}>`);
  return tag;
}

export function parseXhtml(x: string): XhtmlPart[] {
  const sc = new Scanner(x);
  sc.skipMisc();
  expectTag(sc, 'html', ['open']);
  sc.skipMisc();
  const body = expectTag(sc, 'body', ['open', 'empty']);
  const parts: XhtmlPart[] = [];
  if (body.kind === 'open') {
    for (;;) {
      const lt = sc.s.indexOf('<', sc.pos);
      if (lt < 0) sc.fail('<body> is not closed');
      const text = sc.s.slice(sc.pos, lt);
      if (text.trim() !== '') parts.push({ kind: 'raw', xml: text });
      sc.pos = lt;
      if (sc.skipSpecial()) continue;
      if (sc.at('</')) {
        expectTag(sc, 'body', ['close']);
        break;
      }
      parts.push(topLevelPart(sc, sc.element()));
    }
  }
  sc.skipMisc();
  expectTag(sc, 'html', ['close']);
  sc.skipMisc();
  if (sc.pos !== x.length) sc.fail('content after </html>');
  return parts;
}
