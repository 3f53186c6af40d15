import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import { checkLength, checkUserId, isUuid } from '../queue/validation.js';
import type { Role, Viewer } from './viewer.js';
import { ADVISORY_LOCKS } from '../db/advisoryLocks.js';
import { CHANNELS } from '../db/channels.js';

export interface ApiKeyInfo {
  id: string;
  name: string;
  keyPrefix: string;
  role: Role;
  userId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

const KEY_PREFIX = 'cvk_';
/** NOTIFY channel of revocations (payload: the key's id), so that every server ends the key's sockets at once. */
/** How long a looked-up key is trusted before it is read again (so a revocation takes effect within it). */
const CACHE_TTL_MS = 5000;
const KEY_NAME_MAX_LENGTH = 100;
/** Keys are 47 characters; anything much longer is not worth hashing. */
const PRESENTED_KEY_MAX_LENGTH = 200;
const CACHE_MAX = 10_000;

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * API keys in PostgreSQL (hashed), with a short-lived cache of lookups so that a busy client does not
 * cost a database read per request. Used by the HTTP/WebSocket front, the CLI and the admin mutations.
 */
export class ApiKeyStore {
  readonly #db: PrismaClient;
  readonly #cache = new Map<string, { viewer: Viewer | null; until: number }>();

  constructor(prisma: PrismaClient) {
    this.#db = prisma;
  }

  async create(input: { name: string; role: Role; userId?: string | null }): Promise<{ key: string; info: ApiKeyInfo }> {
    checkLength('name', input.name, KEY_NAME_MAX_LENGTH);
    const userId = input.userId ?? null;
    if ((input.role === 'USER') !== (userId !== null)) {
      throw new InvalidInputError('A USER key needs a userId; ADMIN and WORKER keys must not have one.');
    }
    if (userId !== null) checkUserId(userId);
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const row = await this.#db.apiKey.create({
      data: { name: input.name, keyHash: hashKey(key), keyPrefix: key.slice(0, 10), role: input.role, userId },
    });
    return { key, info: toInfo(row) };
  }

  /** Stores a key chosen outside (CONVEYOR_ADMIN_KEY) as the first admin key. */
  async importAdminKey(key: string, name: string): Promise<ApiKeyInfo> {
    if (key.length < 32) throw new InvalidInputError('CONVEYOR_ADMIN_KEY must be at least 32 characters long.');
    // authenticate() looks only at keys with the prefix: one without could never be used.
    if (!key.startsWith(KEY_PREFIX) || key.length > PRESENTED_KEY_MAX_LENGTH) {
      throw new InvalidInputError(
        `CONVEYOR_ADMIN_KEY must start with "${KEY_PREFIX}" and be at most ${PRESENTED_KEY_MAX_LENGTH} characters long.`,
      );
    }
    const row = await this.#db.apiKey.upsert({
      where: { keyHash: hashKey(key) },
      update: {},
      create: { name, keyHash: hashKey(key), keyPrefix: key.slice(0, 10), role: 'ADMIN', userId: null },
    });
    return toInfo(row);
  }

  list(): Promise<ApiKeyInfo[]> {
    return this.#db.apiKey.findMany({ orderBy: { createdAt: 'asc' } }).then((rows) => rows.map(toInfo));
  }

  /**
   * Revokes a key. The NOTIFY goes in the same transaction as the update, so every server listening
   * (src/events/jobEventBus.ts) hears of it exactly when it is committed.
   */
  async revoke(id: string): Promise<ApiKeyInfo> {
    // A malformed id names no key; any other failure (the database down) is not an answer, so that
    // an operator revoking a leaked key tries again rather than taking it for gone.
    const row = isUuid(id) ? await this.#db.apiKey.findUnique({ where: { id } }) : null;
    if (!row) throw new NotFoundError(`No API key with id ${id}.`);
    const revoked = row.revokedAt
      ? row
      : (
          await this.#db.$transaction([
            this.#db.apiKey.update({ where: { id }, data: { revokedAt: new Date() } }),
            this.#db.$executeRaw`SELECT pg_notify(${CHANNELS.apiKeyRevoked}, ${id})`,
          ])
        )[0];
    this.forgetCachedLookups();
    return toInfo(revoked);
  }

  /** Drops every cached lookup (a key was revoked): the next request of each key reads it again. */
  forgetCachedLookups() {
    this.#cache.clear();
  }

  /** The viewer a presented key stands for; null for an unknown or revoked key. */
  async authenticate(key: string): Promise<Viewer | null> {
    if (!key.startsWith(KEY_PREFIX) || key.length > PRESENTED_KEY_MAX_LENGTH) return null;
    const hash = hashKey(key);
    const cached = this.#cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.viewer;
    const row = await this.#db.apiKey.findUnique({ where: { keyHash: hash } });
    const viewer: Viewer | null = row && !row.revokedAt ? { kind: 'key', keyId: row.id, role: row.role, userId: row.userId } : null;
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(hash, { viewer, until: Date.now() + CACHE_TTL_MS });
    return viewer;
  }

  /**
   * On a server's first start (no keys at all): stores CONVEYOR_ADMIN_KEY, or creates an admin key
   * and returns it so that it can be shown once. Serialised by an advisory lock, so that processes
   * starting together create one key, not several.
   */
  async bootstrapAdminKey(fromEnvironment: string | null): Promise<{ created: string | null; imported: boolean }> {
    return this.#db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(${ADVISORY_LOCKS.bootstrapAdminKey}::bigint)`;
      if ((await tx.apiKey.count()) > 0) return { created: null, imported: false };
      const store = new ApiKeyStore(tx as unknown as PrismaClient);
      if (fromEnvironment) {
        await store.importAdminKey(fromEnvironment, 'bootstrap admin (CONVEYOR_ADMIN_KEY)');
        return { created: null, imported: true };
      }
      const { key } = await store.create({ name: 'bootstrap admin', role: 'ADMIN' });
      return { created: key, imported: false };
    });
  }
}

/** The listing fields of a row (never its hash). */
function toInfo({ id, name, keyPrefix, role, userId, createdAt, revokedAt }: ApiKeyInfo): ApiKeyInfo {
  return { id, name, keyPrefix, role, userId, createdAt, revokedAt };
}

/** The key in an `Authorization: Bearer …` value (HTTP header or graphql-ws connectionParams). */
export function bearerKey(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const match = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return match ? match[1]! : null;
}
