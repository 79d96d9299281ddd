import { Readable } from 'node:stream';
import yauzl from 'yauzl';

/**
 * A zip archive as the upload path has it: its size, the bytes kept from its start and end while it
 * streamed to storage, and (for anything in between) a way to read the stored blob again.
 */
export interface ZipSource {
  size: number;
  /** The first bytes of the file. */
  head: Buffer;
  /** The last bytes of the file (the central directory lives here). */
  tail: Buffer;
  /** Streams the stored file from its beginning; used only for ranges outside head and tail. */
  reopen?: () => Promise<Readable>;
}

/** Entry names that only macro-carrying packages have (OOXML VBA projects, Excel 4.0 macro sheets). */
const MACRO_ENTRY = /(^|\/)(vbaProject\.bin|vbaProjectSignature\.bin|vbaData\.xml)$|(^|\/)macrosheets\//i;
/** OpenDocument keeps Basic macros and scripts under these folders. */
const ODF_MACRO_ENTRY = /^(Basic|Scripts)\//i;
/** Content types that declare macros in an OOXML package's [Content_Types].xml. */
const MACRO_CONTENT_TYPE = /macroEnabled|vbaProject|macrosheet/i;
/** A real [Content_Types].xml is a few KiB; a larger one is not read (and the file not trusted). */
const MAX_CONTENT_TYPES_BYTES = 1024 * 1024;

export type MacroVerdict = 'clean' | 'macros' | 'unreadable';

/**
 * Reads the archive's central directory (the index at the end of a zip, listing every entry wherever
 * its data is) and decides whether the package carries macros: a VBA project or macro sheet entry, a
 * macro-enabled content type in `[Content_Types].xml`, or (for OpenDocument) Basic/script folders.
 * Nothing is extracted except `[Content_Types].xml`, bounded. A zip whose directory cannot be read is
 * 'unreadable' — the caller refuses it, since it cannot be checked.
 */
export async function inspectZipForMacros(
  src: ZipSource,
  opts: { odf?: boolean } = {},
): Promise<MacroVerdict> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(src);
  } catch {
    return 'unreadable';
  }
  try {
    const contentTypes: yauzl.Entry[] = [];
    for (;;) {
      const entry = await nextEntry(zip);
      if (!entry) break;
      const name = entry.fileName;
      if (MACRO_ENTRY.test(name)) return 'macros';
      if (opts.odf && ODF_MACRO_ENTRY.test(name)) return 'macros';
      if (name.toLowerCase() === '[content_types].xml') contentTypes.push(entry);
    }
    for (const entry of contentTypes) {
      if (entry.uncompressedSize > MAX_CONTENT_TYPES_BYTES) return 'unreadable';
      const xml = await readEntry(zip, entry);
      if (MACRO_CONTENT_TYPE.test(xml)) return 'macros';
    }
    return 'clean';
  } catch {
    return 'unreadable';
  } finally {
    zip.close();
  }
}

function openZip(src: ZipSource): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(
      new SegmentReader(src),
      src.size,
      { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true },
      (err, zip) => (err || !zip ? reject(err ?? new Error('no zip')) : resolve(zip)),
    );
  });
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (e: yauzl.Entry) => {
      cleanup();
      resolve(e);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(err ?? new Error('no stream'));
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes > MAX_CONTENT_TYPES_BYTES) stream.destroy(new Error('entry too large'));
        else chunks.push(c);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

/** Serves yauzl's reads from the kept head and tail; anything else is read from the stored blob. */
class SegmentReader extends yauzl.RandomAccessReader {
  private readonly tailStart: number;
  /** Reads of the stored blob left; a directory that does not fit the tail would need one per entry. */
  private rereads = 8;

  constructor(private readonly src: ZipSource) {
    super();
    this.tailStart = src.size - src.tail.length;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const { head, tail, reopen } = this.src;
    if (end <= head.length) return Readable.from([head.subarray(start, end)]);
    if (start >= this.tailStart)
      return Readable.from([tail.subarray(start - this.tailStart, end - this.tailStart)]);
    // An empty stream is a short read, which yauzl reports as an error (the file is then refused).
    if (!reopen || this.rereads-- <= 0) return Readable.from([]);
    return Readable.from(readRange(reopen, start, end));
  }
}

async function* readRange(
  reopen: () => Promise<Readable>,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const stream = await reopen();
  let pos = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const from = Math.max(start - pos, 0);
      const to = Math.min(end - pos, chunk.length);
      if (to > from) yield chunk.subarray(from, to);
      pos += chunk.length;
      if (pos >= end) break;
    }
  } finally {
    stream.destroy();
  }
}
