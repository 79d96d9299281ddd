import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';
import { serializeError } from '../lib/log-safe-error.js';

/** pino options: the configured level, secrets redacted whatever a log call is handed, pretty in development. */
export function loggerOptions(config: Pick<Config, 'logLevel' | 'env'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'password',
        '*.password',
        '*.currentPassword',
        '*.newPassword',
        '*.refreshToken',
        '*.accessToken',
      ],
      censor: '[redacted]',
    },
    // The path only: a query string can carry a secret (GET /changes/stream?token=…) and is never logged.
    serializers: {
      // Errors are logged by type, code and a data-free message: never SQL parameters (src/lib/log-safe-error.ts).
      err: serializeError,
      req: (req: { method: string; url: string; id: string; ip?: string }) => ({
        method: req.method,
        url: req.url.split('?', 1)[0],
        remoteAddress: req.ip,
      }),
    },
    ...(config.env === 'development'
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true },
          },
        }
      : {}),
  };
}

/** A logger configuration (also one a test passes) always gets the data-free error serializer. */
export function withSafeErrors(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger || typeof logger !== 'object') return logger;
  return { ...logger, serializers: { ...logger.serializers, err: serializeError } };
}
