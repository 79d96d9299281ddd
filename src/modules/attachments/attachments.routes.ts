import fastifyMultipart from '@fastify/multipart';
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { type FastifyPluginAsyncZod, validatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { attachmentContentDisposition } from '../../lib/content-disposition.js';
import { ALLOWED_BINARY_TYPES } from '../../lib/content-sniff.js';
import type { AuthedContext } from '../auth/actor.js';
import {
  attachmentIdParams,
  attachmentSchema,
  ticketIdParams,
  uploadBodyDoc,
} from './attachments.schemas.js';
import type { AttachmentLimits, AttachmentService, UploadPart } from './attachments.service.js';

export interface AttachmentRoutesOptions {
  attachments: AttachmentService;
  limits: AttachmentLimits;
}

/** Fields besides files: only commentId is meaningful; a few spares so a stray field gets a 422, not a 413. */
const MAX_FIELDS = 5;

/** Validates params/query with zod as usual but lets the multipart body through: the handler streams it. */
// biome-ignore lint/suspicious/noExplicitAny: the route's schema type is the whole route schema object.
const docsOnlyBody: FastifySchemaCompiler<any> = (req) =>
  req.httpPart === 'body' ? () => ({ value: undefined }) : validatorCompiler(req);

/** The multipart parts of a request as the service's UploadPart (the service never sees Fastify). */
async function* uploadParts(request: FastifyRequest): AsyncGenerator<UploadPart> {
  for await (const part of request.parts()) {
    if (part.type === 'field') {
      yield { kind: 'field', name: part.fieldname, value: String(part.value) };
    } else {
      yield {
        kind: 'file',
        field: part.fieldname,
        filename: part.filename,
        stream: part.file,
        truncated: () => part.file.truncated,
      };
    }
  }
}

export const attachmentsRoutes: FastifyPluginAsyncZod<AttachmentRoutesOptions> = async (
  app,
  { attachments, limits },
) => {
  // Registered here, not globally: only this plugin's routes accept multipart/form-data.
  await app.register(fastifyMultipart, {
    limits: {
      // One byte over the limit reaches the store, which then refuses the file (413) and removes it.
      fileSize: limits.maxFileBytes + 1,
      files: limits.maxFiles,
      fields: MAX_FIELDS,
      parts: limits.maxFiles + MAX_FIELDS,
      fieldSize: 1024,
      fieldNameSize: 100,
      headerPairs: 20,
    },
  });

  app.post(
    '/tickets/:id/attachments',
    {
      // The body is a stream read by the handler; its schema is documentation only.
      validatorCompiler: docsOnlyBody,
      config: { scope: 'tickets:write' },
      schema: {
        operationId: 'uploadAttachments',
        tags: ['attachments'],
        summary: 'Upload files to a ticket',
        description: `multipart/form-data with 1 to ${limits.maxFiles} files (any field name, \`file\` by convention) and an optional \`commentId\` field.

* Each file may be at most ${limits.maxFileBytes} bytes (\`UPLOAD_MAX_BYTES\`); a larger file, more than ${limits.maxFiles} files or too many fields → 413 PAYLOAD_TOO_LARGE.
* The type is decided from the **content** (magic bytes), never from the filename or the part's Content-Type. Accepted: images (PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC/HEIF, AVIF), PDF, RTF, Word/Excel/PowerPoint (.docx/.xlsx/.pptx), OpenDocument, ZIP, and UTF-8 text without NUL bytes (stored as \`text/csv\` when it reads as a table, else \`text/plain\`). Anything else → 415 UNSUPPORTED_MEDIA_TYPE. Office files with macros (a VBA project or macro-enabled content type anywhere in the archive, .docm/.xlsm/…) and legacy Compound File Binary files (.doc/.xls/.ppt/.msg) are refused.
* Files are stored under server-generated names; the original filename is kept only as sanitized metadata (no path, no control characters, at most 255 bytes).
* \`commentId\` links the files to a comment of this ticket that the caller wrote (else 422); files of an internal note are invisible to requesters.
* Each account may upload \`UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY\` bytes in any 24 hours (agents and admins: \`UPLOAD_QUOTA_STAFF_BYTES_PER_DAY\`); past it → 413 QUOTA_EXCEEDED with \`Retry-After\`. Every upload counts, even of bytes the server already holds (identical bytes are stored once).
* File storage unreachable → 503 SERVICE_UNAVAILABLE with \`Retry-After\`.
* All or nothing: when any file is refused, none is kept. Uploading to a closed or cancelled ticket → 409 TICKET_CLOSED. Each file writes one \`attachment.created\` audit event.`,
        consumes: ['multipart/form-data'],
        params: ticketIdParams,
        body: uploadBodyDoc,
        response: {
          201: z.object({ data: z.array(attachmentSchema) }),
          ...problemResponses(...AUTHED_PROBLEMS, 404, 409, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const data = await attachments.upload(
        request.ctx as AuthedContext,
        request.params.id,
        uploadParts(request),
      );
      return reply.code(201).send({ data });
    },
  );

  app.get(
    '/attachments/:id',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'downloadAttachment',
        tags: ['attachments'],
        summary: 'Download a file',
        description:
          'The stored bytes with the stored Content-Type, Content-Length, `Content-Disposition: attachment` (RFC 5987 `filename*`) and `X-Content-Type-Options: nosniff`. ' +
          'Visible exactly when its ticket is visible to the caller; files of internal notes are invisible to requesters (404 ATTACHMENT_NOT_FOUND either way).',
        params: attachmentIdParams,
        response: {
          200: {
            description: 'The file',
            // The stored type is sent: one of the types an upload may have (text as UTF-8).
            content: Object.fromEntries(
              [...ALLOWED_BINARY_TYPES, 'text/plain', 'text/csv'].map((type) => [
                type,
                { schema: z.string().meta({ format: 'binary' }) },
              ]),
            ),
          },
          302: z
            .null()
            .describe(
              'Only with `S3_PRESIGNED_DOWNLOADS=true`: `Location` is a presigned URL of the object store, valid for `S3_PRESIGNED_TTL_SECONDS`, that answers with the same Content-Type and Content-Disposition.',
            ),
          ...problemResponses(...AUTHED_PROBLEMS, 404),
        },
      },
    },
    async (request, reply) => {
      const found = await attachments.open(request.ctx as AuthedContext, request.params.id);
      if ('redirect' in found) {
        // S3_PRESIGNED_DOWNLOADS: the bytes come from the bucket under a URL valid for seconds.
        return reply.code(302).header('location', found.redirect).send(null);
      }
      const { attachment, stream, size } = found;
      return (
        reply
          .header('content-type', attachment.contentType)
          .header('content-length', size)
          .header('content-disposition', attachmentContentDisposition(attachment.filename))
          .header('x-content-type-options', 'nosniff')
          .header('content-security-policy', "default-src 'none'; sandbox")
          .header('etag', `"${attachment.sha256}"`)
          // A stream is sent as is (no serializer); the 200 schema only documents the bytes.
          .send(stream as unknown as string)
      );
    },
  );
};
