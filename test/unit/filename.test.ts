import { describe, expect, it } from 'vitest';
import { MAX_FILENAME_BYTES, sanitizeFilename } from '../../src/lib/filename.js';

describe('sanitizeFilename', () => {
  it('keeps only the last path segment, for either slash', () => {
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('..\\..\\Windows\\system.ini')).toBe('system.ini');
    expect(sanitizeFilename('/abs/path/report.pdf')).toBe('report.pdf');
  });

  it('never returns a dot name or an empty name', () => {
    expect(sanitizeFilename('..')).toBe('file');
    expect(sanitizeFilename('a/..')).toBe('file');
    expect(sanitizeFilename('')).toBe('file');
    expect(sanitizeFilename(undefined)).toBe('file');
    expect(sanitizeFilename('   ')).toBe('file');
  });

  it('removes control characters and invisible bidi/zero-width characters', () => {
    expect(sanitizeFilename('inv\u0000oice\r\n.pdf')).toBe('invoice.pdf');
    expect(sanitizeFilename('photo\u202Egpj.exe')).toBe('photogpj.exe');
    expect(sanitizeFilename('a\u200Bb\u0007c.txt')).toBe('abc.txt');
  });

  it('keeps Unicode letters, normalized to NFC', () => {
    expect(sanitizeFilename('Résumé – Überblick 報告.pdf')).toBe('Résumé – Überblick 報告.pdf');
    expect(sanitizeFilename('e\u0301.txt')).toBe('\u00e9.txt');
  });

  it('trims spaces and dots at the ends and collapses whitespace', () => {
    expect(sanitizeFilename('  my  file \u00a0name.txt. ')).toBe('my file name.txt');
    expect(sanitizeFilename('.hidden')).toBe('hidden');
  });

  it('limits the UTF-8 length and keeps the extension', () => {
    const long = `${'ä'.repeat(300)}.pdf`;
    const out = sanitizeFilename(long);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(MAX_FILENAME_BYTES);
    expect(out.endsWith('.pdf')).toBe(true);
    expect(out.startsWith('ää')).toBe(true);
  });

  it('never splits a surrogate pair when truncating', () => {
    const out = sanitizeFilename('😀'.repeat(100));
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(MAX_FILENAME_BYTES);
    expect(out).toBe('😀'.repeat(63));
  });
});
