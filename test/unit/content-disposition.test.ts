import { describe, expect, it } from 'vitest';
import {
  asciiFallbackFilename,
  attachmentContentDisposition,
  encodeRfc5987,
} from '../../src/lib/content-disposition.js';

describe('Content-Disposition', () => {
  it('encodes UTF-8 as RFC 5987 and round-trips through decodeURIComponent', () => {
    const name = "Résumé (final) 'v2' *報告*.pdf";
    const encoded = encodeRfc5987(name);
    expect(encoded).toMatch(/^[A-Za-z0-9!#$&+\-.^_`|~%]+$/);
    expect(encoded).not.toMatch(/[()'*]/);
    expect(decodeURIComponent(encoded)).toBe(name);
  });

  it('builds attachment with an ASCII fallback and filename*', () => {
    expect(attachmentContentDisposition('Résumé.pdf')).toBe(
      `attachment; filename="Resume.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf`,
    );
  });

  it('the ASCII fallback cannot break out of its quotes', () => {
    expect(asciiFallbackFilename('a"b\\c%d.txt')).toBe('a_b_c_d.txt');
    expect(asciiFallbackFilename('報告')).toBe('__');
    const header = attachmentContentDisposition('x"; filename="evil.html');
    expect(header.startsWith('attachment; filename="x_; filename=_evil.html"; filename*=')).toBe(true);
  });
});
