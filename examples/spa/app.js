// Helpdesk example SPA: plain ES module, no framework, no build step.
// Talks to the API cross-origin with a bearer token; every error shown is the API's problem+json `detail`.

const API = `${window.HELPDESK_CONFIG?.apiBase ?? 'http://127.0.0.1:3000'}/api/v1`;
const STATUSES = ['new', 'open', 'pending', 'on_hold', 'solved', 'closed', 'cancelled'];
const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
const TYPES = ['question', 'incident', 'problem', 'task'];
const PAGE_SIZE = 10;
const LABELS = { on_hold: 'on hold' };
const SORTS = {
  '-updatedAt': 'Recently updated',
  updatedAt: 'Least recently updated',
  '-createdAt': 'Newest',
  createdAt: 'Oldest',
  '-priority': 'Most urgent',
  priority: 'Least urgent',
};

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const flashBox = document.getElementById('flash');

// ---- session (sessionStorage: gone when the tab closes) ----
const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem('helpdesk.session') ?? 'null');
    } catch {
      return null;
    }
  },
  set(value) {
    if (value) sessionStorage.setItem('helpdesk.session', JSON.stringify(value));
    else sessionStorage.removeItem('helpdesk.session');
  },
};

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function refreshTokens() {
  const s = session.get();
  if (!s?.refreshToken) return false;
  const res = await fetch(`${API}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: s.refreshToken }),
  });
  if (!res.ok) return false;
  const pair = await res.json();
  session.set({
    ...s,
    accessToken: pair.accessToken,
    refreshToken: pair.refreshToken,
    user: pair.user ?? s.user,
  });
  return true;
}

/** fetch wrapper: JSON in/out, bearer token, one refresh on an expired token, problem+json → ApiError. */
async function api(path, { method = 'GET', body, headers = {}, retry = true } = {}) {
  const s = session.get();
  const res = await fetch(`${API}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(s?.accessToken ? { authorization: `Bearer ${s.accessToken}` } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401 && retry && s?.refreshToken && (await refreshTokens())) {
    return api(path, { method, body, headers, retry: false });
  }
  if (res.status === 401 && s) {
    session.set(null);
    location.hash = '#/login';
  }
  const type = res.headers.get('content-type') ?? '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : null);
  return { data, headers: res.headers, status: res.status };
}

// ---- tiny DOM helpers (textContent only: user data never becomes HTML) ----
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
const options = (values, selected, blank) => [
  ...(blank ? [h('option', { value: '' }, blank)] : []),
  ...values.map((v) => h('option', { value: v, selected: v === selected }, LABELS[v] ?? v)),
];
const fmt = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function flash(message, ok = false) {
  flashBox.textContent = message ?? '';
  flashBox.className = ok ? 'ok' : '';
  flashBox.hidden = !message;
}
function show(...nodes) {
  view.replaceChildren(...nodes);
}
function handle(err) {
  flash(err instanceof ApiError ? `${err.message} (${err.problem?.code ?? err.status})` : String(err));
}
const isStaff = () => ['agent', 'admin'].includes(session.get()?.user?.role);

// ---- views ----
function loginView() {
  nav.hidden = true;
  const form = h(
    'form',
    { class: 'card login', testid: 'login-form' },
    h('h1', {}, 'Sign in'),
    h(
      'label',
      {},
      'Email',
      h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' }),
    ),
    h(
      'label',
      {},
      'Password',
      h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
    ),
    h('button', { type: 'submit', testid: 'login-submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    try {
      const { data } = await api('/auth/login', {
        method: 'POST',
        body: { email: fd.get('email'), password: fd.get('password') },
        retry: false,
      });
      session.set({ accessToken: data.accessToken, refreshToken: data.refreshToken, user: data.user });
      flash('');
      location.hash = '#/tickets';
    } catch (err) {
      handle(err);
    }
  });
  show(form);
}

// Cursor stack for "Previous": the API pages forward only (opaque cursors).
let pageStack = [];
let lastFilterKey = '';

async function listView(params) {
  const filters = {
    status: params.get('status') ?? '',
    priority: params.get('priority') ?? '',
    assigneeId: params.get('assigneeId') ?? '',
    q: params.get('q') ?? '',
    sort: params.get('sort') ?? '-updatedAt',
  };
  const cursor = params.get('cursor') ?? '';
  const filterKey = JSON.stringify(filters);
  if (filterKey !== lastFilterKey) pageStack = [];
  lastFilterKey = filterKey;

  const query = new URLSearchParams({ limit: String(PAGE_SIZE), sort: filters.sort });
  for (const k of ['status', 'priority', 'assigneeId', 'q']) if (filters[k]) query.set(k, filters[k]);
  if (cursor) query.set('cursor', cursor);

  const form = h(
    'form',
    { class: 'card filters', testid: 'filters' },
    h('label', {}, 'Status', h('select', { name: 'status' }, options(STATUSES, filters.status, 'any'))),
    h(
      'label',
      {},
      'Priority',
      h('select', { name: 'priority' }, options(PRIORITIES, filters.priority, 'any')),
    ),
    h(
      'label',
      {},
      'Assignee',
      h(
        'select',
        { name: 'assigneeId', disabled: !isStaff() },
        h('option', { value: '' }, 'anyone'),
        h('option', { value: 'me', selected: filters.assigneeId === 'me' }, 'me'),
        h('option', { value: 'none', selected: filters.assigneeId === 'none' }, 'unassigned'),
      ),
    ),
    h('label', {}, 'Search', h('input', { name: 'q', value: filters.q, placeholder: 'words…' })),
    h(
      'label',
      {},
      'Sort',
      h(
        'select',
        { name: 'sort' },
        Object.entries(SORTS).map(([value, label]) =>
          h('option', { value, selected: value === filters.sort }, label),
        ),
      ),
    ),
    h('button', { type: 'submit', testid: 'apply-filters' }, 'Apply'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, String(v));
    location.hash = `#/tickets?${next}`;
  });

  show(h('h1', {}, 'Tickets'), form, h('p', { class: 'empty' }, 'Loading…'));
  try {
    const { data } = await api(`/tickets?${query}`);
    const rows = data.data.map((t) =>
      h(
        'tr',
        { testid: `ticket-row-${t.id}` },
        h('td', {}, h('a', { href: `#/tickets/${t.id}` }, `#${t.id}`)),
        h('td', {}, h('a', { href: `#/tickets/${t.id}`, testid: 'ticket-title' }, t.title)),
        h(
          'td',
          {},
          h(
            'span',
            { class: `badge status-${t.status}`, testid: 'ticket-status' },
            LABELS[t.status] ?? t.status,
          ),
        ),
        h('td', { class: `prio-${t.priority}` }, t.priority),
        h('td', {}, t.requester?.name ?? ''),
        h('td', {}, t.assignee?.name ?? '—'),
        h('td', {}, fmt(t.updatedAt)),
      ),
    );
    const table = rows.length
      ? h(
          'table',
          { testid: 'ticket-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['#', 'Title', 'Status', 'Priority', 'Requester', 'Assignee', 'Updated'].map((c) =>
                h('th', {}, c),
              ),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'empty', testid: 'no-tickets' }, 'No tickets match.');
    const go = (c) => {
      const next = new URLSearchParams(params);
      if (c) next.set('cursor', c);
      else next.delete('cursor');
      location.hash = `#/tickets?${next}`;
    };
    const pager = h(
      'div',
      { class: 'pager' },
      h('span', { testid: 'page-number' }, `Page ${pageStack.length + 1}`),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          testid: 'prev-page',
          disabled: pageStack.length === 0,
          onclick: () => go(pageStack.pop() ?? ''),
        },
        '← Previous',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          testid: 'next-page',
          disabled: !data.nextCursor,
          onclick: () => {
            pageStack.push(cursor);
            go(data.nextCursor);
          },
        },
        'Next →',
      ),
    );
    show(h('h1', {}, 'Tickets'), form, h('div', { class: 'card' }, table, pager));
  } catch (err) {
    handle(err);
  }
}

async function ticketView(id) {
  show(h('p', { class: 'empty' }, 'Loading…'));
  try {
    const [{ data: t }, { data: comments }] = await Promise.all([
      api(`/tickets/${id}`),
      api(`/tickets/${id}/comments?limit=100`),
    ]);
    const setStatus = async (status) => {
      try {
        // If-Match: the change applies only to the version we are looking at (412 otherwise).
        await api(`/tickets/${id}`, {
          method: 'PATCH',
          body: { status },
          headers: { 'if-match': `"${t.version}"` },
        });
        flash(`Ticket #${id} is now ${LABELS[status] ?? status}.`, true);
        await ticketView(id);
      } catch (err) {
        handle(err);
      }
    };
    const take = isStaff() && !t.assignee && !['closed', 'cancelled'].includes(t.status);
    const actions = h(
      'div',
      { class: 'transitions', testid: 'transitions' },
      t.allowedTransitions.length
        ? t.allowedTransitions.map((s) =>
            h(
              'button',
              { type: 'button', testid: `status-${s}`, onclick: () => setStatus(s) },
              `Mark ${LABELS[s] ?? s}`,
            ),
          )
        : h('span', { class: 'empty' }, 'No status change available to you.'),
      take
        ? h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              testid: 'take-ticket',
              onclick: async () => {
                try {
                  await api(`/tickets/${id}`, {
                    method: 'PATCH',
                    body: { assigneeId: session.get().user.id },
                    headers: { 'if-match': `"${t.version}"` },
                  });
                  flash(`You took ticket #${id}.`, true);
                  await ticketView(id);
                } catch (err) {
                  handle(err);
                }
              },
            },
            'Take it',
          )
        : null,
    );
    const commentForm = h(
      'form',
      { testid: 'comment-form' },
      h('label', {}, 'Reply', h('textarea', { name: 'body', required: true, maxlength: 20000 })),
      isStaff()
        ? h(
            'label',
            {},
            'Visibility',
            h('select', { name: 'visibility' }, options(['public', 'internal'], 'public')),
          )
        : null,
      h('button', { type: 'submit', testid: 'comment-submit' }, 'Add comment'),
    );
    commentForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const fd = new FormData(commentForm);
      try {
        await api(`/tickets/${id}/comments`, {
          method: 'POST',
          body: {
            body: fd.get('body'),
            ...(fd.get('visibility') ? { visibility: fd.get('visibility') } : {}),
          },
          headers: { 'idempotency-key': crypto.randomUUID() },
        });
        flash('Comment added.', true);
        await ticketView(id);
      } catch (err) {
        handle(err);
      }
    });
    show(
      h(
        'div',
        { class: 'card', testid: 'ticket-view' },
        h('h1', { testid: 'ticket-heading' }, `#${t.id} ${t.title}`),
        h(
          'div',
          { class: 'meta' },
          h(
            'span',
            {},
            'Status ',
            h(
              'span',
              { class: `badge status-${t.status}`, testid: 'ticket-status' },
              LABELS[t.status] ?? t.status,
            ),
          ),
          h('span', {}, `Priority ${t.priority}`),
          h('span', {}, `Type ${t.type}`),
          h('span', {}, `Requester ${t.requester.name}`),
          h('span', { testid: 'ticket-assignee' }, `Assignee ${t.assignee?.name ?? '—'}`),
          h('span', {}, `Updated ${fmt(t.updatedAt)}`),
          t.tags.length ? h('span', {}, `Tags ${t.tags.join(', ')}`) : null,
        ),
        h('p', { class: 'description' }, t.description),
        actions,
      ),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, `Comments (${comments.data.length})`),
        h(
          'div',
          { testid: 'comments' },
          comments.data.length
            ? comments.data.map((c) =>
                h(
                  'div',
                  { class: `comment ${c.visibility}`, testid: 'comment' },
                  h(
                    'div',
                    { class: 'who' },
                    `${c.author.name} (${c.author.role}) · ${fmt(c.createdAt)}${c.visibility === 'internal' ? ' · internal note' : ''}`,
                  ),
                  h('div', { class: 'body' }, c.body),
                ),
              )
            : h('p', { class: 'empty' }, 'No comments yet.'),
        ),
        commentForm,
      ),
    );
  } catch (err) {
    handle(err);
    if (err instanceof ApiError && err.status === 404)
      show(h('p', { class: 'empty' }, `Ticket #${id} not found.`));
  }
}

function newTicketView() {
  const form = h(
    'form',
    { class: 'card', testid: 'new-ticket-form' },
    h('h1', {}, 'New ticket'),
    h('label', {}, 'Title', h('input', { name: 'title', required: true, maxlength: 200 })),
    h('label', {}, 'Description', h('textarea', { name: 'description', required: true, maxlength: 20000 })),
    h('label', {}, 'Priority', h('select', { name: 'priority' }, options(PRIORITIES, 'normal'))),
    h('label', {}, 'Type', h('select', { name: 'type' }, options(TYPES, 'question'))),
    // Requesters choose priority and type only (tags and team are set by agents).
    isStaff()
      ? h('label', {}, 'Tags (comma separated)', h('input', { name: 'tags', placeholder: 'billing, vpn' }))
      : null,
    h('button', { type: 'submit', testid: 'create-ticket' }, 'Create ticket'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const tags = String(fd.get('tags') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    try {
      const { data } = await api('/tickets', {
        method: 'POST',
        body: {
          title: fd.get('title'),
          description: fd.get('description'),
          priority: fd.get('priority'),
          type: fd.get('type'),
          ...(tags.length ? { tags } : {}),
        },
        headers: { 'idempotency-key': crypto.randomUUID() },
      });
      flash(`Ticket #${data.id} created.`, true);
      location.hash = `#/tickets/${data.id}`;
    } catch (err) {
      handle(err);
    }
  });
  show(form);
}

// ---- live updates: the change stream (Server-Sent Events) ----
// EventSource cannot send an Authorization header, so each connection uses a single-use stream token.
// The last event id is kept so a reconnect (new token) resumes exactly where the old stream stopped.
const live = {
  source: null,
  lastEventId: null,
  timer: null,
  starting: false,
  retries: 0,
  async start() {
    this.stop();
    if (!session.get() || this.starting) return;
    this.starting = true;
    try {
      const {
        data: { token },
      } = await api('/changes/stream-tokens', { method: 'POST' });
      const url = new URL(`${API}/changes/stream`);
      url.searchParams.set('token', token);
      if (this.lastEventId) url.searchParams.set('after', this.lastEventId);
      const source = new EventSource(url);
      this.source = source;
      const onChange = (e) => {
        this.lastEventId = e.lastEventId || this.lastEventId;
        this.retries = 0;
        onLiveChange(JSON.parse(e.data));
      };
      for (const type of LIVE_TYPES) source.addEventListener(type, onChange);
      source.addEventListener('open', () => {
        document.body.dataset.live = 'on';
      });
      // The server ends a stream with a reason (session ended, slow consumer, shutting down); the browser's
      // own reconnect would reuse a spent token, so a new stream is opened instead.
      source.addEventListener('close', () => this.again());
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) this.again();
      };
    } catch {
      this.again();
    } finally {
      this.starting = false;
    }
  },
  again() {
    this.stop();
    if (!session.get()) return;
    const delay = Math.min(1000 * 2 ** this.retries++, 30_000);
    this.timer = setTimeout(() => this.start(), delay);
  },
  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
    document.body.dataset.live = 'off';
  },
};
const LIVE_TYPES = [
  'ticket.created',
  'ticket.updated',
  'ticket.status_changed',
  'ticket.assigned',
  'ticket.deleted',
  'ticket.restored',
  'comment.created',
  'attachment.created',
];

let liveRefresh = null;
/** A change arrived: refresh the list, or the open ticket when it is the one that changed. */
function onLiveChange(event) {
  // The page already shows what its own user just did.
  if (event.actor?.id === session.get()?.user?.id) return;
  const shown = () => {
    const [path] = location.hash.replace(/^#/, '').split('?');
    return { path, open: /^\/tickets\/(\d+)$/.exec(path ?? '') };
  };
  const { path, open } = shown();
  if (path === '/new' || (open && Number(open[1]) !== event.ticketId)) return;
  clearTimeout(liveRefresh);
  liveRefresh = setTimeout(() => {
    // Never throw away what the user is typing: say what happened instead.
    const typing = [...document.querySelectorAll('#view textarea, #view input[type=text]')].some(
      (el) => el.value && el.closest('[data-testid=filters]') === null,
    );
    if (shown().path !== path) return;
    if (typing) flash(`Ticket #${event.ticketId} was just changed by ${event.actor?.name ?? 'someone'}.`);
    else route();
  }, 250);
}

// ---- router ----
async function route() {
  const [path, qs] = location.hash.replace(/^#/, '').split('?');
  const s = session.get();
  if (!s) {
    live.stop();
    return loginView();
  }
  if (!live.source && !live.timer && !live.starting) live.start();
  nav.hidden = false;
  document.getElementById('whoami').textContent = `${s.user.name} · ${s.user.role}`;
  const m = /^\/tickets\/(\d+)$/.exec(path ?? '');
  if (m) return ticketView(m[1]);
  if (path === '/new') return newTicketView();
  if (path === '/login') {
    location.hash = '#/tickets';
    return;
  }
  return listView(new URLSearchParams(qs ?? ''));
}

document.getElementById('logout').addEventListener('click', async () => {
  const s = session.get();
  if (s?.refreshToken) {
    await api('/auth/logout', { method: 'POST', body: { refreshToken: s.refreshToken }, retry: false }).catch(
      () => {},
    );
  }
  session.set(null);
  live.stop();
  live.lastEventId = null;
  flash('');
  location.hash = '#/login';
});
window.addEventListener('hashchange', () => {
  flashBox.hidden = flashBox.className !== 'ok' || flashBox.hidden;
  route();
});
route();
