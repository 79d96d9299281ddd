import { randomUUID } from 'node:crypto';
import { COMMENT_BODY_PREFIX, createdTicketBodies, type Sample } from './database.js';
import type { Scenario } from './load.js';

export interface Tokens {
  agent: string;
  requester: string;
}

export interface Credentials {
  email: string;
  password: string;
}

/**
 * Search terms. RARE matches a handful of tickets at any size; COMMON matches a large share of them
 * (see bench/seed.ts for the vocabulary the seed draws from).
 */
export const SEARCH_TERMS = { rare: 'zeppelin', common: 'printer' };

const API = '/api/v1';

function rotate<T>(items: T[]): () => T {
  if (items.length === 0) throw new Error('no sample rows to rotate through');
  let i = 0;
  return () => items[i++ % items.length]!;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const fixed = (p: string) => () => p;

/** The floor's one route (bench/floor.ts). */
export const floorScenario: Scenario = {
  name: 'floor: list SQL, bare Fastify+pg',
  kind: 'floor',
  method: 'GET',
  path: fixed('/tickets'),
  expectStatus: 200,
};

/** The floor's hello route (bench/floor.ts): what /healthz is compared with. */
export const floorHelloScenario: Scenario = {
  name: 'floor: hello, bare Fastify',
  kind: 'floor',
  method: 'GET',
  path: fixed('/hello'),
  expectStatus: 200,
};

/** The liveness probe: no database, no authentication; the API's fixed per-request cost (hooks, headers). */
export const healthzScenario: Scenario = {
  name: 'healthz (liveness)',
  kind: 'health',
  method: 'GET',
  path: fixed('/healthz'),
  expectStatus: 200,
};

/** List and search: the scenarios --scale repeats at every size. */
export function readScenarios(tokens: Tokens): Scenario[] {
  return [
    {
      name: 'list as agent (-updatedAt)',
      kind: 'list',
      method: 'GET',
      path: fixed(`${API}/tickets`),
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
    {
      name: 'list as requester',
      kind: 'list',
      method: 'GET',
      path: fixed(`${API}/tickets`),
      headers: bearer(tokens.requester),
      expectStatus: 200,
    },
    {
      name: 'list status=open',
      kind: 'list',
      method: 'GET',
      path: fixed(`${API}/tickets?status=open`),
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
    {
      name: `search rare term (q=${SEARCH_TERMS.rare})`,
      kind: 'search',
      method: 'GET',
      path: fixed(`${API}/tickets?q=${encodeURIComponent(SEARCH_TERMS.rare)}`),
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
    {
      name: `search common term (q=${SEARCH_TERMS.common})`,
      kind: 'search',
      method: 'GET',
      path: fixed(`${API}/tickets?q=${encodeURIComponent(SEARCH_TERMS.common)}`),
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
    {
      // Ranking must score every match: its cost grows with how common the word is.
      name: `search common term, sort=relevance`,
      kind: 'search',
      method: 'GET',
      path: fixed(`${API}/tickets?q=${encodeURIComponent(SEARCH_TERMS.common)}&sort=relevance`),
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
  ];
}

/** Every endpoint of the table, in the order they run (writes after reads, login last). */
export function allScenarios(tokens: Tokens, sample: Sample, login: Credentials): Scenario[] {
  const [listAgent, listRequester, listStatus, searchRare, searchCommon, searchCommonRanked] =
    readScenarios(tokens);
  const nextId = rotate(sample.ticketIds);
  const nextCommentable = rotate(sample.commentableIds);
  return [
    listAgent!,
    listRequester!,
    listStatus!,
    {
      name: 'get by id (random)',
      kind: 'get',
      method: 'GET',
      path: () => `${API}/tickets/${nextId()}`,
      headers: bearer(tokens.agent),
      expectStatus: 200,
    },
    healthzScenario,
    searchRare!,
    searchCommon!,
    searchCommonRanked!,
    {
      name: 'create ticket (requester)',
      kind: 'write',
      method: 'POST',
      path: fixed(`${API}/tickets`),
      headers: bearer(tokens.requester),
      body: createdTicketBodies(),
      expectStatus: 201,
    },
    {
      name: 'add public comment (agent)',
      kind: 'write',
      method: 'POST',
      path: () => `${API}/tickets/${nextCommentable()}/comments`,
      headers: bearer(tokens.agent),
      body: () =>
        JSON.stringify({
          body: `${COMMENT_BODY_PREFIX} ${randomUUID()}: thanks, we are looking into it.`,
          visibility: 'public',
        }),
      expectStatus: 201,
    },
    {
      name: 'login (argon2id verify)',
      kind: 'auth',
      method: 'POST',
      path: fixed(`${API}/auth/login`),
      body: () => JSON.stringify(login),
      expectStatus: 200,
    },
  ];
}
