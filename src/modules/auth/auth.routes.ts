import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, COMMON_PROBLEMS, problemResponses } from '../../http/problem.js';
import { toUserDto, userSchema } from '../users/users.schemas.js';
import type { AuthedContext } from './actor.js';
import { loginBody, refreshBody, registerBody, tokenPairSchema, updateMeBody } from './auth.schemas.js';
import { type AuthService, SignupDisabledError, type TokenPair } from './auth.service.js';

export interface AuthRoutesOptions {
  auth: AuthService;
  allowSignup: boolean;
  /** LOGIN_RATE_LIMIT_PER_IP: login attempts per client IP per 15 minutes. */
  loginRateLimitPerIp: number;
}

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;
const pairDto = (p: TokenPair) => ({ ...p, user: toUserDto(p.user) });

export const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (app, opts) => {
  const { auth } = opts;

  app.post(
    '/auth/register',
    {
      // Checked before the body, so a disabled sign-up answers 403 whatever is sent.
      preValidation: async () => {
        if (!opts.allowSignup) throw new SignupDisabledError();
      },
      schema: {
        operationId: 'register',
        tags: ['auth'],
        summary: 'Create a requester account',
        description:
          'Self sign-up: creates a `requester` (the role cannot be chosen: a `role` field is refused with 422). ' +
          'Password: 12..256 characters (PASSWORD_MIN_LENGTH), any Unicode, no composition rules; common ' +
          'passwords and the email/name themselves are refused with 422 WEAK_PASSWORD. Emails are unique ' +
          'case-insensitively (409 EMAIL_TAKEN). 403 SIGNUP_DISABLED when ALLOW_SIGNUP=false.',
        security: [],
        body: registerBody,
        response: { 201: userSchema, ...problemResponses(...COMMON_PROBLEMS, 403, 409) },
      },
    },
    async (request, reply) => {
      const user = await auth.register(request.ctx, request.body);
      return reply.code(201).send(toUserDto(user));
    },
  );

  app.post(
    '/auth/login',
    {
      config: {
        rateLimit: {
          max: opts.loginRateLimitPerIp,
          timeWindow: 15 * 60 * 1000,
          keyGenerator: (req) => `login-ip:${req.ip}`,
        },
      },
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Sign in',
        description:
          'Exchanges email and password for a short-lived access token (ACCESS_TOKEN_TTL) and a single-use ' +
          'refresh token. Unknown email, wrong password and deactivated account all answer the same ' +
          '401 INVALID_CREDENTIALS. Throttled per client IP (LOGIN_RATE_LIMIT_PER_IP per 15 min) and per ' +
          'account, whatever the email case (LOGIN_RATE_LIMIT_PER_ACCOUNT failed attempts per 15 min): ' +
          '429 RATE_LIMITED with Retry-After.',
        security: [],
        body: loginBody,
        response: { 200: tokenPairSchema, ...problemResponses(...COMMON_PROBLEMS, 401) },
      },
    },
    async (request) => pairDto(await auth.login(request.ctx, request.body)),
  );

  app.post(
    '/auth/refresh',
    {
      schema: {
        operationId: 'refreshTokens',
        tags: ['auth'],
        summary: 'Rotate the refresh token',
        description:
          'Returns a new access token and a new refresh token; the presented refresh token is used up. ' +
          'Presenting a refresh token a second time revokes its whole session (every refresh and access token ' +
          'issued from the same login) and answers 401. Refresh tokens expire REFRESH_TOKEN_TTL after the login that started ' +
          'the session (401 TOKEN_EXPIRED), and are revoked by logout, a password change or deactivation.',
        security: [],
        body: refreshBody,
        response: { 200: tokenPairSchema, ...problemResponses(...COMMON_PROBLEMS, 401) },
      },
    },
    async (request) => pairDto(await auth.refresh(request.ctx, request.body.refreshToken)),
  );

  app.post(
    '/auth/logout',
    {
      schema: {
        operationId: 'logout',
        tags: ['auth'],
        summary: 'Sign out',
        description:
          'Ends the session of the given refresh token: it, every token rotated from the same login, and the ' +
          'access tokens issued for that session (401 from then on, on every instance within 5 s). Other sessions ' +
          'of the user are not affected. Answers 204 also when the token is unknown or already revoked. A refresh ' +
          'racing the logout never survives it.',
        body: refreshBody,
        response: { 204: z.null().describe('Signed out'), ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request, reply) => {
      await auth.logout(authed(request.ctx), request.body.refreshToken);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      config: { scope: 'users:read' },
      schema: {
        operationId: 'getMe',
        tags: ['auth'],
        summary: 'The current user',
        description: 'The authenticated user’s own profile.',
        response: { 200: userSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request) => toUserDto(await auth.me(authed(request.ctx))),
  );

  app.patch(
    '/auth/me',
    {
      schema: {
        operationId: 'updateMe',
        tags: ['auth'],
        summary: 'Update the current user',
        description:
          'Change your name and/or password. A new password needs `currentPassword` (a wrong one answers ' +
          '401 INVALID_CREDENTIALS and counts against the per-account sign-in throttle) and meets the ' +
          'password policy (422 WEAK_PASSWORD). Changing the password signs out every session: all refresh ' +
          'tokens and their access tokens are revoked at once (sign in again with the new password). Role and ' +
          'active state are not yours to change (422).',
        body: updateMeBody,
        response: { 200: userSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request) => toUserDto(await auth.updateMe(authed(request.ctx), request.body)),
  );
};
