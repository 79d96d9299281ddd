import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { cfb, docm, docx, elf, type FilePart, multipart, pdf, png } from '../helpers/attachments-fixtures.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

const MAX = 64 * 1024;

function sha256(b: Buffer | string) {
  return createHash('sha256').update(b).digest('hex');
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** Polls for a state another process reaches on its own (a server finishing its cleanup), up to 5 s. */
async function eventually(check: () => Promise<boolean>) {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('attachments', () => {
  let app: FastifyInstance;
  let dataDir: string;
  let uploads: string;
  let requester: TestUser;
  let other: TestUser;
  let agent: TestUser;

  /** Tickets and comments are arranged in the database: this suite tests attachments, not their API. */
  async function ticket(owner: TestUser, status = 'open'): Promise<number> {
    const { rows } = await app.db.$client.query<{ id: number }>(
      'INSERT INTO tickets (title, description, requester_id, status) VALUES ($1, $2, $3, $4) RETURNING id',
      ['Printer on fire', 'It smells.', owner.id, status],
    );
    return rows[0]!.id;
  }

  async function comment(
    ticketId: number,
    author: TestUser,
    visibility: 'public' | 'internal',
  ): Promise<string> {
    const { rows } = await app.db.$client.query<{ id: string }>(
      'INSERT INTO comments (ticket_id, author_id, body, visibility) VALUES ($1, $2, $3, $4) RETURNING id',
      [ticketId, author.id, 'see attached', visibility],
    );
    return rows[0]!.id;
  }

  function upload(user: TestUser, ticketId: number, files: FilePart[], fields: Record<string, string> = {}) {
    const { payload, headers } = multipart(files, fields);
    return app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticketId}/attachments`,
      headers: { ...user.auth, ...headers },
      payload,
    });
  }

  function download(user: TestUser, id: string) {
    return app.inject({ method: 'GET', url: `/api/v1/attachments/${id}`, headers: user.auth });
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'hd-attachments-'));
    uploads = path.join(dataDir, 'uploads');
    app = await createTestApp({ DATA_DIR: dataDir, UPLOAD_MAX_BYTES: String(MAX) });
    [requester, other, agent] = await Promise.all([
      createUser(app, { role: 'requester' }),
      createUser(app, { role: 'requester' }),
      createUser(app, { role: 'agent' }),
    ]);
  });

  afterAll(async () => {
    await app?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('round trip: the download has identical bytes, the sha256, and safe headers', async () => {
    const id = await ticket(requester);
    const bytes = png();
    const res = await upload(requester, id, [
      { filename: 'screen shot.png', content: bytes, contentType: 'image/png' },
    ]);
    expect(res.statusCode).toBe(201);
    const [att] = res.json().data;
    expect(att).toMatchObject({
      ticketId: id,
      commentId: null,
      filename: 'screen shot.png',
      contentType: 'image/png',
      size: bytes.length,
      sha256: sha256(bytes),
    });
    expect(att.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T.*Z$/);

    const dl = await download(requester, att.id);
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload.equals(bytes)).toBe(true);
    expect(sha256(dl.rawPayload)).toBe(att.sha256);
    expect(dl.headers['content-type']).toBe('image/png');
    expect(dl.headers['content-length']).toBe(String(bytes.length));
    expect(dl.headers['content-disposition']).toBe(
      `attachment; filename="screen shot.png"; filename*=UTF-8''screen%20shot.png`,
    );
    expect(dl.headers['x-content-type-options']).toBe('nosniff');
    expect(dl.headers['cache-control']).toBe('no-store');

    // The agent can read it too; the upload was audited in the same transaction.
    expect((await download(agent, att.id)).statusCode).toBe(200);
    const { rows } = await app.db.$client.query(
      `SELECT actor_id, metadata FROM audit_events WHERE action = 'attachment.created' AND entity_id = $1`,
      [att.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: requester.id, metadata: { ticketId: id, sha256: att.sha256 } });
  });

  it('several files at once, types decided from the bytes whatever the client claims', async () => {
    const id = await ticket(requester);
    const csv = 'date,level,message\n2026-11-22,ERROR,disk full\n2026-11-22,INFO,retry\n';
    const res = await upload(requester, id, [
      { filename: 'report.bin', content: pdf(), contentType: 'image/png' },
      { filename: 'letter.docx', content: docx() },
      { filename: 'export.dat', content: csv, contentType: 'application/pdf' },
      { filename: 'app.log', content: 'Grüße: started\nwarning: slow\n' },
    ]);
    expect(res.statusCode).toBe(201);
    expect(res.json().data.map((a: { contentType: string }) => a.contentType)).toEqual([
      'application/pdf',
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      'text/csv; charset=utf-8',
      'text/plain; charset=utf-8',
    ]);
  });

  it('an ELF executable named .png is refused with 415 and not kept', async () => {
    const id = await ticket(requester);
    const before = await filesUnder(uploads);
    const res = await upload(requester, id, [
      { filename: 'cat.png', content: elf(), contentType: 'image/png' },
    ]);
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await filesUnder(uploads)).toEqual(before);
  });

  it('Office files with macros and legacy .doc/.xls are refused with 415 and not kept', async () => {
    const id = await ticket(requester);
    const before = await filesUnder(uploads);
    for (const content of [docm(), docm({ contentType: 'plain' }), cfb()]) {
      const res = await upload(requester, id, [{ filename: 'report.docx', content }]);
      expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    expect(await filesUnder(uploads)).toEqual(before);
  });

  it('all or nothing: one refused file discards the good ones of the same request', async () => {
    const id = await ticket(requester);
    const before = await filesUnder(uploads);
    const res = await upload(requester, id, [
      { filename: 'ok.png', content: png() },
      { filename: 'bad.png', content: elf() },
    ]);
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await filesUnder(uploads)).toEqual(before);
    const { rows } = await app.db.$client.query('SELECT 1 FROM attachments WHERE ticket_id = $1', [id]);
    expect(rows).toHaveLength(0);
  });

  it('a file over UPLOAD_MAX_BYTES → 413 and no file left behind', async () => {
    const id = await ticket(requester);
    const before = await filesUnder(uploads);
    const res = await upload(requester, id, [{ filename: 'big.txt', content: 'a'.repeat(MAX + 1) }]);
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(await filesUnder(uploads)).toEqual(before);
    // Exactly the limit is fine.
    const ok = await upload(requester, id, [{ filename: 'limit.txt', content: 'a'.repeat(MAX) }]);
    expect(ok.statusCode).toBe(201);
    expect(ok.json().data[0].size).toBe(MAX);
  });

  it('more than 5 files → 413 and none kept', async () => {
    const id = await ticket(requester);
    const before = await filesUnder(uploads);
    const files = Array.from({ length: 6 }, (_, i) => ({ filename: `f${i}.txt`, content: `file ${i}\n` }));
    const res = await upload(requester, id, files);
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(await filesUnder(uploads)).toEqual(before);
  });

  it('too many form fields → 413', async () => {
    const id = await ticket(requester);
    const fields = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x${i}`, 'y']));
    const res = await upload(requester, id, [{ filename: 'a.txt', content: 'a\n' }], fields);
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('no file, an unknown field, or a bad commentId → 422', async () => {
    const id = await ticket(requester);
    expectProblem(
      await upload(requester, id, [], { commentId: randomBytes(4).toString('hex') }),
      422,
      'VALIDATION_FAILED',
    );
    expectProblem(await upload(requester, id, []), 422, 'VALIDATION_FAILED');
    expectProblem(
      await upload(requester, id, [{ filename: 'a.txt', content: 'a\n' }], { note: 'x' }),
      422,
      'VALIDATION_FAILED',
    );
    const res = await upload(requester, id, [{ filename: 'a.txt', content: 'a\n' }], { commentId: 'nope' });
    expectProblem(res, 422, 'VALIDATION_FAILED');
    expect(res.json().errors[0].path).toBe('body.commentId');
    // A comment on another ticket, or someone else's comment, cannot take the files.
    const elsewhere = await comment(await ticket(requester), requester, 'public');
    expectProblem(
      await upload(requester, id, [{ filename: 'a.txt', content: 'a\n' }], { commentId: elsewhere }),
      422,
      'VALIDATION_FAILED',
    );
    const agentsReply = await comment(id, agent, 'public');
    expectProblem(
      await upload(requester, id, [{ filename: 'a.txt', content: 'a\n' }], { commentId: agentsReply }),
      422,
      'VALIDATION_FAILED',
    );
  });

  it('a path-traversal filename is stored safely, under a generated name', async () => {
    const id = await ticket(requester);
    const res = await upload(requester, id, [
      { filename: '../../../etc/passwd\u0000.txt', content: 'root:x:0:0\n' },
    ]);
    expect(res.statusCode).toBe(201);
    const [att] = res.json().data;
    expect(att.filename).toBe('passwd.txt');
    const { rows } = await app.db.$client.query<{ storage_key: string }>(
      'SELECT storage_key FROM attachments WHERE id = $1',
      [att.id],
    );
    // The content address: derived from the bytes, never from anything the client named.
    expect(rows[0]!.storage_key).toBe(`sha256/${att.sha256.slice(0, 2)}/${att.sha256}`);
    const stored = await filesUnder(uploads);
    expect(stored).toContain(path.join(uploads, rows[0]!.storage_key));
    expect(stored.every((f) => f.startsWith(`${uploads}${path.sep}`))).toBe(true);
    const dl = await download(requester, att.id);
    expect(dl.headers['content-disposition']).toBe(
      `attachment; filename="passwd.txt"; filename*=UTF-8''passwd.txt`,
    );
  });

  it('Unicode filenames survive and come back RFC 5987-encoded', async () => {
    const id = await ticket(requester);
    const res = await upload(requester, id, [{ filename: 'Prüfbericht 報告.pdf', content: pdf() }]);
    const [att] = res.json().data;
    expect(att.filename).toBe('Prüfbericht 報告.pdf');
    const dl = await download(requester, att.id);
    expect(dl.headers['content-disposition']).toBe(
      `attachment; filename="Prufbericht __.pdf"; filename*=UTF-8''Pr%C3%BCfbericht%20%E5%A0%B1%E5%91%8A.pdf`,
    );
  });

  it('another requester gets 404 for the ticket and for its files', async () => {
    const id = await ticket(requester);
    const res = await upload(requester, id, [{ filename: 'a.png', content: png() }]);
    const [att] = res.json().data;
    expectProblem(await download(other, att.id), 404, 'ATTACHMENT_NOT_FOUND');
    expectProblem(await upload(other, id, [{ filename: 'b.png', content: png() }]), 404, 'TICKET_NOT_FOUND');
    expectProblem(await download(other, '00000000-0000-4000-8000-000000000000'), 404, 'ATTACHMENT_NOT_FOUND');
  });

  it('files of an internal note are invisible to the requester, visible to staff', async () => {
    const id = await ticket(requester);
    const note = await comment(id, agent, 'internal');
    const res = await upload(agent, id, [{ filename: 'notes.txt', content: 'internal only\n' }], {
      commentId: note,
    });
    expect(res.statusCode).toBe(201);
    const [att] = res.json().data;
    expect(att.commentId).toBe(note);
    expectProblem(await download(requester, att.id), 404, 'ATTACHMENT_NOT_FOUND');
    expect((await download(agent, att.id)).statusCode).toBe(200);
  });

  it('a requester attaches files to their own public comment', async () => {
    const id = await ticket(requester);
    const reply = await comment(id, requester, 'public');
    const res = await upload(requester, id, [{ filename: 'a.png', content: png() }], { commentId: reply });
    expect(res.statusCode).toBe(201);
    expect(res.json().data[0].commentId).toBe(reply);
  });

  it('uploading to a closed or cancelled ticket → 409 TICKET_CLOSED, nothing stored', async () => {
    const before = await filesUnder(uploads);
    for (const status of ['closed', 'cancelled']) {
      const id = await ticket(requester, status);
      const res = await upload(agent, id, [{ filename: 'a.png', content: png() }]);
      expectProblem(res, 409, 'TICKET_CLOSED');
    }
    expect(await filesUnder(uploads)).toEqual(before);
  });

  it('an unknown ticket → 404; a non-multipart body → 400; no token → 401', async () => {
    expectProblem(
      await upload(requester, 2_000_000_000, [{ filename: 'a.png', content: png() }]),
      404,
      'TICKET_NOT_FOUND',
    );
    const id = await ticket(requester);
    const json = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/attachments`,
      headers: requester.auth,
      payload: { file: 'x' },
    });
    expectProblem(json, 400, 'MALFORMED_REQUEST');
    const broken = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/attachments`,
      headers: { ...requester.auth, 'content-type': 'multipart/form-data' },
      payload: 'garbage',
    });
    expectProblem(broken, 400, 'MALFORMED_REQUEST');
    const { payload, headers } = multipart([{ filename: 'a.png', content: png() }]);
    const anon = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/attachments`,
      headers,
      payload,
    });
    expectProblem(anon, 401, 'UNAUTHENTICATED');
  });

  it("comments carry their attachments; a requester never sees an internal note's files", async () => {
    const id = await ticket(requester);
    const reply = await comment(id, requester, 'public');
    const note = await comment(id, agent, 'internal');
    const pub = (
      await upload(requester, id, [{ filename: 'a.png', content: png() }], { commentId: reply })
    ).json().data[0];
    const priv = (
      await upload(agent, id, [{ filename: 'n.txt', content: 'secret\n' }], { commentId: note })
    ).json().data[0];

    const list = (user: TestUser) =>
      app.inject({ method: 'GET', url: `/api/v1/tickets/${id}/comments`, headers: user.auth });
    const asRequester = (await list(requester)).json().data;
    expect(asRequester.map((c: { id: string }) => c.id)).toEqual([reply]);
    expect(asRequester[0].attachments).toEqual([pub]);
    const asAgent = (await list(agent)).json().data;
    expect(asAgent.find((c: { id: string }) => c.id === note).attachments).toEqual([priv]);

    // The service function for other modules filters by the viewer as well.
    const service = app.services.attachments;
    const forRequester = await service.listForComments(app.db, { role: 'requester' }, [reply, note]);
    expect([...forRequester.keys()]).toEqual([reply]);
    const forAgent = await service.listForComments(app.db, { role: 'agent' }, [reply, note]);
    expect(forAgent.get(note)?.map((a) => a.id)).toEqual([priv.id]);
  });

  /** The app on a real loopback port (listening once for the tests that need a socket). */
  async function listeningPort(): Promise<number> {
    if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as net.AddressInfo).port;
  }

  it('a client that aborts mid-upload leaves no file behind (real socket)', async () => {
    const id = await ticket(requester);
    const port = await listeningPort();
    const before = await filesUnder(uploads);
    const boundary = 'abortboundary';
    const head =
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n` +
      'Content-Type: text/plain\r\n\r\n';
    const socket = net.connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST /api/v1/tickets/${id}/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: ${requester.auth.authorization}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${MAX}\r\n\r\n${head}`,
    );
    socket.write('x'.repeat(MAX / 2));
    // Wait until the server has the partial file on disk, then vanish.
    await eventually(async () => (await filesUnder(path.join(uploads, 'tmp'))).length > 0);
    socket.destroy();
    await eventually(async () => (await filesUnder(uploads)).length === before.length);
    expect(await filesUnder(uploads)).toEqual(before);
  });

  it('a file refused at its limit mid-body: the rest is read, and the connection serves its next request', async () => {
    const id = await ticket(requester);
    const port = await listeningPort();
    const boundary = 'limitboundary';
    // Twenty times the limit: most of the body arrives after the 413 has been sent.
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n` +
          'Content-Type: text/plain\r\n\r\n',
      ),
      Buffer.alloc(MAX * 20, 'x'),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.write(
      `POST /api/v1/tickets/${id}/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: ${requester.auth.authorization}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    socket.write(body);
    await eventually(async () => received.includes('PAYLOAD_TOO_LARGE'));
    // Answered only if the server has read past the refused body to this request.
    socket.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await eventually(async () => (received.match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 2);
    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
    socket.destroy();
  });

  it('the OpenAPI document describes both routes', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const post = doc.paths['/api/v1/tickets/{id}/attachments'].post;
    expect(post.operationId).toBe('uploadAttachments');
    expect(Object.keys(post.requestBody.content)).toEqual(['multipart/form-data']);
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['201', '404', '409', '413', '415']));
    const get = doc.paths['/api/v1/attachments/{id}'].get;
    expect(get.operationId).toBe('downloadAttachment');
    expect(Object.keys(get.responses['200'].content)).toEqual(
      expect.arrayContaining(['image/png', 'application/pdf', 'text/plain']),
    );
  });
});
