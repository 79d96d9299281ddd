import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, COMMON_PROBLEMS, problemResponses } from '../../http/problem.js';
import { emailSchema, newPasswordSchema, userIdParams } from '../users/users.schemas.js';
import type { AuthedContext } from './actor.js';
import type { PasswordResetService } from './password-reset.service.js';

export interface PasswordResetRoutesOptions {
  passwordReset: PasswordResetService;
  /** PASSWORD_RESET_RATE_LIMIT_PER_IP: reset requests (and confirmations) per client IP per 15 minutes. */
  perIpPer15Min: number;
}

const resetRequestBody = z
  .strictObject({
    // Loose on purpose: a malformed address is accepted like an unknown one (nothing is sent).
    email: emailSchema,
  })
  .meta({ example: { email: 'rita@example.com' } });

const resetConfirmBody = z
  .strictObject({
    token: z.string().min(1).max(512).describe('The `token` query parameter of the link in the email'),
    newPassword: newPasswordSchema,
  })
  .meta({ example: { token: 'Vq3k…', newPassword: 'a much longer passphrase 2026' } });

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;

export const passwordResetRoutes: FastifyPluginAsyncZod<PasswordResetRoutesOptions> = async (app, opts) => {
  const { passwordReset } = opts;
  const perIp = (name: string) => ({
    rateLimit: {
      max: opts.perIpPer15Min,
      timeWindow: 15 * 60 * 1000,
      keyGenerator: (req: { ip: string }) => `${name}-ip:${req.ip}`,
    },
  });

  app.post(
    '/auth/password-reset',
    {
      config: perIp('password-reset'),
      schema: {
        operationId: 'requestPasswordReset',
        tags: ['auth'],
        summary: 'Ask for a password-reset email',
        description:
          'Always answers 202, whether or not an account has this email: if an active one does, it receives ' +
          'a link to `PUBLIC_APP_URL/reset-password?token=…`, valid once for 30 minutes. Throttled per ' +
          'email (PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT per 15 min: further requests are accepted but send ' +
          'nothing) and per client IP (PASSWORD_RESET_RATE_LIMIT_PER_IP per 15 min: 429 RATE_LIMITED).',
        security: [],
        body: resetRequestBody,
        response: { 202: z.null().describe('Accepted'), ...problemResponses(...COMMON_PROBLEMS) },
      },
    },
    async (request, reply) => {
      await passwordReset.request(request.ctx, request.body.email);
      return reply.code(202).send(null);
    },
  );

  app.post(
    '/auth/password-reset/confirm',
    {
      config: perIp('password-reset-confirm'),
      schema: {
        operationId: 'confirmPasswordReset',
        tags: ['auth'],
        summary: 'Set a new password with a reset token',
        description:
          'Sets the new password (same policy as sign-up: 422 WEAK_PASSWORD) and ends every session of the ' +
          'account: refresh tokens are revoked and their access tokens refused. The token works once and ' +
          'for 30 minutes; any other reset link of the account dies with it. An unknown, used or expired ' +
          'token answers 422 RESET_TOKEN_INVALID. Sign in with the new password afterwards.',
        security: [],
        body: resetConfirmBody,
        response: { 204: z.null().describe('Password changed'), ...problemResponses(...COMMON_PROBLEMS) },
      },
    },
    async (request, reply) => {
      await passwordReset.confirm(request.ctx, request.body);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/users/:id/password-reset',
    {
      schema: {
        operationId: 'sendPasswordReset',
        tags: ['users'],
        summary: 'Email a password-reset link to a user (admin)',
        description:
          'Sends the user the same email as POST /auth/password-reset, through a job (`jobId`, readable with ' +
          'GET /jobs/{id}). A deactivated account receives nothing. 404 USER_NOT_FOUND for an unknown id.',
        params: userIdParams,
        response: {
          202: z.object({ jobId: z.string() }).meta({ id: 'PasswordResetAccepted' }),
          ...problemResponses(...AUTHED_PROBLEMS, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const result = await passwordReset.requestFor(authed(request.ctx), request.params.id);
      return reply.code(202).send(result);
    },
  );
};
