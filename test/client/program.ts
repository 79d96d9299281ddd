/**
 * A small program written against the generated typed client, as a user of the API would write it.
 * `npm run test:client` regenerates client/generated/schema.d.ts from the live spec, type-checks this file
 * (so a renamed field, path, enum value or body property fails the build) and runs it against a server.
 */
import { createHelpdeskClient, type HelpdeskClient, type Schemas } from '../../client/index.js';

type Ticket = Schemas['Ticket'];
/** The contract's statuses: if the spec's enum changes, these assignments stop compiling. */
type Status = 'new' | 'open' | 'pending' | 'on_hold' | 'solved' | 'closed' | 'cancelled';
const statusOf = (t: Ticket): Status => t.status;
const transitionsOf = (t: Ticket): Status[] => t.allowedTransitions;

export interface FlowResult {
  user: { id: string; role: string };
  created: Ticket;
  listedIds: number[];
  nextCursor: string | null;
  fetched: Ticket;
  commentVisibility: 'public' | 'internal';
  notFoundCode: string;
}

/** Login, create a ticket, list, read it back, comment, and one typed error. */
export async function mainFlow(
  baseUrl: string,
  credentials: { email: string; password: string },
): Promise<FlowResult> {
  const api: HelpdeskClient = createHelpdeskClient({ baseUrl });

  const login = await api.POST('/api/v1/auth/login', { body: credentials });
  if (login.error) throw new Error(`login failed: ${login.error.code} ${login.error.detail ?? ''}`);
  const session = login.data;
  const tokenType: 'Bearer' = session.tokenType;
  if (tokenType !== 'Bearer') throw new Error('unexpected token type');
  api.setToken(session.accessToken);

  const created = await api.POST('/api/v1/tickets', {
    body: {
      title: 'Laptop will not boot',
      description: 'Black screen after the update.',
      priority: 'urgent',
    },
    params: { header: { 'idempotency-key': `client-${Date.now()}` } },
  });
  if (created.error) throw new Error(`create failed: ${created.error.code}`);
  const ticket = created.data;

  const list = await api.GET('/api/v1/tickets', {
    params: { query: { status: ['new'], sort: '-createdAt', limit: 5 } },
  });
  if (list.error) throw new Error(`list failed: ${list.error.code}`);

  const read = await api.GET('/api/v1/tickets/{id}', { params: { path: { id: ticket.id } } });
  if (read.error) throw new Error(`read failed: ${read.error.code}`);

  const comment = await api.POST('/api/v1/tickets/{id}/comments', {
    params: { path: { id: ticket.id } },
    body: { body: 'Tried safe mode, same result.' },
  });
  if (comment.error) throw new Error(`comment failed: ${comment.error.code}`);

  const missing = await api.GET('/api/v1/tickets/{id}', { params: { path: { id: 999_999_999 } } });
  if (!missing.error) throw new Error('expected a 404 problem');

  // Typed reads of nested fields: requester, assignee (nullable), transitions, version.
  const requesterEmail: string = read.data.requester.email;
  const assigneeName: string | null = read.data.assignee?.name ?? null;
  void [requesterEmail, assigneeName, statusOf(read.data), transitionsOf(read.data), read.data.version];

  return {
    user: { id: session.user.id, role: session.user.role },
    created: ticket,
    listedIds: list.data.data.map((t) => t.id),
    nextCursor: list.data.nextCursor,
    fetched: read.data,
    commentVisibility: comment.data.visibility,
    notFoundCode: missing.error.code,
  };
}
