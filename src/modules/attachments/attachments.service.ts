import { isUtf8 } from 'node:buffer';
import { pipeline, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Database, Executor } from '../../db/client.js';
import type { AttachmentRow } from '../../db/schema/index.js';
import { attachmentContentDisposition } from '../../lib/content-disposition.js';
import {
  ContentInspector,
  SNIFF_SAMPLE_BYTES,
  sniffContentType,
  TAIL_BYTES,
} from '../../lib/content-sniff.js';
import {
  type FieldError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../../lib/errors.js';
import { sanitizeFilename } from '../../lib/filename.js';
import { UUID } from '../../lib/patterns.js';
import {
  BlobNotFoundError,
  type BlobStore,
  BlobTooLargeError,
  type StagedBlob,
} from '../../lib/storage/blob-store.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, AuthedContext } from '../auth/actor.js';
import { canSeeInternal, canViewTicket } from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { AttachmentsRepository, AttachmentTicket } from './attachments.repository.js';
import { type AttachmentDto, toAttachmentDto } from './attachments.schemas.js';
import type { UploadQuota } from './upload-quota.js';

/** One part of a multipart upload, as the route hands it over (the service never sees Fastify). */
export type UploadPart =
  | { kind: 'field'; name: string; value: string }
  | {
      kind: 'file';
      field: string;
      filename: string | undefined;
      stream: Readable;
      /** True when the parser cut the file at its size limit. */
      truncated(): boolean;
    };

export interface AttachmentLimits {
  /** Largest file, bytes (UPLOAD_MAX_BYTES). */
  maxFileBytes: number;
  /** Files per request. */
  maxFiles: number;
}

export interface AttachmentServiceDeps {
  db: Database;
  attachments: AttachmentsRepository;
  tickets: Pick<TicketService, 'lockTicketForWrite' | 'checkTicketWritable'>;
  audit: AuditService;
  changes: ChangeRecorder;
  store: BlobStore;
  limits: AttachmentLimits;
  quota: UploadQuota;
}

function attachmentNotFound(id: string) {
  return new NotFoundError(
    'ATTACHMENT_NOT_FOUND',
    'Attachment not found',
    `Attachment ${id} does not exist or is not visible to you.`,
  );
}

/** The ticket gate for new files: 404 invisible, 409 deleted, 409 closed or cancelled. */
const ATTACH = { whenClosed: 'no files can be added any more', lock: 'share' } as const;

/** Whether this actor may see this attachment: the ticket's visibility, plus internal notes for staff only. */
export function canViewAttachment(
  actor: Pick<Actor, 'id' | 'role'>,
  ticket: Pick<AttachmentTicket, 'requesterId' | 'deletedAt'>,
  commentVisibility: 'public' | 'internal' | null,
): boolean {
  if (!canViewTicket(actor, ticket)) return false;
  return commentVisibility !== 'internal' || canSeeInternal(actor);
}

interface PendingFile {
  blob: StagedBlob;
  filename: string;
  contentType: string;
}

/** A file that came whole (an email's attachment), with the name its sender gave it. */
export interface WholeFile {
  filename: string | undefined;
  content: Buffer;
}

/** A file refused by the upload checks, for telling the people on the ticket. */
export interface RefusedFile {
  filename: string;
  reason: 'too_large' | 'type_not_accepted' | 'too_many_files' | 'quota_exceeded';
}

/** Files checked and staged in the store, waiting for their transaction (attachStagedIn) or discard. */
export interface StagedFiles {
  files: PendingFile[];
  refused: RefusedFile[];
}

export function createAttachmentService({
  db,
  attachments,
  tickets,
  audit,
  changes,
  store,
  limits,
  quota,
}: AttachmentServiceDeps) {
  /** Drops what this request staged; committed blobs are never deleted (other rows may share them). */
  async function discard(files: readonly PendingFile[]) {
    await Promise.allSettled(files.map((f) => f.blob.discard()));
  }

  /** Streams one file part into the store, watching its bytes; every failure leaves no blob behind. */
  async function storeFile(part: Extract<UploadPart, { kind: 'file' }>, pending: PendingFile[]) {
    const inspector = new ContentInspector();
    // Errors of either stream (client abort, parser failure) destroy both; put() sees them and cleans up.
    pipeline(part.stream, inspector, () => {});
    let blob: StagedBlob;
    try {
      blob = await store.put(inspector, { maxBytes: limits.maxFileBytes });
    } catch (err) {
      if (err instanceof BlobTooLargeError) throw tooLarge();
      throw err;
    }
    const filename = sanitizeFilename(part.filename);
    const file: PendingFile = { blob, filename, contentType: '' };
    pending.push(file);
    if (part.truncated()) throw tooLarge();
    const { sample, isText, size, tail } = inspector.result();
    const sniffed = await sniffContentType(sample, isText, {
      size,
      tail,
      reopen: () => blob.open(),
    });
    if (!sniffed) {
      throw new UnsupportedMediaTypeError(
        `"${filename}" is not an accepted file type. Accepted: images (PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC, AVIF), ` +
          'PDF, plain text/CSV/logs (UTF-8), office documents without macros (Word, Excel, PowerPoint as .docx/.xlsx/.pptx, ' +
          'OpenDocument, RTF) and ZIP. Legacy .doc/.xls/.ppt/.msg files are refused: save them as .docx/.xlsx/.pptx, PDF or .eml. ' +
          'The type is decided from the content, not from the name.',
      );
    }
    file.contentType = sniffed.contentType;
  }

  function tooLarge() {
    return new PayloadTooLargeError(`Each file may be at most ${limits.maxFileBytes} bytes.`);
  }

  return {
    /**
     * The checks of an upload for files that came whole (email attachments), one by one: size
     * (UPLOAD_MAX_BYTES), type from the bytes (same list, same macro checks), at most `maxFiles`. Accepted
     * files are staged in the store; refused ones are listed, not thrown, so the mail itself is kept.
     * Call attachStagedIn() in the transaction, and discardStaged() if it fails.
     */
    async stageWholeFiles(files: readonly WholeFile[]): Promise<StagedFiles> {
      const staged: StagedFiles = { files: [], refused: [] };
      try {
        for (const f of files) {
          const filename = sanitizeFilename(f.filename, 'attachment');
          if (staged.files.length >= limits.maxFiles) {
            staged.refused.push({ filename, reason: 'too_many_files' });
            continue;
          }
          if (f.content.length > limits.maxFileBytes) {
            staged.refused.push({ filename, reason: 'too_large' });
            continue;
          }
          const sniffed = await sniffContentType(
            f.content.subarray(0, SNIFF_SAMPLE_BYTES),
            isUtf8(f.content) && !f.content.includes(0),
            {
              size: f.content.length,
              tail: f.content.subarray(Math.max(0, f.content.length - TAIL_BYTES)),
              reopen: async () => Readable.from([f.content]),
            },
          );
          if (!sniffed) {
            staged.refused.push({ filename, reason: 'type_not_accepted' });
            continue;
          }
          const blob = await store.put(Readable.from([f.content]), { maxBytes: limits.maxFileBytes });
          staged.files.push({ blob, filename, contentType: sniffed.contentType });
        }
        return staged;
      } catch (err) {
        await discard(staged.files);
        throw err;
      }
    },

    /** Drops staged files whose transaction failed. */
    async discardStaged(staged: StagedFiles): Promise<void> {
      await discard(staged.files);
    },

    /**
     * Inside the caller's transaction: books the staged files against the uploader's daily quota (those
     * that do not fit move to `refused` and are dropped). Call before writing text that lists refusals.
     */
    async admitStagedIn(tx: Executor, actor: Pick<Actor, 'id' | 'role'>, staged: StagedFiles): Promise<void> {
      const fits = await quota.admit(
        tx,
        actor,
        staged.files.map((f) => f.blob.size),
      );
      const kept: PendingFile[] = [];
      for (const [i, f] of staged.files.entries()) {
        if (fits[i]) kept.push(f);
        else {
          staged.refused.push({ filename: f.filename, reason: 'quota_exceeded' });
          await f.blob.discard();
        }
      }
      staged.files = kept;
    },

    /**
     * Inside the caller's transaction (after admitStagedIn): commits the staged files and records their
     * rows, `attachment.created` audit events and change events, on the ticket or on one of its comments.
     */
    async attachStagedIn(
      tx: Executor,
      ctx: AuthedContext,
      ticketId: number,
      commentId: string | null,
      staged: StagedFiles,
    ): Promise<AttachmentDto[]> {
      if (staged.files.length === 0) return [];
      const keys = await Promise.all(staged.files.map((f) => f.blob.commit()));
      const inserted = await attachments.insertMany(
        tx,
        staged.files.map((f, i) => ({
          ticketId,
          commentId,
          uploaderId: ctx.actor.id,
          filename: f.filename,
          contentType: f.contentType,
          size: f.blob.size,
          sha256: f.blob.sha256,
          storageKey: keys[i]!,
        })),
      );
      for (const row of inserted) await recordCreated(tx, ctx, ticketId, row, false);
      return inserted.map(toAttachmentDto);
    },

    /**
     * POST /tickets/{id}/attachments. Checks the ticket before reading a byte (404 invisible, 409 closed),
     * streams every file to the store (size + sha256 on the way, type decided from the bytes), then
     * records all rows and one `attachment.created` audit event each in one transaction. All or nothing:
     * any failure — too large (413), type not allowed (415), bad commentId (422), quota (413), the store
     * (503), the database — removes every file this request staged. The daily quota is checked before
     * reading (already used up) and charged under the account's lock before any blob is committed to its
     * content key, so refused bytes never reach the shared blobs.
     */
    async upload(
      ctx: AuthedContext,
      ticketId: number,
      parts: AsyncIterable<UploadPart>,
    ): Promise<AttachmentDto[]> {
      const { actor } = ctx;
      await tickets.checkTicketWritable(ctx, db, ticketId, ATTACH);
      await quota.precheck(db, actor);

      const pending: PendingFile[] = [];
      const fieldErrors: FieldError[] = [];
      let commentId: string | undefined;
      try {
        // The whole body is read before a bad field is reported, so the parser's limits (413) still bite.
        for await (const part of parts) {
          if (part.kind === 'field') {
            if (part.name !== 'commentId' || commentId !== undefined) {
              fieldErrors.push({
                path: `body.${part.name}`,
                message: 'unknown or repeated field; the only field besides files is one commentId',
              });
            } else {
              commentId = part.value;
            }
            continue;
          }
          if (pending.length >= limits.maxFiles) {
            throw new PayloadTooLargeError(`At most ${limits.maxFiles} files per request.`);
          }
          if (fieldErrors.length > 0) {
            await finished(part.stream.resume()); // refused anyway: read past it without storing
            continue;
          }
          await storeFile(part, pending);
        }
        if (fieldErrors.length > 0)
          throw new ValidationError(fieldErrors, 'The upload has unexpected fields.');
        if (pending.length === 0) {
          throw new ValidationError(
            [{ path: 'body.file', message: 'at least one file is required' }],
            `Send 1 to ${limits.maxFiles} files as multipart/form-data.`,
          );
        }
        const rows = await db.transaction(async (tx) => {
          // FOR SHARE: a concurrent close waits for these files to commit, or they see the ticket closed.
          await tickets.lockTicketForWrite(ctx, tx, ticketId, ATTACH);
          const onComment =
            commentId === undefined ? null : await assertCommentUsable(tx, ctx, ticketId, commentId);
          await quota.charge(
            tx,
            actor,
            pending.reduce((sum, f) => sum + f.blob.size, 0),
          );
          // Committed inside the transaction: a row never points at bytes that are not there yet.
          const keys = await Promise.all(pending.map((f) => f.blob.commit()));
          const inserted = await attachments.insertMany(
            tx,
            pending.map((f, i) => ({
              ticketId,
              commentId: commentId ?? null,
              uploaderId: actor.id,
              filename: f.filename,
              contentType: f.contentType,
              size: f.blob.size,
              sha256: f.blob.sha256,
              storageKey: keys[i]!,
            })),
          );
          for (const row of inserted)
            await recordCreated(tx, ctx, ticketId, row, onComment?.visibility === 'internal');
          return inserted;
        });
        return rows.map(toAttachmentDto);
      } catch (err) {
        await discard(pending);
        throw err;
      }
    },

    /**
     * GET /attachments/{id}: the row and an open stream of its bytes, when the actor may see it —
     * the ticket's visibility, and never an internal note's file for a requester (404 either way).
     */
    async open(
      ctx: AuthedContext,
      id: string,
    ): Promise<
      | { attachment: AttachmentDto; stream: Readable; size: number }
      | { attachment: AttachmentDto; redirect: string }
    > {
      const found = await attachments.findWithContext(db, id);
      if (!found || !canViewAttachment(ctx.actor, found.ticket, found.attachment.commentVisibility)) {
        throw attachmentNotFound(id);
      }
      try {
        // With S3_PRESIGNED_DOWNLOADS the permission check above stays ours; only the bytes come from S3.
        const redirect = await store.presignDownload?.(found.attachment.storageKey, {
          contentType: found.attachment.contentType,
          contentDisposition: attachmentContentDisposition(found.attachment.filename),
        });
        if (redirect) return { attachment: toAttachmentDto(found.attachment), redirect };
        const { stream, size } = await store.open(found.attachment.storageKey);
        return { attachment: toAttachmentDto(found.attachment), stream, size };
      } catch (err) {
        if (err instanceof BlobNotFoundError) throw attachmentNotFound(id);
        throw err;
      }
    },

    /**
     * Attachments of these comments grouped by comment id, for the Comment resource's `attachments[]`.
     * Pass the viewer: internal notes' files are left out for requesters even if a caller forgot to
     * filter the notes themselves.
     */
    async listForComments(
      ex: Executor,
      viewer: Pick<Actor, 'role'>,
      commentIds: readonly string[],
    ): Promise<Map<string, AttachmentDto[]>> {
      const rows = await attachments.listByCommentIds(ex, commentIds, {
        publicOnly: !canSeeInternal(viewer),
      });
      return groupByComment(rows);
    },
  };

  async function recordCreated(
    tx: Executor,
    ctx: AuthedContext,
    ticketId: number,
    row: AttachmentRow,
    staffOnly: boolean,
  ) {
    await audit.record(tx, ctx, {
      action: 'attachment.created',
      entityType: 'attachment',
      entityId: row.id,
      changes: {},
      metadata: {
        ticketId,
        commentId: row.commentId,
        filename: row.filename,
        contentType: row.contentType,
        size: row.size,
        sha256: row.sha256,
      },
    });
    await changes.record(tx, ctx, {
      type: 'attachment.created',
      ticketId,
      data: { attachment: toAttachmentDto(row) },
      staffOnly,
    });
  }

  async function assertCommentUsable(ex: Executor, ctx: AuthedContext, ticketId: number, commentId: string) {
    const invalid = () =>
      new ValidationError(
        [{ path: 'body.commentId', message: 'must be the id of a comment you wrote on this ticket' }],
        'The commentId does not name a comment you wrote on this ticket.',
      );
    if (!UUID.test(commentId)) throw invalid();
    const comment = await attachments.findComment(ex, commentId);
    // Only the author attaches files to a comment: nobody can make a file look like someone else's.
    if (!comment || comment.ticketId !== ticketId || comment.authorId !== ctx.actor.id) throw invalid();
    if (comment.visibility === 'internal' && !canSeeInternal(ctx.actor)) throw invalid();
    return comment;
  }
}

export function groupByComment(rows: readonly AttachmentRow[]): Map<string, AttachmentDto[]> {
  const out = new Map<string, AttachmentDto[]>();
  for (const row of rows) {
    if (!row.commentId) continue;
    const list = out.get(row.commentId) ?? [];
    list.push(toAttachmentDto(row));
    out.set(row.commentId, list);
  }
  return out;
}

export type AttachmentService = ReturnType<typeof createAttachmentService>;
