/** A UUID in its canonical text form (any version), as PostgreSQL prints it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A timestamptz as PostgreSQL's microsecond text in UTC (keyset cursors of tables ordered by it). */
export const PG_TIMESTAMP_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
