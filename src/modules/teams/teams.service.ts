import type { Database, Executor } from '../../db/client.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { CursorCodec } from '../../lib/cursor.js';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import { createdAtKeyset, keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { assertCan, isStaff } from '../auth/permissions.js';
import type { UsersRepository } from '../users/users.repository.js';
import type { TeamsRepository, TeamWithMembers } from './teams.repository.js';

export class TeamNotFoundError extends NotFoundError {
  constructor(id: string) {
    super('TEAM_NOT_FOUND', 'Team not found', `Team ${id} does not exist.`);
  }
}

function nameTaken(): ConflictError {
  return new ConflictError('TEAM_NAME_TAKEN', 'A team with this name already exists.', 'Team name taken');
}

export interface TeamsServiceDeps {
  db: Database;
  teams: TeamsRepository;
  users: UsersRepository;
  audit: AuditService;
  cursor: CursorCodec;
}

export function createTeamsService({ db, teams, users, audit, cursor }: TeamsServiceDeps) {
  /** Members must be existing, active agents or admins (422 with the offending ids otherwise). */
  async function checkMembers(ex: Executor, ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)].sort();
    const rows = await users.findByIds(ex, unique);
    const ok = new Set(rows.filter((u) => u.active && isStaff(u.role)).map((u) => u.id));
    const bad = unique.filter((id) => !ok.has(id));
    if (bad.length > 0) {
      throw new ValidationError(
        bad.map((id) => ({
          path: `body.memberIds`,
          message: `${id} is not an active agent or admin`,
        })),
        'Team members must be active agents or admins.',
      );
    }
    return unique;
  }

  async function write<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (isUniqueViolation(err, 'teams_name_lower_uq')) throw nameTaken();
      throw err;
    }
  }

  return {
    /** Agents and admins read teams; requesters get 403. Oldest first, keyset-paginated. */
    async list(
      ctx: AuthedContext,
      query: { limit: number; cursor?: string },
    ): Promise<{ data: TeamWithMembers[]; nextCursor: string | null }> {
      assertCan(ctx.actor, 'team.read', { type: 'team' });
      const after = query.cursor ? createdAtKeyset(cursor.decode(query.cursor)) : undefined;
      const rows = await teams.list(db, query.limit + 1, after);
      const { page, nextCursor } = keysetPage(rows, query.limit, (last) =>
        cursor.encode({ t: last.sortKey, i: last.id }),
      );
      return { data: page, nextCursor };
    },

    async get(ctx: AuthedContext, id: string): Promise<TeamWithMembers> {
      assertCan(ctx.actor, 'team.read', { type: 'team', id });
      const team = await teams.findById(db, id);
      if (!team) throw new TeamNotFoundError(id);
      return team;
    },

    /** Admins only; team names are unique case-insensitively (409 TEAM_NAME_TAKEN). */
    async create(
      ctx: AuthedContext,
      input: { name: string; memberIds?: string[] },
    ): Promise<TeamWithMembers> {
      assertCan(ctx.actor, 'team.manage', { type: 'team' });
      return write(async (tx) => {
        if (await teams.nameTaken(tx, input.name)) throw nameTaken();
        const memberIds = await checkMembers(tx, input.memberIds ?? []);
        const team = await teams.insert(tx, input.name);
        await teams.setMembers(tx, team.id, memberIds);
        await audit.record(tx, ctx, {
          action: 'team.created',
          entityType: 'team',
          entityId: team.id,
          changes: { name: [null, team.name], memberIds: [null, memberIds] },
        });
        return { ...team, memberIds };
      });
    },

    /** Admins only: rename and/or replace the member set; one team.updated event with what changed. */
    async update(
      ctx: AuthedContext,
      id: string,
      input: { name?: string; memberIds?: string[] },
    ): Promise<TeamWithMembers> {
      assertCan(ctx.actor, 'team.manage', { type: 'team', id });
      return write(async (tx) => {
        const before = await teams.findById(tx, id, { forUpdate: true });
        if (!before) throw new TeamNotFoundError(id);
        const changes: Record<string, [unknown, unknown]> = {};
        let name = before.name;
        let memberIds = before.memberIds;
        if (input.name !== undefined && input.name !== before.name) {
          if (await teams.nameTaken(tx, input.name, id)) throw nameTaken();
          await teams.rename(tx, id, input.name);
          changes.name = [before.name, input.name];
          name = input.name;
        }
        if (input.memberIds !== undefined) {
          const next = await checkMembers(tx, input.memberIds);
          if (next.join() !== before.memberIds.join()) {
            await teams.setMembers(tx, id, next);
            if (!changes.name) await teams.touch(tx, id);
            changes.memberIds = [before.memberIds, next];
            memberIds = next;
          }
        }
        if (Object.keys(changes).length > 0) {
          await audit.record(tx, ctx, { action: 'team.updated', entityType: 'team', entityId: id, changes });
        }
        return { ...before, name, memberIds };
      });
    },
  };
}

export type TeamsService = ReturnType<typeof createTeamsService>;
