import { z } from 'zod';

export const teamSchema = z.object({ id: z.uuid(), name: z.string(), memberIds: z.array(z.uuid()) }).meta({
  id: 'Team',
  example: {
    id: '5c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f',
    name: 'Network',
    memberIds: ['7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f'],
  },
});

const teamName = z.string().trim().min(1).max(100);
const memberIds = z
  .array(z.uuid())
  .max(500)
  .describe('Ids of active agents or admins; the full member set (replaces the current one)');

export const teamIdParams = z.strictObject({ id: z.uuid() });
export const createTeamBody = z
  .strictObject({ name: teamName, memberIds: memberIds.optional() })
  .meta({ example: { name: 'Network', memberIds: ['7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f'] } });
export const updateTeamBody = z
  .strictObject({ name: teamName.optional(), memberIds: memberIds.optional() })
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one of name, memberIds' })
  .meta({ example: { name: 'Network and VPN' } });
export const listTeamsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  cursor: z.string().min(1).max(2048).optional().describe('Opaque; the nextCursor of the previous page'),
});
export const teamListSchema = z.object({ data: z.array(teamSchema), nextCursor: z.string().nullable() });
