import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { utf8 } from '../../../lib/codec/bytes';
import { decodeXmlPlist, encodeXmlPlist } from '../../../lib/codec/plist-xml';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import {
  PlistReal,
  PlistUID,
  isDict,
  narrowInteger,
  parsePlist,
  setPlistKey,
  type PlistDict,
  type PlistValue,
} from '../../../lib/codec/plist';
import { DecodeError, EncodeError } from '../../../lib/errors';

const HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

const doc = (body: string) => `${HEAD}${body}\n</plist>\n`;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function decodeErrorCode(input: string | Uint8Array): string {
  try {
    decodeXmlPlist(input);
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).code;
  }
  throw new Error(`expected a DecodeError for ${String(input)}`);
}

function encodeErrorCode(v: unknown): string {
  try {
    encodeXmlPlist(v as PlistValue);
  } catch (e) {
    expect(e).toBeInstanceOf(EncodeError);
    return (e as EncodeError).code;
  }
  throw new Error('expected an EncodeError');
}

describe('XML plist fixed documents', () => {
  it('encodes every type in Apple layout', () => {
    const value: PlistDict = {
      s: 'a<b>&c\r',
      i: -42,
      big: 2n ** 64n - 1n,
      r: 0.5,
      r1: new PlistReal(1),
      t: true,
      f: false,
      d: new Date(Date.UTC(2024, 1, 29, 13, 4, 5, 999)),
      data: Uint8Array.of(0, 1, 2, 3, 4),
      uid: new PlistUID(7),
      a: ['x', []],
      e: {},
    };
    const expected = doc(
      [
        '<dict>',
        '\t<key>s</key>',
        '\t<string>a&lt;b&gt;&amp;c&#13;</string>',
        '\t<key>i</key>',
        '\t<integer>-42</integer>',
        '\t<key>big</key>',
        '\t<integer>18446744073709551615</integer>',
        '\t<key>r</key>',
        '\t<real>0.5</real>',
        '\t<key>r1</key>',
        '\t<real>1</real>',
        '\t<key>t</key>',
        '\t<true/>',
        '\t<key>f</key>',
        '\t<false/>',
        '\t<key>d</key>',
        '\t<date>2024-02-29T13:04:05Z</date>',
        '\t<key>data</key>',
        '\t<data>',
        '\tAAECAwQ=',
        '\t</data>',
        '\t<key>uid</key>',
        '\t<dict>',
        '\t\t<key>CF$UID</key>',
        '\t\t<integer>7</integer>',
        '\t</dict>',
        '\t<key>a</key>',
        '\t<array>',
        '\t\t<string>x</string>',
        '\t\t<array/>',
        '\t</array>',
        '\t<key>e</key>',
        '\t<dict/>',
        '</dict>',
      ].join('\n'),
    );
    expect(text(encodeXmlPlist(value))).toBe(expected);
    expect(decodeXmlPlist(expected)).toStrictEqual({ ...value, d: new Date(Date.UTC(2024, 1, 29, 13, 4, 5)) });
  });

  it('wraps long data at 76 columns less the indentation', () => {
    const b64 = 'A'.repeat(100);
    const out = text(encodeXmlPlist([new Uint8Array(75)]));
    expect(out).toContain(`\t<data>\n\t${b64.slice(0, 68)}\n\t${b64.slice(68)}\n\t</data>\n`);
  });

  it('writes special reals as CoreFoundation does', () => {
    const reals = [NaN, Infinity, -Infinity, -0, 1e21, 5e-7].map((x) => (Number.isInteger(x) ? new PlistReal(x) : x));
    expect(text(encodeXmlPlist(reals))).toContain(
      '<real>nan</real>\n\t<real>+infinity</real>\n\t<real>-infinity</real>\n\t<real>-0</real>\n\t<real>1e+21</real>\n\t<real>5e-7</real>',
    );
    expect(decodeXmlPlist(encodeXmlPlist(reals))).toStrictEqual(reals);
  });

  it('decodes a hand-written document with comments, CDATA, entities and odd spacing', () => {
    const xml = `\ufeff<?xml version='1.0' encoding='utf-8' ?>
<!-- leading comment -->
<!DOCTYPE plist [ <!ELEMENT plist ANY> <!-- ] > inside the subset --> ]>
<plist version="1.0" >
<dict>
  <key>e&amp;&lt;&gt;&quot;&apos;&#65;&#x1F600;</key>   <string>  keep  spaces  </string>
  <!-- between -->
  <key>cdata</key><string>a<![CDATA[<b>&amp;]]>c<!-- gone -->d</string>
  <key>empty</key><string/>
  <key>hex</key><integer> 0x1F </integer>
  <key>neg</key><integer>-007</integer>
  <key>data</key><data>
    AAEC
    Aw==
  </data>
  <key>t</key><true></true>
  <key>reals</key><array><real>1.0</real><real>.5</real><real>-1E3</real><real>NaN</real><real>-inf</real></array>
  <key>date</key><date>0050-03-01T00:00:59Z</date>
  <key>notuid</key><dict><key>CF$UID</key><string>x</string></dict>
  <key>uid</key><dict><key>CF$UID</key><integer>9007199254740991</integer></dict>
  <key>cr</key><string>a\r\nb</string>
</dict>
</plist>
<?trailing instruction?>
`;
    const want: PlistDict = {
      'e&<>"\'A\u{1f600}': '  keep  spaces  ',
      cdata: 'a<b>&amp;cd',
      empty: '',
      hex: 31,
      neg: -7,
      data: Uint8Array.of(0, 1, 2, 3),
      t: true,
      reals: [new PlistReal(1), 0.5, new PlistReal(-1000), NaN, -Infinity],
      date: new Date('0050-03-01T00:00:59Z'),
      notuid: { CF$UID: 'x' },
      uid: new PlistUID(9007199254740991),
      cr: 'a\r\nb',
    };
    expect(decodeXmlPlist(utf8(xml))).toStrictEqual(want);
    expect(parsePlist(utf8(xml))).toStrictEqual(want);
  });

  it('accepts a bare root value without <plist>', () => {
    expect(decodeXmlPlist('<array><integer>1</integer></array>')).toStrictEqual([1]);
    expect(decodeXmlPlist('  <string>x</string>  ')).toBe('x');
  });

  it('decodes integers at the 64-bit edges into number or bigint', () => {
    const int = (s: string) => decodeXmlPlist(`<integer>${s}</integer>`);
    expect(int('9007199254740991')).toBe(9007199254740991);
    expect(int('9007199254740992')).toBe(9007199254740992n);
    expect(int('-9007199254740992')).toBe(-9007199254740992n);
    expect(int('18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(int('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(int('0xFFFFFFFFFFFFFFFF')).toBe(2n ** 64n - 1n);
    expect(int('000000000000000000000000000001')).toBe(1);
    expect(int('-0')).toBe(0);
    for (const bad of ['18446744073709551616', '-9223372036854775809', '0x10000000000000000', '9'.repeat(5000)]) {
      expect(decodeErrorCode(`<integer>${bad}</integer>`)).toBe('plist-int-range');
    }
  });

  it('round-trips UIDs, and leaves lookalike dicts alone', () => {
    const v: PlistValue = [new PlistUID(0), new PlistUID(2 ** 40), { CF$UID: -1 }, { CF$UID: 1, x: 2 }, { CF$UID: new PlistReal(3) }];
    expect(decodeXmlPlist(encodeXmlPlist(v))).toStrictEqual(v);
  });

  it('parsePlist picks the codec by the bplist00 magic', () => {
    const v = { k: ['v', 1] };
    expect(parsePlist(encodeBinaryPlist(v))).toStrictEqual(v);
    expect(parsePlist(encodeXmlPlist(v))).toStrictEqual(v);
    expect(() => parsePlist(utf8('bplist0'))).toThrow(DecodeError);
  });
});

describe('XML plist bad input', () => {
  it('rejects malformed documents with typed errors', () => {
    const cases: [string, string][] = [
      ['', 'plist-xml-syntax'],
      ['   ', 'plist-xml-syntax'],
      ['hello', 'plist-xml-syntax'],
      [doc('<foo/>'), 'plist-xml-tag'],
      [doc('<Dict/>'), 'plist-xml-tag'],
      [doc('<array></dict>'), 'plist-xml-syntax'],
      [doc('<array>'), 'plist-xml-syntax'],
      [doc('<array><string>x</string>'), 'plist-xml-syntax'],
      ['<plist><string>x</string>', 'plist-xml-syntax'],
      [doc('<string>x'), 'plist-xml-syntax'],
      [doc('<string>x</key>'), 'plist-xml-syntax'],
      [doc('<string>a<b/>c</string>'), 'plist-xml-syntax'],
      [doc('<integer/>'), 'plist-xml-value'],
      [doc('<integer></integer>'), 'plist-xml-value'],
      [doc('<integer>1.5</integer>'), 'plist-xml-value'],
      [doc('<integer>1 2</integer>'), 'plist-xml-value'],
      [doc('<integer>+</integer>'), 'plist-xml-value'],
      [doc('<real/>'), 'plist-xml-value'],
      [doc('<real>1.2.3</real>'), 'plist-xml-value'],
      [doc('<real>0x10</real>'), 'plist-xml-value'],
      [doc('<date/>'), 'plist-xml-value'],
      [doc('<date>2024-02-30T00:00:00Z</date>'), 'plist-xml-value'],
      [doc('<date>2024-01-01T24:00:00Z</date>'), 'plist-xml-value'],
      [doc('<date>2024-01-01T00:00:00</date>'), 'plist-xml-value'],
      [doc('<true>x</true>'), 'plist-xml-value'],
      [doc('<data>@@@@</data>'), 'bad-base64'],
      [doc('<key>k</key>'), 'plist-xml-syntax'],
      [doc('<array><key>k</key></array>'), 'plist-xml-syntax'],
      [doc('<dict><string>v</string></dict>'), 'plist-xml-syntax'],
      [doc('<dict><key>k</key></dict>'), 'plist-xml-syntax'],
      [doc('<dict><key>k</key><key>j</key></dict>'), 'plist-xml-syntax'],
      [doc('<dict><key>k</key><true/><key>k</key><false/></dict>'), 'plist-duplicate-key'],
      [doc('<true/><false/>'), 'plist-xml-syntax'],
      [doc(''), 'plist-xml-syntax'],
      ['<plist/>', 'plist-xml-syntax'],
      [doc('<plist><true/></plist>'), 'plist-xml-syntax'],
      [doc('<array>text<true/></array>'), 'plist-xml-syntax'],
      [doc('<string>&nbsp;</string>'), 'plist-xml-entity'],
      [doc('<string>&amp</string>'), 'plist-xml-entity'],
      [doc('<string>a & b</string>'), 'plist-xml-entity'],
      [doc('<string>&#xD800;</string>'), 'plist-xml-entity'],
      [doc('<string>&#0;</string>'), 'plist-xml-entity'],
      [doc('<string>&#x110000;</string>'), 'plist-xml-entity'],
      [doc('<string><![CDATA[x</string>'), 'plist-xml-syntax'],
      [doc('<!-- unterminated'), 'plist-xml-syntax'],
      [doc('<true/>') + '<true/>', 'plist-xml-syntax'],
      [doc('<true/>') + 'junk', 'plist-xml-syntax'],
      ['<!DOCTYPE plist [', 'plist-xml-syntax'],
      ['<true/><!DOCTYPE plist>', 'plist-xml-syntax'],
      ['<array attr=unquoted/>', 'plist-xml-syntax'],
      ['<array', 'plist-xml-syntax'],
      ['</array>', 'plist-xml-syntax'],
      // DTD entities are never expanded.
      ['<!DOCTYPE plist [<!ENTITY x "boom">]><string>&x;</string>', 'plist-xml-entity'],
    ];
    for (const [xml, code] of cases) expect(decodeErrorCode(xml), xml).toBe(code);
  });

  it('rejects bad encodings', () => {
    expect(decodeErrorCode(Uint8Array.of(0x3c, 0xff, 0x3e))).toBe('bad-utf8');
    expect(decodeErrorCode(utf8('<?xml version="1.0" encoding="UTF-16"?><true/>'))).toBe('plist-xml-encoding');
    expect(decodeErrorCode('<string>\ud800</string>')).toBe('plist-xml-char');
    expect(decodeErrorCode('<string>\udc00\ud83d</string>')).toBe('plist-xml-char');
    // Raw control characters are tolerated on input, though never written.
    expect(decodeXmlPlist('<string>\u0001</string>')).toBe('\u0001');
  });

  it('stays linear on long hostile runs', () => {
    const n = 200_000;
    const t0 = performance.now();
    expect(decodeErrorCode(`<integer>${' '.repeat(n)}x${' '.repeat(n)}1</integer>`)).toBe('plist-xml-value');
    expect(decodeErrorCode(`<real>${'1'.repeat(n)}x</real>`)).toBe('plist-xml-value');
    expect(decodeErrorCode(`<array${' '.repeat(n)}x`)).toBe('plist-xml-syntax');
    expect(decodeErrorCode(`<string>${'&amp;'.repeat(n)}`)).toBe('plist-xml-syntax');
    expect(decodeErrorCode(`<array>${'<!-- -->'.repeat(n)}`)).toBe('plist-xml-syntax');
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('enforces depth, object and size limits', () => {
    const nested = '<array>'.repeat(5) + '</array>'.repeat(5);
    expect(decodeXmlPlist(nested, { maxDepth: 5 })).toStrictEqual([[[[[]]]]]);
    expect(() => decodeXmlPlist(nested, { maxDepth: 4 })).toThrow(expect.objectContaining({ code: 'plist-too-deep' }));
    expect(() => decodeXmlPlist(nested, { maxObjects: 4 })).toThrow(expect.objectContaining({ code: 'plist-too-many-objects' }));
    expect(() => decodeXmlPlist(nested, { maxBytes: 10 })).toThrow(expect.objectContaining({ code: 'plist-too-large' }));
    // Deep nesting is parsed without recursion: the default limit trips long before the stack would.
    expect(decodeErrorCode('<array>'.repeat(100000))).toBe('plist-too-deep');
  });
});

describe('XML plist encoder errors', () => {
  it('rejects what XML cannot carry and values outside the model', () => {
    expect(encodeErrorCode('a\u0000b')).toBe('plist-xml-char');
    expect(encodeErrorCode('\u001f')).toBe('plist-xml-char');
    expect(encodeErrorCode('\uffff')).toBe('plist-xml-char');
    expect(encodeErrorCode('\ud800')).toBe('plist-xml-char');
    expect(encodeErrorCode('x\udc00')).toBe('plist-xml-char');
    expect(encodeErrorCode({ 'k\u0001': 1 })).toBe('plist-xml-char');
    expect(encodeErrorCode(new Date(Date.UTC(10000, 0, 1)))).toBe('plist-bad-date');
    expect(encodeErrorCode(new Date(Date.UTC(-1, 0, 1)))).toBe('plist-bad-date');
    expect(encodeErrorCode(new Date(NaN))).toBe('plist-bad-date');
    expect(encodeErrorCode(null)).toBe('plist-bad-type');
    expect(encodeErrorCode(2n ** 64n)).toBe('plist-int-range');
    expect(encodeErrorCode(new PlistUID(-2))).toBe('plist-bad-uid');
    const cyclic: PlistDict = {};
    cyclic.self = cyclic;
    expect(encodeErrorCode(cyclic)).toBe('plist-cycle');
    let deep: PlistValue = [];
    for (let i = 0; i < 300; i++) deep = [deep];
    expect(encodeErrorCode(deep)).toBe('plist-too-deep');
  });

  it('floors dates to whole seconds, also before 1970', () => {
    const d = new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 500));
    expect(text(encodeXmlPlist(d))).toContain('<date>1969-12-31T23:59:59Z</date>');
  });
});

// ---- Property tests ------------------------------------------------------------------------------------------

// What XML 1.0 cannot carry; generated strings drop these (the encoder refuses them, tested above).
const UNWRITABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;
const xmlString = (maxLength: number) =>
  fc.oneof(fc.string({ maxLength }), fc.string({ unit: 'binary', maxLength })).map((s) => s.replace(UNWRITABLE, ''));

const leaf: fc.Arbitrary<PlistValue> = fc.oneof(
  xmlString(12),
  fc.constantFrom('&', '<', '>', ']]>', '\r\n', '&amp;', ' '),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.double().filter((x) => !Number.isInteger(x)),
  fc.oneof(fc.integer(), fc.constantFrom(-0, 2 ** 60, 1e300)).map((x) => new PlistReal(x)),
  fc.boolean(),
  fc.uint8Array({ maxLength: 80 }),
  fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
  fc.maxSafeNat().map((n) => new PlistUID(n)),
);

const { tree } = fc.letrec<{ tree: PlistValue; array: PlistValue[]; dict: PlistDict }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('dict')),
  array: fc.array(tie('tree'), { maxLength: 5 }),
  dict: fc.dictionary(xmlString(6), tie('tree'), { maxKeys: 5 }).filter((d) => !Object.keys(d).includes('CF$UID')),
}));

/** What the XML decoder hands back for `v`: narrowest integers, whole-second dates, plain-object dicts. */
function decodedForm(v: PlistValue): PlistValue {
  if (typeof v === 'number' && Number.isInteger(v)) return narrowInteger(BigInt(v));
  if (typeof v === 'bigint') return narrowInteger(v);
  if (v instanceof Date) return new Date(Math.floor(v.getTime() / 1000) * 1000);
  if (Array.isArray(v)) return v.map(decodedForm);
  if (isDict(v)) {
    const out: PlistDict = {};
    for (const k of Object.keys(v)) setPlistKey(out, k, decodedForm(v[k] as PlistValue));
    return out;
  }
  return v;
}

function onlyDecodeErrors(input: string | Uint8Array): void {
  try {
    decodeXmlPlist(input);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

describe('XML plist properties', () => {
  it('round-trips random trees', () => {
    fc.assert(
      fc.property(tree, (v) => {
        const xml = encodeXmlPlist(v);
        const back = decodeXmlPlist(xml);
        expect(back).toStrictEqual(decodedForm(v));
        expect(encodeXmlPlist(back)).toStrictEqual(xml);
      }),
      { numRuns: 300 },
    );
  });

  it('random text and bytes give only DecodeErrors', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), onlyDecodeErrors), { numRuns: 200 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), onlyDecodeErrors), { numRuns: 200 });
    // A soup of plist tokens reaches the structural checks far more often than random text.
    const token = fc.constantFrom(
      '<plist>', '</plist>', '<dict>', '</dict>', '<dict/>', '<array>', '</array>', '<array/>', '<key>k</key>', '<key>',
      '</key>', '<string>', '</string>', '<integer>1</integer>', '<integer>', '<real>2.5</real>', '<true/>', '<false/>',
      '<date>2001-01-01T00:00:00Z</date>', '<data>AA==</data>', '<key>CF$UID</key>', '<!-- c -->', '<![CDATA[x]]>', '&amp;',
      '&', 'text', ' ', '<?pi?>', '<!DOCTYPE plist>', '<', '>', '/>',
    );
    fc.assert(fc.property(fc.array(token, { maxLength: 30 }), (ts) => onlyDecodeErrors(ts.join(''))), { numRuns: 300 });
  });

  it('mutated valid documents give only DecodeErrors', () => {
    const edit = fc.record({ at: fc.nat(), len: fc.nat(6), insert: fc.constantFrom('', '<', '>', '/', '&', 'x', '</dict>', '<array>', '"') });
    fc.assert(
      fc.property(tree, fc.array(edit, { minLength: 1, maxLength: 3 }), (v, edits) => {
        let s = text(encodeXmlPlist(v));
        for (const e of edits) {
          const i = e.at % (s.length + 1);
          s = s.slice(0, i) + e.insert + s.slice(i + e.len);
        }
        onlyDecodeErrors(s);
      }),
      { numRuns: 300 },
    );
  });
});
