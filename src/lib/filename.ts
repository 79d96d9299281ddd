/** Longest stored filename, in UTF-8 bytes (the common filesystem limit; the column allows 255 chars). */
export const MAX_FILENAME_BYTES = 255;

// C0/C1 controls, DEL, and invisible formatting characters that can disguise a name in a UI
// (bidi overrides such as U+202E turn "gpj.exe" into "exe.jpg" on screen, zero-width characters, BOM).
const UNSAFE_CHARS = /[\p{Cc}\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFB]/gu;

/**
 * Makes a client-supplied filename safe to keep as metadata and to show: only the last path segment
 * (either slash), no control or invisible formatting characters, NFC-normalized, trimmed of spaces and
 * dots at the ends (Windows drops them anyway), at most MAX_FILENAME_BYTES of UTF-8 with the extension
 * kept. Unicode letters stay. Never used to build a storage path: blobs get server-generated names.
 */
export function sanitizeFilename(raw: string | undefined | null, fallback = 'file'): string {
  let name = (raw ?? '').normalize('NFC');
  name = name.split(/[/\\]/).pop() ?? '';
  name = name.replace(UNSAFE_CHARS, '');
  name = name.replace(/\s+/gu, ' ');
  name = name.replace(/^[\s.]+|[\s.]+$/gu, '');
  if (name === '') return fallback;
  return truncateUtf8KeepingExtension(name, MAX_FILENAME_BYTES);
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Cuts whole code points (never half a surrogate pair) until the UTF-8 form fits. */
function cutToBytes(s: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = utf8Length(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

function truncateUtf8KeepingExtension(name: string, maxBytes: number): string {
  if (utf8Length(name) <= maxBytes) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot) : '';
  // A sensible extension (".pdf", ".tar.gz" keeps ".gz") survives; an absurdly long one is cut with the rest.
  if (ext && utf8Length(ext) <= 16) {
    const stem = cutToBytes(name.slice(0, dot), maxBytes - utf8Length(ext)).replace(/[\s.]+$/u, '');
    return `${stem || 'file'}${ext}`;
  }
  return cutToBytes(name, maxBytes).replace(/[\s.]+$/u, '') || 'file';
}
