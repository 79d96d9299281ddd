import http from 'node:http';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { expectProblem } from '../helpers/http.js';

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = await createTestApp();
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as net.AddressInfo).port;
});
afterAll(() => app.close());

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes on a fresh socket and parses the one answer (the server closes after it). */
function raw(bytes: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
  });
}

function expectRawProblem(res: RawResponse, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json');
  expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.connection).toBe('close');
  const body = JSON.parse(res.body);
  expect(body).toMatchObject({ status, code, type: `/problems/${code.toLowerCase().replace(/_/g, '-')}` });
  expect(body.traceId).toBe(res.headers['x-request-id']);
}

function get(agent: http.Agent, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
    },
  );
}

describe('errors raised below the routes are problem+json with a request id', () => {
  it('bad percent-encoding in the path → 400', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets/%zz',
      headers: { 'x-request-id': 'bad-url-1' },
    });
    const body = expectProblem(res, 400, 'MALFORMED_REQUEST');
    expect(res.headers['x-request-id']).toBe('bad-url-1');
    expect(body.detail).toMatch(/percent-encoding/);
  });

  it('headers over 16 KiB → 431 with Connection: close', async () => {
    const res = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expectRawProblem(res, 431, 'HEADERS_TOO_LARGE');
  });

  it('malformed framing (Content-Length and Transfer-Encoding together) → 400', async () => {
    const res = await raw(
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expectRawProblem(res, 400, 'MALFORMED_REQUEST');
  });

  it('a request line that is not HTTP → 400', async () => {
    expectRawProblem(await raw('HELLO WORLD\r\n\r\n'), 400, 'MALFORMED_REQUEST');
  });

  it('after a 431 the next request of a keep-alive client succeeds (no ECONNRESET), every time', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      let resets = 0;
      for (let i = 0; i < 20; i++) {
        const big = await get(agent, { 'x-big': 'a'.repeat(20_000) }).catch(() => null);
        expect(big?.status).toBe(431);
        expect(big?.headers.connection).toBe('close');
        const next = await get(agent).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ECONNRESET') resets++;
          return null;
        });
        expect(next?.status).toBe(200);
      }
      expect(resets).toBe(0);
    } finally {
      agent.destroy();
    }
  });
});
