-- Every existing refresh-token family becomes a session (still live unless all its tokens are revoked),
-- so signed-in users keep their sessions across the upgrade; then each token must belong to a session.
INSERT INTO "sessions" ("id", "user_id", "created_at", "expires_at", "revoked_at")
SELECT "family_id", min("user_id"::text)::uuid, min("created_at"), max("expires_at"),
       CASE WHEN bool_and("revoked_at" IS NOT NULL) THEN max("revoked_at") END
FROM "refresh_tokens"
GROUP BY "family_id"
ON CONFLICT ("id") DO NOTHING;
--> statement-breakpoint
ALTER TABLE "refresh_tokens" ADD CONSTRAINT "refresh_tokens_family_id_sessions_id_fk"
  FOREIGN KEY ("family_id") REFERENCES "sessions"("id") ON DELETE CASCADE;
--> statement-breakpoint
-- A token has at least one scope, and only known ones.
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_scopes_check" CHECK (
  cardinality("scopes") > 0
  AND "scopes" <@ ARRAY['tickets:read','tickets:write','comments:write','drafts:write','users:read','admin']::text[]
);
