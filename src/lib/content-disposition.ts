// RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
const NOT_ATTR_CHAR = /[^A-Za-z0-9!#$&+\-.^_`|~]/g;

/** Percent-encodes UTF-8 so that only RFC 5987 attr-chars remain (encodeURIComponent leaves ' ( ) * alone). */
export function encodeRfc5987(value: string): string {
  return Buffer.from(value, 'utf8')
    .toString('binary')
    .replace(NOT_ATTR_CHAR, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** An ASCII stand-in for old clients: printable ASCII only, no quote or backslash. */
export function asciiFallbackFilename(filename: string): string {
  const ascii = filename
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // drop combining marks: "é" → "e"
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/["\\%]/g, '_');
  return ascii.trim() === '' ? 'file' : ascii;
}

/**
 * `Content-Disposition: attachment` for a download: a quoted ASCII `filename` for old clients and the
 * exact name as RFC 5987/6266 `filename*=UTF-8''…`, which every current browser prefers.
 */
export function attachmentContentDisposition(filename: string): string {
  return `attachment; filename="${asciiFallbackFilename(filename)}"; filename*=UTF-8''${encodeRfc5987(filename)}`;
}
