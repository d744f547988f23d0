// Apple's XML property list (PropertyList-1.0.dtd), written the way CoreFoundation writes it (tab indentation,
// `<array/>` and `<dict/>` when empty, base64 `<data>` on its own lines) and read by a small XML tokenizer of our
// own: declaration, DOCTYPE (skipped, internal subset included), comments, processing instructions, CDATA, the
// five predefined entities and numeric character references. Anything else — unknown or unbalanced tags, stray
// text, undeclared entities — is a DecodeError, so no DTD entity is ever expanded.
//
// UIDs travel as CF does: `<dict><key>CF$UID</key><integer>n</integer></dict>`, so a dict whose only key is
// CF$UID with a non-negative integer decodes as a PlistUID. Dates carry whole seconds (`2001-01-01T00:00:00Z`);
// milliseconds are dropped on encode, as CF drops fractional seconds.
import { DecodeError, EncodeError } from '../errors';
import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes';
import {
  PlistReal,
  PlistUID,
  inPlistIntRange,
  narrowInteger,
  plistDateMs,
  plistInteger,
  plistKind,
  plistUidValue,
  resolvePlistLimits,
  setPlistKey,
  type PlistDict,
  type PlistLimits,
  type PlistValue,
} from './plist';

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';
const UID_KEY = 'CF$UID';

// ---- Encoding -------------------------------------------------------------------------------------------------

// Unpaired surrogates, which UTF-8 cannot carry: refused both ways, unlike the binary format.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Characters XML 1.0 cannot carry at all: never written, but tolerated raw on input, where lax writers leave them.
const NON_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

function escapeText(s: string): string {
  if (NON_XML_CHAR.test(s) || LONE_SURROGATE.test(s)) {
    throw new EncodeError('plist-xml-char', 'string holds a character XML cannot carry');
  }
  // CR as a reference: a raw one would be folded into LF by standard XML parsers.
  return s.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

function formatReal(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return '+infinity';
  if (x === -Infinity) return '-infinity';
  return Object.is(x, -0) ? '-0' : String(x);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function formatDate(d: Date): string {
  // Whole seconds, rounded toward the past so a date never moves forward.
  const t = new Date(Math.floor(plistDateMs(d) / 1000) * 1000);
  const year = t.getUTCFullYear();
  if (year < 0 || year > 9999) throw new EncodeError('plist-bad-date', 'date year outside 0000..9999');
  return (
    `${pad(year, 4)}-${pad(t.getUTCMonth() + 1, 2)}-${pad(t.getUTCDate(), 2)}` +
    `T${pad(t.getUTCHours(), 2)}:${pad(t.getUTCMinutes(), 2)}:${pad(t.getUTCSeconds(), 2)}Z`
  );
}

class XmlWriter {
  private readonly out: string[] = [HEADER];
  private readonly open = new Set<object>();
  private readonly maxDepth = resolvePlistLimits().maxDepth;

  text(): string {
    return this.out.join('') + '</plist>\n';
  }

  value(v: PlistValue, indent: number, depth: number): void {
    const tabs = '\t'.repeat(indent);
    const line = (s: string): void => void this.out.push(tabs, s, '\n');
    switch (plistKind(v)) {
      case 'string':
        return line(`<string>${escapeText(v as string)}</string>`);
      case 'integer':
        return line(`<integer>${plistInteger(v as number | bigint)}</integer>`);
      case 'real':
        return line(`<real>${formatReal(v instanceof PlistReal ? v.value : (v as number))}</real>`);
      case 'boolean':
        return line(v ? '<true/>' : '<false/>');
      case 'date':
        return line(`<date>${formatDate(v as Date)}</date>`);
      case 'data': {
        line('<data>');
        // Lines of at most 76 columns counting a tab as 8, never narrower than 16 characters.
        const width = Math.max(16, 76 - 8 * indent);
        const b64 = toBase64(v as Uint8Array);
        for (let i = 0; i < b64.length; i += width) line(b64.slice(i, i + width));
        return line('</data>');
      }
      case 'uid':
        // Written as a dict, so it nests one level deeper than its value as far as a decoder can tell.
        this.enter(depth + 1);
        line('<dict>');
        line(`\t<key>${UID_KEY}</key>`);
        line(`\t<integer>${plistUidValue(v as PlistUID)}</integer>`);
        return line('</dict>');
      case 'array':
      case 'dict':
        return this.container(v as PlistValue[] | PlistDict, indent, depth + 1, line);
    }
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) throw new EncodeError('plist-too-deep', `nesting exceeds ${this.maxDepth}`);
  }

  private container(v: PlistValue[] | PlistDict, indent: number, depth: number, line: (s: string) => void): void {
    this.enter(depth);
    if (this.open.has(v)) throw new EncodeError('plist-cycle', 'value contains itself');
    const tag = Array.isArray(v) ? 'array' : 'dict';
    const keys = Array.isArray(v) ? [] : Object.keys(v);
    if (Array.isArray(v) ? v.length === 0 : keys.length === 0) return line(`<${tag}/>`);
    this.open.add(v);
    line(`<${tag}>`);
    if (Array.isArray(v)) {
      for (const item of v) this.value(item, indent + 1, depth);
    } else {
      const inner = '\t'.repeat(indent + 1);
      for (const k of keys) {
        this.out.push(inner, `<key>${escapeText(k)}</key>\n`);
        this.value(v[k] as PlistValue, indent + 1, depth);
      }
    }
    line(`</${tag}>`);
    this.open.delete(v);
  }
}

export function encodeXmlPlist(value: PlistValue): Uint8Array {
  const w = new XmlWriter();
  w.value(value, 0, 0);
  return utf8(w.text());
}

// ---- Decoding -------------------------------------------------------------------------------------------------

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ATTRIBUTE = /[ \t\r\n]+[A-Za-z_:][-A-Za-z0-9_:.]*[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*')/y;
const TAG_END = /[ \t\r\n]*(\/?)>/y;
const END_TAG = /<\/([A-Za-z_:][-A-Za-z0-9_:.]*)[ \t\r\n]*>/y;
const WHITESPACE = /^[ \t\r\n]*$/;
const ENTITIES = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]]);

const INTEGER = /^([+-]?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))$/;
// Written so no two branches can share a digit run: backtracking stays linear on hostile input.
const REAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;

const isXmlSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** XML-whitespace trim, by index: a trailing-whitespace regex backtracks quadratically on long inner runs. */
function trimXml(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isXmlSpace(s[a])) a++;
  while (b > a && isXmlSpace(s[b - 1])) b--;
  return s.slice(a, b);
}

function badValue(what: string): DecodeError {
  return new DecodeError('plist-xml-value', `bad <${what}> content`);
}

function parseInteger(text: string): number | bigint {
  const m = INTEGER.exec(trimXml(text));
  if (!m) throw badValue('integer');
  const hex = m[2] !== undefined;
  // Leading zeros stripped and length capped first, so a megabyte of digits never reaches BigInt.
  const digits = (m[2] ?? m[3] ?? '').replace(/^0+/, '') || '0';
  if (digits.length > (hex ? 16 : 20)) throw new DecodeError('plist-int-range', 'integer does not fit in 64 bits');
  const magnitude = BigInt(hex ? '0x' + digits : digits);
  const n = m[1] === '-' ? -magnitude : magnitude;
  if (!inPlistIntRange(n)) throw new DecodeError('plist-int-range', 'integer does not fit in 64 bits');
  return narrowInteger(n);
}

function parseReal(text: string): number | PlistReal {
  const t = trimXml(text);
  let x: number;
  if (/^[+-]?nan$/i.test(t)) x = NaN;
  else if (/^[+-]?inf(inity)?$/i.test(t)) x = t.startsWith('-') ? -Infinity : Infinity;
  else if (REAL.test(t)) x = Number(t);
  else throw badValue('real');
  return Number.isInteger(x) ? new PlistReal(x) : x;
}

function parseDate(text: string): Date {
  const m = DATE.exec(trimXml(text));
  if (!m) throw badValue('date');
  // The regex guarantees all six fields; the defaults only satisfy the type checker.
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map(Number);
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC, which maps years 0..99 to 1900..1999.
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw badValue('date');
  }
  return d;
}

type Frame =
  | { tag: 'plist'; value: PlistValue | undefined }
  | { tag: 'array'; items: PlistValue[] }
  | { tag: 'dict'; dict: PlistDict; key: string | undefined };

interface StartTag {
  name: string;
  empty: boolean;
}

class XmlReader {
  private pos = 0;
  private nodes = 0;
  private depth = 0;
  private readonly stack: Frame[] = [];
  private result: { value: PlistValue } | undefined;

  constructor(
    private readonly src: string,
    private readonly limits: Required<PlistLimits>,
    private readonly checkEncoding: boolean,
  ) {}

  private fail(message: string, code = 'plist-xml-syntax'): DecodeError {
    return new DecodeError(code, `${message} (at offset ${this.pos})`);
  }

  private at(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  /** Moves past the next `close`, or fails at the end of input. */
  private skipPast(close: string, what: string): void {
    const i = this.src.indexOf(close, this.pos);
    if (i < 0) throw this.fail(`unterminated ${what}`);
    this.pos = i + close.length;
  }

  private declaration(): void {
    const start = this.pos;
    this.skipPast('?>', 'XML declaration');
    const enc = /encoding[ \t\r\n]*=[ \t\r\n]*["']([^"']*)["']/.exec(this.src.slice(start, this.pos));
    if (this.checkEncoding && enc && !/^utf-?8$/i.test(enc[1] ?? '')) {
      throw this.fail(`unsupported encoding ${JSON.stringify(enc[1])}`, 'plist-xml-encoding');
    }
  }

  /** A DOCTYPE is skipped whole; quotes, comments and an internal subset may hold '>' characters. */
  private doctype(): void {
    let subset = false;
    for (let i = this.pos + 2; i < this.src.length; i++) {
      const c = this.src[i];
      let close = '';
      if (c === '"' || c === "'") close = c;
      else if (this.src.startsWith('<!--', i)) close = '-->';
      else if (c === '[') subset = true;
      else if (c === ']') subset = false;
      else if (c === '>' && !subset) {
        this.pos = i + 1;
        return;
      }
      if (close) {
        const j = this.src.indexOf(close, i + 1);
        if (j < 0) break;
        i = j + close.length - 1;
      }
    }
    throw this.fail('unterminated DOCTYPE');
  }

  /** Whitespace, comments and processing instructions between elements; any other text is an error. */
  private skipMisc(prolog: boolean): void {
    let doctypeSeen = false;
    for (;;) {
      while (isXmlSpace(this.src[this.pos])) this.pos++;
      if (this.at('<!--')) this.skipPast('-->', 'comment');
      else if (this.at('<?')) this.skipPast('?>', 'processing instruction');
      else if (prolog && !doctypeSeen && this.at('<!DOCTYPE')) {
        this.doctype();
        doctypeSeen = true;
      } else if (this.pos < this.src.length && !this.at('<')) throw this.fail('unexpected text');
      else return;
    }
  }

  private startTag(): StartTag {
    if (!this.at('<')) throw this.fail('unexpected end of input');
    NAME.lastIndex = this.pos + 1;
    const name = NAME.exec(this.src);
    if (!name) throw this.fail('malformed tag');
    this.pos = NAME.lastIndex;
    // Attributes are checked for syntax and otherwise ignored (only <plist version="1.0"> carries one).
    for (;;) {
      ATTRIBUTE.lastIndex = this.pos;
      if (!ATTRIBUTE.test(this.src)) break;
      this.pos = ATTRIBUTE.lastIndex;
    }
    TAG_END.lastIndex = this.pos;
    const end = TAG_END.exec(this.src);
    if (!end) throw this.fail(`malformed <${name[0]}> tag`);
    this.pos = TAG_END.lastIndex;
    return { name: name[0], empty: end[1] === '/' };
  }

  private endTag(): string {
    END_TAG.lastIndex = this.pos;
    const m = END_TAG.exec(this.src);
    if (!m) throw this.fail('malformed end tag');
    this.pos = END_TAG.lastIndex;
    return m[1]!;
  }

  private entities(raw: string): string {
    return raw.replace(/&([^;&<]{0,10});?/g, (ref, body: string) => {
      if (!ref.endsWith(';')) throw this.fail('unterminated entity reference', 'plist-xml-entity');
      const named = ENTITIES.get(body);
      if (named !== undefined) return named;
      const num = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(body);
      const cp = num ? parseInt(num[1] ?? num[2] ?? '', num[1] !== undefined ? 16 : 10) : -1;
      if (cp < 1 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        throw this.fail(`unknown entity ${ref}`, 'plist-xml-entity');
      }
      return String.fromCodePoint(cp);
    });
  }

  /** Text content of a leaf element up to its end tag; comments vanish, CDATA is taken verbatim. */
  private leafText(tag: StartTag): string {
    if (tag.empty) return '';
    let out = '';
    for (;;) {
      const lt = this.src.indexOf('<', this.pos);
      if (lt < 0) throw this.fail(`unclosed <${tag.name}>`);
      out += this.entities(this.src.slice(this.pos, lt));
      this.pos = lt;
      if (this.at('<![CDATA[')) {
        const start = this.pos + 9;
        this.skipPast(']]>', 'CDATA section');
        out += this.src.slice(start, this.pos - 3);
      } else if (this.at('<!--')) this.skipPast('-->', 'comment');
      else if (this.at('<?')) this.skipPast('?>', 'processing instruction');
      else if (this.at('</')) {
        const name = this.endTag();
        if (name !== tag.name) throw this.fail(`</${name}> closes <${tag.name}>`);
        return out;
      } else throw this.fail(`element inside <${tag.name}>`);
    }
  }

  private count(): void {
    if (++this.nodes > this.limits.maxObjects) {
      throw new DecodeError('plist-too-many-objects', `more than ${this.limits.maxObjects} objects`);
    }
  }

  private deliver(v: PlistValue): void {
    this.count();
    const top = this.stack[this.stack.length - 1];
    if (!top) {
      this.result = { value: v };
      return;
    }
    if (top.tag === 'array') top.items.push(v);
    else if (top.tag === 'dict') {
      if (top.key === undefined) throw this.fail('dict value without a <key>');
      setPlistKey(top.dict, top.key, v);
      top.key = undefined;
    } else {
      if (top.value !== undefined) throw this.fail('<plist> holds more than one value');
      top.value = v;
    }
  }

  private push(frame: Frame): void {
    if (frame.tag !== 'plist' && ++this.depth > this.limits.maxDepth) {
      throw new DecodeError('plist-too-deep', `nesting exceeds ${this.limits.maxDepth}`);
    }
    this.stack.push(frame);
  }

  private element(tag: StartTag): void {
    switch (tag.name) {
      case 'plist':
        if (this.stack.length > 0) throw this.fail('nested <plist>');
        if (tag.empty) throw this.fail('empty <plist>');
        return this.push({ tag: 'plist', value: undefined });
      case 'array':
        return tag.empty ? this.deliver([]) : this.push({ tag: 'array', items: [] });
      case 'dict':
        return tag.empty ? this.deliver({}) : this.push({ tag: 'dict', dict: {}, key: undefined });
      case 'key': {
        const top = this.stack[this.stack.length - 1];
        if (top?.tag !== 'dict' || top.key !== undefined) throw this.fail('misplaced <key>');
        const key = this.leafText(tag);
        if (Object.prototype.hasOwnProperty.call(top.dict, key)) {
          throw new DecodeError('plist-duplicate-key', 'dict has a repeated key');
        }
        this.count();
        top.key = key;
        return;
      }
      case 'string':
        return this.deliver(this.leafText(tag));
      case 'integer':
        return this.deliver(parseInteger(this.leafText(tag)));
      case 'real':
        return this.deliver(parseReal(this.leafText(tag)));
      case 'date':
        return this.deliver(parseDate(this.leafText(tag)));
      case 'data':
        return this.deliver(fromBase64(this.leafText(tag)));
      case 'true':
      case 'false':
        if (!WHITESPACE.test(this.leafText(tag))) throw badValue(tag.name);
        return this.deliver(tag.name === 'true');
    }
    throw this.fail(`unknown element <${tag.name}>`, 'plist-xml-tag');
  }

  private close(): void {
    const name = this.endTag();
    const frame = this.stack.pop();
    if (!frame || frame.tag !== name) throw this.fail(`unbalanced </${name}>`);
    if (frame.tag === 'plist') {
      if (frame.value === undefined) throw this.fail('empty <plist>');
      this.result = { value: frame.value };
      return;
    }
    this.depth--;
    if (frame.tag === 'array') return this.deliver(frame.items);
    if (frame.key !== undefined) throw this.fail('<key> without a value');
    const keys = Object.keys(frame.dict);
    const uid = frame.dict[UID_KEY];
    if (keys.length === 1 && keys[0] === UID_KEY && typeof uid === 'number' && Number.isInteger(uid) && uid >= 0) {
      return this.deliver(new PlistUID(uid));
    }
    this.deliver(frame.dict);
  }

  document(): PlistValue {
    if (this.at('\ufeff')) this.pos++;
    if (/^<\?xml[ \t\r\n?]/.test(this.src.slice(this.pos, this.pos + 6))) this.declaration();
    this.skipMisc(true);
    this.element(this.startTag());
    while (!this.result) {
      this.skipMisc(false);
      if (this.at('</')) this.close();
      else this.element(this.startTag());
    }
    this.skipMisc(false);
    if (this.pos < this.src.length) throw this.fail('content after the root element');
    return this.result.value;
  }
}

export function decodeXmlPlist(input: Uint8Array | string, limits?: PlistLimits): PlistValue {
  const lim = resolvePlistLimits(limits);
  if (input.length > lim.maxBytes) throw new DecodeError('plist-too-large', `input exceeds ${lim.maxBytes} bytes`);
  if (typeof input !== 'string') return new XmlReader(fromUtf8(input), lim, true).document();
  if (LONE_SURROGATE.test(input)) throw new DecodeError('plist-xml-char', 'text holds an unpaired surrogate');
  return new XmlReader(input, lim, false).document();
}
