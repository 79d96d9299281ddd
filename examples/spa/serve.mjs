#!/usr/bin/env node
/**
 * Tiny static server for the example SPA, on its own origin (not the API's): no dependencies.
 *
 *   node examples/spa/serve.mjs --port 5173 --api http://127.0.0.1:3000
 *   (or SPA_PORT / SPA_HOST / API_URL in the environment)
 *
 * The API must allow this origin: start it with CORS_ORIGINS=http://127.0.0.1:5173.
 * /config.js tells the page where the API is; a Content-Security-Policy limits it to that API.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const FILES = new Set(['/index.html', '/app.js', '/style.css']);

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

export function createSpaServer({ apiBase }) {
  const api = new URL(apiBase).origin;
  return http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://spa.local');
    const headers = {
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': `default-src 'self'; connect-src ${api}; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'`,
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, headers).end();
      return;
    }
    if (url.pathname === '/config.js') {
      res.writeHead(200, { ...headers, 'content-type': TYPES['.js'], 'cache-control': 'no-store' });
      res.end(`window.HELPDESK_CONFIG = ${JSON.stringify({ apiBase: api })};\n`);
      return;
    }
    // Paths the emails link to are pages of the app: /reset-password?token=… and /tickets/42.
    const appPage =
      url.pathname === '/' || url.pathname === '/reset-password' || /^\/tickets\/\d+$/.test(url.pathname);
    const file = appPage ? '/index.html' : url.pathname;
    if (!FILES.has(file)) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const body = await readFile(path.join(ROOT, file));
    res.writeHead(200, {
      ...headers,
      'content-type': TYPES[path.extname(file)],
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(arg('port', process.env.SPA_PORT ?? '5173'));
  const host = arg('host', process.env.SPA_HOST ?? '127.0.0.1');
  const apiBase = arg('api', process.env.API_URL ?? 'http://127.0.0.1:3000');
  createSpaServer({ apiBase }).listen(port, host, () => {
    console.log(
      `Helpdesk SPA on http://${host}:${port} (API ${apiBase}; allow this origin with CORS_ORIGINS)`,
    );
  });
}
