// The vCard reader on fixed files as exporters write them (Apple's 3.0 with CRLF and a folded photo, a 4.0 file
// with LF and a data: URI, 2.1-style bare parameters), its escapes and name rules, the photo checks, and garbage
// in every shape: only DecodeErrors, never a crash.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toHex } from '../../../lib/codec/bytes';
import { parseVCards, sniffImageType } from '../../../lib/contacts/vcard';
import { DecodeError } from '../../../lib/errors';

import { JPEG_BASE64, PNG, PNG_BASE64 } from './fixtures';

/** Apple Contacts style: vCard 3.0, CRLF, grouped properties, the photo folded over several lines. */
const APPLE = [
  'BEGIN:VCARD',
  'VERSION:3.0',
  'PRODID:-//Apple Inc.//macOS 14.0//EN',
  'N:Appleseed;John;Q.,R.;Dr.;Jr.',
  'FN:John Appleseed',
  'ORG:Example\\, Inc.;',
  'item1.EMAIL;type=INTERNET;type=pref:John.Appleseed@Example.COM',
  'item1.X-ABLabel:_$!<Work>!$_',
  'TEL;type=CELL;type=VOICE;type=pref:+1 (555) 010-0123',
  'TEL;type=HOME:555 0199',
  `PHOTO;ENCODING=b;TYPE=PNG:${PNG_BASE64.slice(0, 40)}`,
  ` ${PNG_BASE64.slice(40, 70)}`,
  `\t${PNG_BASE64.slice(70)}`,
  'NOTE:First line\\nsecond line\\; with a semicolon\\, a comma and a backslash \\\\',
  'END:VCARD',
  'BEGIN:VCARD',
  'VERSION:3.0',
  'N:Doe;Jane;;;',
  'EMAIL;type=INTERNET:jane@example.org',
  'END:VCARD',
  '',
].join('\r\n');

/** vCard 4.0, LF line ends, tel: URIs, a data: URI photo, a name that needs unescaping and unfolding. */
const V4 = [
  'BEGIN:VCARD',
  'VERSION:4.0',
  'FN:Zoë Ω\\, Jr.',
  'N:Ω;Zoë;;;Jr.',
  'TEL;VALUE=uri;TYPE="voice,cell";PREF=1:tel:+44-20-7946-0958;ext=12',
  'EMAIL;TYPE=work:mailto:zoe@example.co.uk',
  `PHOTO;MEDIATYPE=image/jpeg:data:image/jpeg;base64,${JPEG_BASE64.slice(0, 30)}`,
  ` ${JPEG_BASE64.slice(30)}`,
  'END:VCARD',
].join('\n');

const card = (...lines: string[]) => ['BEGIN:VCARD', 'VERSION:3.0', ...lines, 'END:VCARD'].join('\r\n');

function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return e as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('parseVCards on fixed files', () => {
  it('reads an Apple 3.0 export with CRLF, groups, escapes and a folded photo', () => {
    const cards = parseVCards(APPLE);
    expect(cards).toHaveLength(2);
    const [john, jane] = cards;
    expect(john).toEqual({
      name: 'John Appleseed',
      tels: ['+1 (555) 010-0123', '555 0199'],
      emails: ['John.Appleseed@Example.COM'],
      photo: { type: 'image/png', bytes: PNG },
    });
    expect(john!.photo!.bytes.length).toBe(70);
    expect(toHex(john!.photo!.bytes.subarray(0, 8))).toBe('89504e470d0a1a0a');
    // No FN: the name comes from N in reading order.
    expect(jane).toEqual({ name: 'Jane Doe', tels: [], emails: ['jane@example.org'] });
  });

  it('reads a 4.0 file with LF, tel: URIs and a data: URI photo', () => {
    const [zoe] = parseVCards(V4);
    expect(zoe).toMatchObject({ name: 'Zoë Ω, Jr.', tels: ['+44-20-7946-0958'], emails: ['zoe@example.co.uk'] });
    expect(zoe!.photo?.type).toBe('image/jpeg');
    expect(zoe!.photo!.bytes.subarray(0, 4)).toEqual(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
  });

  it('builds names from N with prefixes, additional names and suffixes', () => {
    expect(parseVCards(card('N:Appleseed;John;Q.,R.;Dr.;Jr.'))[0]!.name).toBe('Dr. John Q. R. Appleseed Jr.');
    expect(parseVCards(card('N:O\\;Brien;Pat;;;'))[0]!.name).toBe('Pat O;Brien');
    expect(parseVCards(card('FN:  ', 'N:;;;;', 'TEL:123'))[0]).toEqual({ tels: ['123'], emails: [] });
    // The first non-empty FN wins over N.
    expect(parseVCards(card('N:Last;First', 'FN:Shown Name', 'FN:Other'))[0]!.name).toBe('Shown Name');
  });

  it('accepts 2.1 bare parameters, lower-case names, a BOM and blank lines', () => {
    const text = `\ufeff\r\nbegin:vcard\r\nversion:2.1\r\nfn:Old Phone\r\ntel;CELL;PREF:+15550001\r\n\r\nphoto;ENCODING=BASE64;PNG:${PNG_BASE64}\r\nend:vcard\r\n`;
    expect(parseVCards(text)).toEqual([{ name: 'Old Phone', tels: ['+15550001'], emails: [], photo: { type: 'image/png', bytes: PNG } }]);
  });

  it('decodes 2.1 quoted-printable values with soft line breaks, as Android exports them', () => {
    const text = [
      'BEGIN:VCARD',
      'VERSION:2.1',
      'N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=96zt=C3=BCrk;Ay=C5=9Fe;;;',
      'FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Ay=C5=9Fe =C3=96zt=C3=BCrk =E2=80=94 a name long enough to be brok=',
      'en over two lines',
      'TEL;CELL:+90 555 000 0000',
      'EMAIL;HOME;QUOTED-PRINTABLE:ayse=40example.com',
      'NOTE;ENCODING=QUOTED-PRINTABLE:ends with an equals sign=3D',
      'END:VCARD',
      'BEGIN:VCARD',
      'VERSION:2.1',
      'FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Ren=E9',
      'N;CHARSET=NO-SUCH-CHARSET;ENCODING=QUOTED-PRINTABLE:=C3=A9;;;;',
      'TEL:+33 1 00 00 00 00',
      'END:VCARD',
    ].join('\r\n');
    expect(parseVCards(text)).toEqual([
      { name: 'Ayşe Öztürk — a name long enough to be broken over two lines', tels: ['+90 555 000 0000'], emails: ['ayse@example.com'] },
      { name: 'René', tels: ['+33 1 00 00 00 00'], emails: [] },
    ]);
    expect(parseVCards(text.replace(/FN;CHARSET=ISO-8859-1[^\r]*\r\n/, ''))[1]!.name).toBe('é');
  });

  it('keeps colons and semicolons inside quoted parameter values', () => {
    const [c] = parseVCards(card('EMAIL;X-LABEL="a:b;c":x@example.com'));
    expect(c!.emails).toEqual(['x@example.com']);
  });

  it('ignores text values too long to be a name, number or address', () => {
    expect(parseVCards(card(`FN:${'x'.repeat(5000)}`, 'N:Short;Name', `EMAIL:${'a'.repeat(5000)}@b.c`, 'TEL:123'))[0]).toEqual({ name: 'Name Short', tels: ['123'], emails: [] });
  });

  it('accepts old Mac line ends (CR only)', () => {
    expect(parseVCards('BEGIN:VCARD\rFN:Mac\rTEL:1234\rEND:VCARD')).toEqual([{ name: 'Mac', tels: ['1234'], emails: [] }]);
  });
});

describe('photos', () => {
  it('skips photos that are links, not images, not base64 or too big — but keeps the card', () => {
    const read = (line: string, max?: number) => parseVCards(card('FN:P', line), max === undefined ? {} : { maxPhotoBytes: max })[0]!;
    expect(read('PHOTO;VALUE=uri:https://example.com/p.jpg')).toEqual({ name: 'P', tels: [], emails: [], photoSkipped: 'not-inline' });
    expect(read('PHOTO:data:image/png,%89PNG')).toMatchObject({ photoSkipped: 'not-inline' });
    expect(read('PHOTO;ENCODING=b;TYPE=JPEG:aGVsbG8gd29ybGQ=')).toMatchObject({ photoSkipped: 'unknown-format' });
    expect(read('PHOTO;ENCODING=b:!!!notbase64!!!')).toMatchObject({ photoSkipped: 'bad-data' });
    expect(read(`PHOTO;ENCODING=b:${PNG_BASE64}`, 69)).toMatchObject({ photoSkipped: 'too-large' });
    expect(read(`PHOTO;ENCODING=b:${PNG_BASE64}`, 70).photo?.bytes).toEqual(PNG);
  });

  it('decides the size before decoding a huge photo', () => {
    const huge = 'A'.repeat(8 * 1024 * 1024);
    const t0 = Date.now();
    expect(parseVCards(card('FN:Big', `PHOTO;ENCODING=b:${huge}`))[0]).toMatchObject({ photoSkipped: 'too-large' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('keeps the first usable photo', () => {
    const [c] = parseVCards(card('PHOTO;VALUE=uri:http://x', `PHOTO;ENCODING=b:${PNG_BASE64}`, `PHOTO;ENCODING=b:${JPEG_BASE64}`));
    expect(c!.photo?.type).toBe('image/png');
    expect(c!.photoSkipped).toBeUndefined();
  });

  it('sniffs image types from their first bytes', () => {
    expect(sniffImageType(PNG)).toBe('image/png');
    expect(sniffImageType(fromBase64(JPEG_BASE64))).toBe('image/jpeg');
    expect(sniffImageType(new TextEncoder().encode('GIF89a'))).toBe('image/gif');
    expect(sniffImageType(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
    expect(sniffImageType(new TextEncoder().encode('<svg'))).toBeUndefined();
    expect(sniffImageType(new Uint8Array(0))).toBeUndefined();
  });
});

describe('bad input', () => {
  it('names what is wrong with a typed code', () => {
    expect(decodeError(() => parseVCards('')).code).toBe('vcard-empty');
    expect(decodeError(() => parseVCards('hello world')).code).toBe('vcard-bad-line');
    expect(decodeError(() => parseVCards('FN:outside\r\n')).code).toBe('vcard-outside-card');
    expect(decodeError(() => parseVCards('BEGIN:VCARD\r\nFN:x\r\n')).code).toBe('vcard-unterminated');
    expect(decodeError(() => parseVCards('BEGIN:VCARD\r\nBEGIN:VCARD\r\nEND:VCARD\r\nEND:VCARD')).code).toBe('vcard-nested');
    expect(decodeError(() => parseVCards(card('no colon here'))).code).toBe('vcard-bad-line');
    expect(decodeError(() => parseVCards(card(':value without a name'))).code).toBe('vcard-bad-line');
    expect(decodeError(() => parseVCards(card('BAD NAME:x'))).code).toBe('vcard-bad-line');
    expect(decodeError(() => parseVCards(42 as unknown as string)).code).toBe('vcard-not-text');
  });

  it('enforces its limits', () => {
    expect(decodeError(() => parseVCards(card('FN:x'), { maxChars: 10 })).code).toBe('vcard-too-large');
    expect(decodeError(() => parseVCards(card('FN:a') + '\r\n' + card('FN:b'), { maxCards: 1 })).code).toBe('vcard-too-many-cards');
    expect(decodeError(() => parseVCards(card('TEL:1', 'TEL:2', 'TEL:3'), { maxPropertiesPerCard: 3 })).code).toBe('vcard-too-many-properties');
    expect(parseVCards(card('TEL:1', 'TEL:2'), { maxPropertiesPerCard: 3 })[0]!.tels).toEqual(['1', '2']);
  });

  it('random text: a result or a DecodeError, nothing else', () => {
    const onlyDecodeErrors = (text: string) => {
      try {
        parseVCards(text);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 300 }), onlyDecodeErrors), { numRuns: 300 });
    const pieces = fc.constantFrom('BEGIN:VCARD', 'END:VCARD', 'FN:x', 'N:a;b', 'TEL:1', 'EMAIL:a@b', 'PHOTO;ENCODING=b:AAAA', ' folded', '\t', ':', ';', '"', '\\', '');
    fc.assert(fc.property(fc.array(pieces, { maxLength: 30 }), fc.constantFrom('\r\n', '\n', '\r'), (lines, eol) => onlyDecodeErrors(lines.join(eol))), {
      numRuns: 300,
    });
  });

  it('mutated real files: a result or a DecodeError', () => {
    fc.assert(
      fc.property(fc.constantFrom(APPLE, V4), fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 8 }), (text, at, cut, insert) => {
        const i = at % (text.length + 1);
        const mutated = text.slice(0, i) + insert + text.slice(i + cut);
        try {
          const cards = parseVCards(mutated);
          for (const c of cards) {
            expect(Array.isArray(c.tels) && Array.isArray(c.emails)).toBe(true);
            if (c.photo) expect(sniffImageType(c.photo.bytes)).toBe(c.photo.type);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
