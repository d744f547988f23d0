import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../../../lib/codec/bytes';
import { gzip } from '../../../lib/codec/gzip';
import type { PlistDict } from '../../../lib/codec/plist';
import { encodeBinaryPlist } from '../../../lib/codec/plist-binary';
import { DecodeError, EncodeError } from '../../../lib/errors';
import {
  buildTextMessage,
  decodeTextMessage,
  encodeTextMessage,
  formatThreadOrigin,
  messageParts,
  parseTextMessage,
  parseThreadOrigin,
  textMessage,
  type TextMessage,
} from '../../../lib/imessage/message';
import { buildXhtml, escapeXmlText, parseXhtml, textSpan } from '../../../lib/imessage/xhtml';
import vectors from '../../vectors';
import { RUNS, dictOver, expectDecodeError, onlyDecodeError, onlyDecodeErrorAsync, patched } from './arbitraries';

const GID = 'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E';
const ORIGIN = '0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9';
const P = ['mailto:a@x.com', 'tel:+15551230000'];
const X = '<html><body><span message-part="0">a &amp; &lt;b&gt;</span><span message-part="1">c<br/>d</span></body></html>';

const TEXT_DICT: PlistDict = { t: 'a & <b>c\nd', x: X, p: P, gid: GID, gv: '8', pv: 0, v: '1' };

// python3: plistlib.dumps({'t':'a & <b>c\nd','x':X,'p':['mailto:a@x.com','tel:+15551230000'],
//   'gid':'E4D7C2A2-8B9C-4E57-9C3E-0F1A2B3C4D5E','gv':'8','pv':0,'v':'1'}, fmt=FMT_BINARY, sort_keys=False).hex()
// with X the XHTML string above.
const TEXT_HEX =
  '62706c6973743030d70102030405060708090a0d0e0f105174517851705367696452677652707651765a612026203c623e630a645f106e3c68746d6c3e' +
  '3c626f64793e3c7370616e206d6573736167652d706172743d2230223e612026616d703b20266c743b622667743b3c2f7370616e3e3c7370616e206d65' +
  '73736167652d706172743d2231223e633c62722f3e643c2f7370616e3e3c2f626f64793e3c2f68746d6c3ea20b0c5e6d61696c746f3a6140782e636f6d' +
  '5f101074656c3a2b31353535313233303030305f102445344437433241322d384239432d344535372d394333452d30463141324233433444354551381000' +
  '51310817191b1d2124272934a5a8b7caf1f3f500000000000001010000000000000011000000000000000000000000000000f7';

describe('XHTML bodies', () => {
  it('builds escaped spans with <br/> line breaks', () => {
    expect(textSpan(3, 'x < y & z > w\r\nq')).toBe('<span message-part="3">x &lt; y &amp; z &gt; w&#13;<br/>q</span>');
    expect(buildXhtml([{ kind: 'text', part: 0, text: 'hi' }, { kind: 'raw', xml: '<object/>' }])).toBe(
      '<html><body><span message-part="0">hi</span><object/></body></html>',
    );
    expect(escapeXmlText('"\'')).toBe('"\'');
  });

  it('refuses text XML cannot carry and bad part numbers', () => {
    expect(() => escapeXmlText('a\u0001b')).toThrow(EncodeError);
    expect(() => escapeXmlText('\ud800')).toThrow(EncodeError);
    expect(() => textSpan(-1, 'x')).toThrow(EncodeError);
    expect(() => textSpan(1.5, 'x')).toThrow(EncodeError);
  });

  it('parses plain spans to text and keeps everything else raw', () => {
    const x =
      '<?xml version="1.0"?>\n<html><body>' +
      '<span message-part="0">a &amp; &#x1F600; &#65;<br />b</span>' +
      '<FILE name="IMG_1.jpg" inline-attachment="ia-0" message-part="1"/>' +
      '<span message-part="2"><b>bold</b> text</span>' +
      '<span message-part="3"><mention uri="mailto:a@x.com">Ann</mention></span>' +
      '<span>no part</span><span message-part="4"/>' +
      '<!-- note -->stray' +
      "<span message-part='5' data-x=\"&gt;\">&bogus;</span>" +
      '</body></html>\n';
    expect(parseXhtml(x)).toEqual([
      { kind: 'text', part: 0, text: 'a & \u{1F600} A\nb' },
      { kind: 'raw', part: 1, xml: '<FILE name="IMG_1.jpg" inline-attachment="ia-0" message-part="1"/>' },
      { kind: 'raw', part: 2, xml: '<span message-part="2"><b>bold</b> text</span>' },
      { kind: 'raw', part: 3, xml: '<span message-part="3"><mention uri="mailto:a@x.com">Ann</mention></span>' },
      { kind: 'raw', xml: '<span>no part</span>' },
      { kind: 'text', part: 4, text: '' },
      { kind: 'raw', xml: 'stray' },
      { kind: 'raw', part: 5, xml: "<span message-part='5' data-x=\"&gt;\">&bogus;</span>" },
    ]);
    expect(parseXhtml('<html><body/></html>')).toEqual([]);
  });

  it('rejects malformed structure with bad-xhtml', () => {
    for (const x of [
      '',
      '<html>',
      '<body></body>',
      '<html><body><span message-part="0">x</body></html>',
      '<html><body><span message-part="0">x</span></html>',
      '<html><body></body></html>junk',
      '<html><body><span message-part=0>x</span></body></html>',
      '<html><body><span message-part="0"x="1">x</span></body></html>',
      '<html><body><a b="<">x</a></body></html>',
      '<html><body><!-- open</body></html>',
      '<html><body></i></body></html>',
    ]) {
      expectDecodeError(() => parseXhtml(x), 'bad-xhtml');
    }
  });

  it('round-trips random plain parts', () => {
    const xmlSafe = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(s));
    fc.assert(
      fc.property(fc.array(xmlSafe, { maxLength: 4 }), (texts) => {
        const parts = texts.map((text, part) => ({ kind: 'text' as const, part, text }));
        expect(parseXhtml(buildXhtml(parts))).toEqual(parts);
      }),
      RUNS,
    );
  });

  it('throws only DecodeError on random and tag-soup input', () => {
    const soup = fc
      .array(fc.constantFrom('<', '>', '/', '/>', 'span', ' message-part="0"', '&amp;', '&#x0;', '&', ';', '<br/>', '<html>', '<body>', '</body>', '</html>', 'a', '"', "'", '<!--', '-->', '<?', '?>', '=', ' '), { maxLength: 30 })
      .map((a) => a.join(''));
    fc.assert(fc.property(soup, (x) => void onlyDecodeError(() => parseXhtml(x))), RUNS);
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (x) => void onlyDecodeError(() => parseXhtml(`<html><body>${x}</body></html>`))), RUNS);
  });
});

describe('text message payload', () => {
  it('textMessage fills the defaults and adds x only for several parts', () => {
    const one = textMessage({ text: 'hello', participants: P });
    expect(buildTextMessage(one)).toEqual({ t: 'hello', p: P, gv: '8', pv: 0, v: '1' });
    const two = textMessage({ text: ['a & <b>', 'c\nd'], participants: P, groupId: GID });
    expect(buildTextMessage(two)).toEqual(TEXT_DICT);
    expect(Object.keys(buildTextMessage(two))).toEqual(Object.keys(TEXT_DICT));
    expect(messageParts(two)).toEqual([
      { kind: 'text', part: 0, text: 'a & <b>' },
      { kind: 'text', part: 1, text: 'c\nd' },
    ]);
    expect(messageParts(one)).toEqual([{ kind: 'text', part: 0, text: 'hello' }]);
  });

  it('encodes to the exact plistlib bytes and decodes them, gzipped or not', async () => {
    const m = textMessage({ text: ['a & <b>', 'c\nd'], participants: P, groupId: GID });
    const bytes = await encodeTextMessage(m);
    expect(toHex(bytes)).toBe(TEXT_HEX);
    expect(await decodeTextMessage(fromHex(TEXT_HEX))).toEqual(parseTextMessage(TEXT_DICT));
    expect(await decodeTextMessage(await encodeTextMessage(m, { gzip: true }))).toEqual(parseTextMessage(TEXT_DICT));
    expect(await decodeTextMessage(await gzip(bytes))).toEqual(parseTextMessage(TEXT_DICT));
  });

  it('carries subject, effect, reply and group name', () => {
    const m = textMessage({
      text: 'yes',
      participants: [...P, 'mailto:c@y.org'],
      groupId: GID,
      groupName: 'Pals',
      propertiesVersion: 2,
      subject: 'Re: plans',
      effect: 'com.apple.MobileSMS.expressivesend.impact',
      replyTo: { part: 0, start: 0, length: 5, uuid: ORIGIN },
      referenceUuid: ORIGIN,
    });
    const dict = buildTextMessage(m);
    expect(dict).toEqual({
      t: 'yes',
      p: [...P, 'mailto:c@y.org'],
      gid: GID,
      gv: '8',
      pv: 2,
      v: '1',
      n: 'Pals',
      r: ORIGIN,
      s: 'Re: plans',
      iid: 'com.apple.MobileSMS.expressivesend.impact',
      tg: `r:0:0:5:${ORIGIN}`,
    });
    expect(parseThreadOrigin(parseTextMessage(dict).threadOrigin!)).toEqual({ part: 0, start: 0, length: 5, uuid: ORIGIN });
  });

  it('thread origins reject malformed values', () => {
    expectDecodeError(() => parseThreadOrigin('r:0:0:5'), 'bad-thread-origin');
    expectDecodeError(() => parseThreadOrigin(`p:0:0:5:${ORIGIN}`), 'bad-thread-origin');
    expectDecodeError(() => parseThreadOrigin('r:0:0:5:not-a-guid'), 'bad-thread-origin');
    expect(() => formatThreadOrigin({ part: -1, start: 0, length: 0, uuid: ORIGIN })).toThrow(EncodeError);
    expect(() => formatThreadOrigin({ part: 0, start: 0, length: 0, uuid: 'x' })).toThrow(EncodeError);
  });

  it('keeps unknown keys (attachments, balloons) through parse → encode', async () => {
    const dict: PlistDict = { ...TEXT_DICT, 'ia-0': fromHex('ffd8ff'), bid: 'com.apple.messages.URLBalloonProvider', amx: [{ q: 1 }] };
    const m = parseTextMessage(dict);
    expect(m.extra).toEqual({ 'ia-0': fromHex('ffd8ff'), bid: 'com.apple.messages.URLBalloonProvider', amx: [{ q: 1 }] });
    expect(buildTextMessage(m)).toEqual(dict);
    expect(await decodeTextMessage(await encodeTextMessage(m))).toEqual(m);
  });

  it('parses every legacy pair plaintext of the vectors', async () => {
    expect(vectors.legacy.pair.length).toBeGreaterThan(0);
    for (const v of vectors.legacy.pair) {
      const m: TextMessage = await decodeTextMessage(fromHex(v.plaintext));
      expect(m.text).toBe(v.text);
      expect(m.participants).toEqual(v.participants);
      // [PY] puts the message's own UUID in `r`.
      expect(m.referenceUuid).toBe(v.message_id);
      expect(m).toMatchObject({ groupVersion: '8', version: '1', propertiesVersion: 0, extra: {} });
    }
  });

  it('rejects wrong types and missing participants', () => {
    const bad = (patch: PlistDict) => expectDecodeError(() => parseTextMessage({ ...TEXT_DICT, ...patch }), 'bad-field');
    bad({ t: 5 });
    bad({ p: 'mailto:a@x.com' });
    bad({ p: [1] });
    bad({ pv: '0' });
    bad({ x: fromHex('00') });
    expectDecodeError(() => parseTextMessage({ t: 'x' }), 'missing-key');
  });

  it('survives random dicts and bytes with DecodeError only', async () => {
    const keys = ['t', 'x', 'p', 'r', 'gid', 'gv', 'v', 'pv', 'n', 's', 'iid', 'tg'];
    for (const arb of [dictOver(keys), patched(TEXT_DICT)]) {
      fc.assert(
        fc.property(arb, (d) => {
          const m = onlyDecodeError(() => parseTextMessage(d));
          if (m) expect(parseTextMessage(buildTextMessage(m))).toEqual(m);
        }),
        RUNS,
      );
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (b) => void (await onlyDecodeErrorAsync(() => decodeTextMessage(b)))),
      { numRuns: 100 },
    );
    await expect(decodeTextMessage(encodeBinaryPlist('str'))).rejects.toThrow(DecodeError);
    await expect(decodeTextMessage(fromHex('1f8b0800'))).rejects.toThrow(DecodeError);
  });
});
