import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { inspectZipForMacros, type ZipSource } from './office-macros.js';

/**
 * What an upload may be, decided from its bytes (magic numbers via file-type, or "valid UTF-8 text
 * without NUL bytes" for formats that have none). The client's filename and Content-Type are ignored.
 */
export const ALLOWED_BINARY_TYPES: ReadonlySet<string> = new Set([
  // images
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/bmp',
  'image/tiff',
  'image/heic',
  'image/heif',
  'image/avif',
  // documents
  'application/pdf',
  'application/rtf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
  'application/vnd.oasis.opendocument.presentation',
  // Legacy Office (.doc/.xls/.ppt and Outlook .msg: one Compound File Binary container, detected as
  // application/x-cfb) is NOT accepted: macros in it cannot be ruled out reliably (Excel 4.0 macros live
  // inside the Workbook stream, not in a stream of their own; a .msg embeds such files), and every Office
  // version since 2007 saves OOXML. Outlook data files (.pst) are a different format.
  'application/vnd.ms-outlook',
  // archives
  'application/zip',
]);

/** Text-based formats file-type recognises that we keep as plain text when the bytes are valid UTF-8. */
const TEXTUAL_DETECTIONS = new Set(['application/xml', 'text/vtt', 'text/calendar', 'text/vcard']);

export const TEXT_PLAIN = 'text/plain; charset=utf-8';
export const TEXT_CSV = 'text/csv; charset=utf-8';

/** Bytes kept from the start of a file for detection (zip-based formats need their first entries). */
export const SNIFF_SAMPLE_BYTES = 64 * 1024;
/** Bytes kept from the end of a file: a zip's central directory (its list of entries) lives there. */
export const TAIL_BYTES = 1024 * 1024;

/** Detected types that are zip packages, whose entries are checked for macros. */
function isZipPackage(mime: string): boolean {
  return (
    mime === 'application/zip' ||
    mime.startsWith('application/vnd.openxmlformats-officedocument.') ||
    mime.startsWith('application/vnd.oasis.opendocument.')
  );
}

/**
 * A pass-through stream that watches the bytes on their way to storage: keeps the first
 * SNIFF_SAMPLE_BYTES as a sample and checks, incrementally and without buffering the file, whether
 * the whole content is UTF-8 without NUL bytes.
 */
export class ContentInspector extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private size = 0;
  private carry: Buffer = Buffer.alloc(0);
  private text = true;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.headBytes < SNIFF_SAMPLE_BYTES) {
      const take = chunk.subarray(0, SNIFF_SAMPLE_BYTES - this.headBytes);
      this.head.push(Buffer.from(take));
      this.headBytes += take.length;
    }
    this.size += chunk.length;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes - this.tail[0]!.length >= TAIL_BYTES) this.tailBytes -= this.tail.shift()!.length;
    if (this.text) this.checkText(chunk);
    done(null, chunk);
  }

  private checkText(chunk: Buffer): void {
    if (chunk.includes(0)) {
      this.text = false;
      return;
    }
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    // Hold back an incomplete multi-byte sequence at the end for the next chunk.
    const cut = completeUtf8Prefix(data);
    if (!isUtf8(data.subarray(0, cut))) this.text = false;
    this.carry = Buffer.from(data.subarray(cut));
  }

  /** Call once the stream has finished. */
  result(): { sample: Buffer; isText: boolean; size: number; tail: Buffer } {
    const tail = Buffer.concat(this.tail);
    return {
      sample: Buffer.concat(this.head),
      isText: this.text && this.carry.length === 0,
      size: this.size,
      tail: tail.subarray(Math.max(0, tail.length - TAIL_BYTES)),
    };
  }
}

/** Length of the longest prefix that does not end inside a UTF-8 multi-byte sequence. */
export function completeUtf8Prefix(buf: Buffer): number {
  const n = buf.length;
  // Look back at most 3 bytes for the lead byte of a sequence that may be unfinished.
  for (let i = n - 1; i >= Math.max(0, n - 3); i--) {
    const b = buf[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return n - i < need ? i : n;
  }
  return n;
}

export interface SniffedType {
  /** The Content-Type stored and sent on download. */
  contentType: string;
  /** Conventional extension for the type (no dot). */
  ext: string;
}

/**
 * Decides the type from the content: a recognised allowed binary format, else text when the whole file
 * was UTF-8 without NULs (CSV when it looks like a table), else null — not allowed.
 * Zip packages (ZIP, OOXML, OpenDocument) are accepted only when `zip` is given and the archive's
 * central directory shows no macros (a VBA project, macro sheets, a macro-enabled content type).
 */
export async function sniffContentType(
  sample: Buffer,
  isText: boolean,
  zip?: Omit<ZipSource, 'head'>,
): Promise<SniffedType | null> {
  const detected = sample.length > 0 ? await fileTypeFromBuffer(sample) : undefined;
  if (detected && ALLOWED_BINARY_TYPES.has(detected.mime)) {
    if (isZipPackage(detected.mime)) {
      if (!zip) return null;
      const odf = detected.mime.startsWith('application/vnd.oasis.opendocument.');
      if ((await inspectZipForMacros({ ...zip, head: sample }, { odf })) !== 'clean') return null;
    }
    return { contentType: detected.mime, ext: detected.ext };
  }
  if (detected && !TEXTUAL_DETECTIONS.has(detected.mime)) return null;
  if (!isText) return null;
  return looksLikeCsv(sample)
    ? { contentType: TEXT_CSV, ext: 'csv' }
    : { contentType: TEXT_PLAIN, ext: 'txt' };
}

/**
 * A conservative table test on the sample: at least two complete lines, every one of them with the same
 * number (≥ 1) of commas or of semicolons outside double quotes. Logs and prose rarely pass it.
 */
export function looksLikeCsv(sample: Buffer): boolean {
  const text = sample.toString('utf8');
  const lastNewline = text.lastIndexOf('\n');
  if (lastNewline < 0) return false;
  // Only complete lines: the sample may end mid-line.
  const lines = text
    .slice(0, lastNewline)
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(0, 50);
  if (lines.length < 2) return false;
  return [',', ';'].some((sep) => {
    const first = countOutsideQuotes(lines[0]!, sep);
    return first >= 1 && lines.every((l) => countOutsideQuotes(l, sep) === first);
  });
}

function countOutsideQuotes(line: string, sep: string): number {
  let inQuotes = false;
  let count = 0;
  for (const ch of line) {
    if (ch === '"') inQuotes = !inQuotes;
    else if (ch === sep && !inQuotes) count++;
  }
  return count;
}
