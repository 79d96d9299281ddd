/**
 * Completeness checks on the exported OpenAPI document that Redocly's rules do not express:
 * every operation documents the problem responses it can return, bodies carry examples,
 * the bearer security scheme is declared. Run by `npm run lint:openapi` after `redocly lint`.
 *
 * Usage: node --import tsx scripts/check-openapi.ts [artifacts/openapi/openapi.json]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS } from './lib/harness.js';

// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON walked structurally.
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** The bodies clients build and read most: their examples are required, not just recommended. */
const MAIN_RESPONSES: Record<string, string> = {
  login: '200',
  createTicket: '201',
  getTicket: '200',
  listTickets: '200',
  createComment: '201',
};

export function checkOpenApi(doc: Json): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const resolve = (node: Json): Json => {
    let n = node;
    for (let i = 0; i < 10 && n?.$ref; i++) {
      const parts = String(n.$ref).replace(/^#\//, '').split('/');
      n = parts.reduce((acc: Json, key) => acc?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    }
    return n;
  };
  const hasExample = (media: Json): boolean => {
    if (!media) return false;
    if (media.example !== undefined || (media.examples && Object.keys(media.examples).length)) return true;
    const schema = resolve(media.schema);
    return schema?.example !== undefined || (Array.isArray(schema?.examples) && schema.examples.length > 0);
  };

  if (doc.components?.securitySchemes?.bearerAuth?.scheme !== 'bearer')
    errors.push('components.securitySchemes.bearerAuth (http bearer) is missing');
  const globalSecurity = doc.security ?? [];
  const operationIds = new Set<string>();

  for (const [url, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const where = `${method.toUpperCase()} ${url}`;
      const fail = (msg: string) => errors.push(`${where}: ${msg}`);
      for (const field of ['operationId', 'summary', 'description'] as const)
        if (!op[field] || !String(op[field]).trim()) fail(`missing ${field}`);
      if (!Array.isArray(op.tags) || op.tags.length === 0) fail('missing tags');
      if (op.operationId) operationIds.add(op.operationId);

      const responses: Record<string, Json> = op.responses ?? {};
      const statuses = Object.keys(responses);
      if (!statuses.some((s) => s.startsWith('2'))) fail('no 2xx response');
      const secured = (op.security ?? globalSecurity).length > 0;
      const params: Json[] = (op.parameters ?? []).map(resolve);
      const hasBody = Boolean(op.requestBody);
      const needs = (status: string, why: string) => {
        if (!responses[status]) fail(`does not document ${status} (${why})`);
      };
      if (secured) needs('401', 'it requires a bearer token');
      if (hasBody) needs('400', 'it takes a JSON body');
      if (hasBody || params.some((p) => p.in === 'query' || p.in === 'path'))
        needs('422', 'it validates input');
      if (params.some((p) => p.in === 'path')) needs('404', 'it addresses a resource by id');
      needs('400', 'any request can have a malformed URL or framing');
      needs('422', 'every route refuses unknown query parameters');
      needs('431', 'any request can have headers over 16 KiB');
      if (hasBody) needs('413', 'any body can be too large');
      if (method === 'patch' && hasBody) {
        const schema = resolve(resolve(op.requestBody).content?.['application/json']?.schema);
        if (schema && schema.minProperties !== 1)
          fail('PATCH body refuses {} but does not say minProperties: 1');
      }
      for (const p of params) {
        if (p.in !== 'query' || !['status', 'priority', 'type'].includes(p.name)) continue;
        const items = resolve(p.schema)?.items;
        if (!Array.isArray(resolve(items)?.enum)) fail(`query ${p.name} is not documented as an enum`);
      }
      if (url.startsWith('/api/')) {
        needs('429', 'API routes are rate limited');
        needs('503', 'API routes answer 503 when the database is unavailable');
      }

      for (const [status, res] of Object.entries<Json>(responses)) {
        const r = resolve(res);
        if (!r.description || r.description === 'Default Response')
          warnings.push(`${where} ${status}: response has no description of its own`);
        if (Number(status) >= 400) {
          const media = r.content?.['application/problem+json'];
          if (!media) fail(`${status} is not documented as application/problem+json`);
          else if (resolve(media.schema)?.properties?.code === undefined)
            fail(`${status} schema is not the Problem schema`);
        }
      }

      if (hasBody) {
        const body = resolve(op.requestBody);
        const media = body.content?.['application/json'];
        if (media && !hasExample(media)) fail('request body has no example');
      }
      const main = MAIN_RESPONSES[op.operationId];
      if (main) {
        const media = resolve(responses[main])?.content?.['application/json'];
        if (!hasExample(media)) fail(`${main} response body has no example`);
      }
    }
  }
  // Tuples as prefixItems are misread by Prism and Postman (every element flagged); use a two-item array.
  const walk = (node: Json, where: string) => {
    if (Array.isArray(node)) {
      for (const [i, n] of node.entries()) walk(n, `${where}/${i}`);
    } else if (node && typeof node === 'object')
      for (const [k, v] of Object.entries<Json>(node)) {
        if (k === 'prefixItems') errors.push(`${where}: prefixItems (use items with minItems/maxItems)`);
        // Login takes any string on purpose (a malformed email is just a failed login).
        const loose = where.includes('/auth/login/');
        if (k === 'email' && !loose && v?.type === 'string' && v.format !== 'email')
          errors.push(`${where}/email: string without format: email`);
        walk(v, `${where}/${k}`);
      }
  };
  walk(doc, '#');
  for (const id of Object.keys(MAIN_RESPONSES))
    if (!operationIds.has(id)) warnings.push(`operation ${id} is not in the document (yet)`);
  return { errors, warnings };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = path.resolve(process.argv[2] ?? path.join(ARTIFACTS, 'openapi', 'openapi.json'));
  const { errors, warnings } = checkOpenApi(JSON.parse(readFileSync(file, 'utf8')));
  for (const w of warnings) console.warn(`warning: ${w}`);
  for (const e of errors) console.error(`error: ${e}`);
  console.log(`check-openapi: ${errors.length} errors, ${warnings.length} warnings`);
  process.exit(errors.length ? 1 : 0);
}
