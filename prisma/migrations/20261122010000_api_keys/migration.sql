-- API keys: only a SHA-256 of each key is stored (keys are 256-bit random, so a fast hash is enough);
-- a USER key is bound to exactly one userId.

CREATE TYPE "api_key_role" AS ENUM ('ADMIN', 'WORKER', 'USER');

CREATE TABLE "api_keys" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "key_prefix" TEXT NOT NULL,
    "role" "api_key_role" NOT NULL,
    "user_id" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(6),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "api_keys_user_role_check" CHECK (("role" = 'USER') = ("user_id" IS NOT NULL))
);

CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");
