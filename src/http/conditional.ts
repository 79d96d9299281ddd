import type { ExpectedVersion } from '../modules/tickets/ticket-gate.js';

/**
 * Conditional requests on versioned resources: the ETag of a version is `"<version>"`, and an
 * If-Match header becomes the version(s) a service should expect. HTTP grammar stays here; services
 * compare numbers.
 */

/** The ETag of a resource version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * The versions an If-Match header names: `*` (any), or the list of `"3"`, `W/"3"` or bare `3` tokens
 * (a token that names no version matches nothing). Absent header → undefined (no condition).
 */
export function expectedVersionOf(header: string | undefined): ExpectedVersion | undefined {
  if (header === undefined) return undefined;
  const tokens = header.split(',').map((t) =>
    t
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1'),
  );
  if (tokens.includes('*')) return '*';
  const versions = tokens.filter((t) => /^\d{1,15}$/.test(t)).map(Number);
  return versions.length === 1 ? versions[0]! : versions;
}
