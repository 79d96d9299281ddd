import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  ContentInspector,
  completeUtf8Prefix,
  looksLikeCsv,
  sniffContentType,
  TEXT_CSV,
  TEXT_PLAIN,
} from '../../src/lib/content-sniff.js';
import { cfb, docm, docx, elf, pdf, png, zip } from '../helpers/attachments-fixtures.js';

/** Streams the bytes through an inspector in chunks of `chunkSize`, then sniffs. */
async function sniff(bytes: Buffer, chunkSize = 7, reopen?: () => Promise<Readable>) {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const inspector = new ContentInspector();
  await pipeline(Readable.from(chunks), inspector, async (source) => {
    for await (const _ of source) {
      // drain
    }
  });
  const { sample, isText, size, tail } = inspector.result();
  expect(size).toBe(bytes.length);
  return sniffContentType(sample, isText, { size, tail, reopen });
}

describe('content sniffing', () => {
  it('recognises allowed binary formats by their bytes', async () => {
    expect((await sniff(png()))?.contentType).toBe('image/png');
    expect((await sniff(pdf()))?.contentType).toBe('application/pdf');
    expect((await sniff(zip({ 'a.txt': 'hello' })))?.contentType).toBe('application/zip');
    expect((await sniff(docx()))?.contentType).toBe(
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    );
  });

  it('refuses recognised formats that are not allowed (an executable)', async () => {
    expect(await sniff(elf())).toBeNull();
  });

  it('accepts UTF-8 text split anywhere, multi-byte characters included', async () => {
    const text = Buffer.from('Grüße aus 東京 😀\n2026-11-22 ERROR something failed\n');
    for (const size of [1, 2, 3, 5]) expect((await sniff(text, size))?.contentType).toBe(TEXT_PLAIN);
  });

  it('calls a consistent table CSV', async () => {
    const csv = Buffer.from('id,name,"city, country"\n1,Ann,"Oslo, NO"\n2,Bob,Rome\n');
    expect((await sniff(csv))?.contentType).toBe(TEXT_CSV);
    expect(looksLikeCsv(Buffer.from('just one line, with a comma\n'))).toBe(false);
    expect(looksLikeCsv(Buffer.from('a log line, with comma\nanother line without\n'))).toBe(false);
  });

  it('refuses text with NUL bytes and invalid UTF-8', async () => {
    expect(await sniff(Buffer.from('abc\u0000def'))).toBeNull();
    expect(await sniff(Buffer.from([0x61, 0xff, 0x62]))).toBeNull();
    // A sequence cut off at the very end is not text either.
    expect(await sniff(Buffer.from([0x61, 0xe6, 0x9d]))).toBeNull();
  });

  it('keeps XML as plain text rather than trusting it', async () => {
    expect((await sniff(Buffer.from('<?xml version="1.0"?><a/>\n')))?.contentType).toBe(TEXT_PLAIN);
  });

  it('completeUtf8Prefix holds back only an unfinished sequence', () => {
    expect(completeUtf8Prefix(Buffer.from('ab'))).toBe(2);
    const euro = Buffer.from('€'); // e2 82 ac
    expect(completeUtf8Prefix(euro)).toBe(3);
    expect(completeUtf8Prefix(euro.subarray(0, 2))).toBe(0);
    expect(completeUtf8Prefix(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]))).toBe(1);
  });

  describe('Office macros', () => {
    const WORD = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

    it('refuses a .docm whose first entry is larger than the detection sample', async () => {
      const file = docm({ padding: 200 * 1024 });
      expect(await sniff(file, 64 * 1024)).toBeNull();
    });

    it('refuses a package that declares a macro-enabled content type, even without a vbaProject.bin', async () => {
      const file = docm({ padding: 200 * 1024, vbaPart: false });
      expect(await sniff(file, 64 * 1024)).toBeNull();
    });

    it('refuses a .docx that carries a VBA project part under a plain content type', async () => {
      expect(await sniff(docm({ contentType: 'plain' }))).toBeNull();
    });

    it('accepts the same packages without macros, large or small', async () => {
      expect((await sniff(docm({ contentType: 'plain', vbaPart: false })))?.contentType).toBe(WORD);
      const big = docm({ padding: 200 * 1024, contentType: 'plain', vbaPart: false });
      expect((await sniff(big, 64 * 1024))?.contentType).toBe('application/zip');
    });

    it('reads a [Content_Types].xml between the kept head and tail from the stored file', async () => {
      // 1.2 MiB of padding before and after: the part sits outside both the head sample and the tail.
      const file = zip({
        'a.bin': Buffer.alloc(1200 * 1024, 1),
        '[Content_Types].xml':
          '<Types><Override ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>',
        'b.bin': Buffer.alloc(1200 * 1024, 2),
      });
      const reopen = async () => Readable.from([file.subarray(0, 1000), file.subarray(1000)]);
      expect(await sniff(file, 64 * 1024, reopen)).toBeNull();
      const clean = zip({
        'a.bin': Buffer.alloc(1200 * 1024, 1),
        '[Content_Types].xml': '<Types><Override ContentType="application/xml"/></Types>',
        'b.bin': Buffer.alloc(1200 * 1024, 2),
      });
      const reopenClean = async () => Readable.from([clean]);
      expect((await sniff(clean, 64 * 1024, reopenClean))?.contentType).toBe('application/zip');
      // Without a way to read the middle, the part cannot be checked and the file is refused.
      expect(await sniff(clean, 64 * 1024)).toBeNull();
    });

    it('refuses OpenDocument files with Basic macros', async () => {
      const odt = zip({
        mimetype: 'application/vnd.oasis.opendocument.text',
        'content.xml': '<office:document-content/>',
        'Basic/Standard/Module1.xml': '<script:module/>',
      });
      expect(await sniff(odt)).toBeNull();
    });

    it('refuses a zip whose central directory is damaged', async () => {
      const file = zip({ 'a.txt': 'hello' });
      file.writeUInt32LE(0xdeadbeef, file.length - 22 + 16); // central directory offset
      expect(await sniff(file)).toBeNull();
    });

    it('refuses legacy Compound File Binary documents (.doc/.xls/.ppt)', async () => {
      expect(await sniff(cfb())).toBeNull();
    });
  });
});
