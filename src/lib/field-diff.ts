/** `[before, after]` of every field a write changed: the shape of an audit event's `changes`. */
export type FieldChanges = Record<string, [unknown, unknown]>;

/** Equality of column values: dates by instant, arrays element by element, anything else by identity. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b;
}

/** The entries of `next` whose value differs from the same field of `before`, as `[before, after]` pairs. */
export function fieldChanges(before: object, next: object): FieldChanges {
  const changes: FieldChanges = {};
  for (const [field, value] of Object.entries(next)) {
    if (value === undefined) continue;
    const old = (before as Record<string, unknown>)[field];
    if (!sameValue(old, value)) changes[field] = [old, value];
  }
  return changes;
}
