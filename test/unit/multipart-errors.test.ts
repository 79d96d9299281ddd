import { describe, expect, it } from 'vitest';
import { mapError } from '../../src/http/errors.js';

function fastifyError(code: string, statusCode: number, message = code) {
  return Object.assign(new Error(message), { code, statusCode });
}

describe('multipart errors as problems', () => {
  it('parser limits are 413 PAYLOAD_TOO_LARGE', () => {
    for (const code of ['FST_REQ_FILE_TOO_LARGE', 'FST_FILES_LIMIT', 'FST_FIELDS_LIMIT', 'FST_PARTS_LIMIT']) {
      expect(mapError(fastifyError(code, 413))).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    }
  });

  it('a non-multipart body (406 from the plugin) is a 400 malformed request', () => {
    expect(mapError(fastifyError('FST_INVALID_MULTIPART_CONTENT_TYPE', 406))).toMatchObject({
      status: 400,
      code: 'MALFORMED_REQUEST',
    });
  });

  it("busboy's status-less errors for a broken body are 400, not 500", () => {
    for (const message of [
      'Multipart: Boundary not found',
      'Unexpected end of multipart data',
      'Part terminated early due to unexpected end of multipart data',
    ]) {
      expect(mapError(new Error(message))).toMatchObject({ status: 400, code: 'MALFORMED_REQUEST' });
    }
  });

  it('leaves unrelated errors alone', () => {
    expect(mapError(new Error('something else entirely'))).toBeUndefined();
  });
});
