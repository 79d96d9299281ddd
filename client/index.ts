/**
 * Typed client for the Helpdesk API: openapi-fetch over the types that openapi-typescript generates
 * from the server's OpenAPI document (`npm run client:generate` writes client/generated/schema.d.ts).
 *
 *   const api = createHelpdeskClient({ baseUrl: 'http://127.0.0.1:3000' });
 *   const { data, error } = await api.POST('/api/v1/auth/login', { body: { email, password } });
 *   api.setToken(data.accessToken);
 *   const { data: page } = await api.GET('/api/v1/tickets', { params: { query: { limit: 10 } } });
 *
 * Every call answers `{ data }` on 2xx or `{ error }` (a typed problem+json body) otherwise; it never throws
 * for an HTTP status, only for a network failure.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './generated/schema.js';

export type { components, paths };
export type Schemas = components['schemas'];
export type Problem = components['schemas']['Problem'];

export interface HelpdeskClient extends Client<paths> {
  /** Sends `Authorization: Bearer <token>` on every following request (null to stop). */
  setToken(token: string | null): void;
}

export function createHelpdeskClient(options: ClientOptions & { token?: string }): HelpdeskClient {
  const { token: initial, ...rest } = options;
  let token = initial ?? null;
  const client = createClient<paths>(rest);
  client.use({
    onRequest({ request }) {
      if (token && !request.headers.has('authorization'))
        request.headers.set('authorization', `Bearer ${token}`);
      return request;
    },
  });
  return Object.assign(client, {
    setToken(next: string | null) {
      token = next;
    },
  });
}
