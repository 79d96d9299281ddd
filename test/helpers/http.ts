import { expect } from 'vitest';

interface InjectedResponse {
  statusCode: number;
  headers: Record<string, unknown>;
  json(): unknown;
}

/**
 * Asserts an RFC 9457 problem with our code and the request's trace id, and returns its body:
 * status line and body agree, content type is problem+json, traceId echoes X-Request-Id.
 */
export function expectProblem(res: InjectedResponse, status: number, code: string): Record<string, unknown> {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({
    status,
    code,
    type: expect.stringMatching(/^\/problems\//),
    title: expect.any(String),
  });
  expect(body.traceId).toBe(res.headers['x-request-id']);
  return body;
}
