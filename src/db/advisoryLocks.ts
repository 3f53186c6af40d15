/**
 * PostgreSQL advisory-lock keys, one per kind of work that must run in one process at a time across
 * every process on the database. 'Conv' in the high bytes keeps them clear of other applications'.
 */
export const ADVISORY_LOCKS = {
  /** Held by the migrator for the whole run (session lock): processes starting together migrate in turn. */
  migrations: 0x436f6e76_0001,
  /** The maintenance leader (transaction lock, tried): one pass at a time. */
  maintenance: 0x436f6e76_0002,
  /** Creating the first admin key (transaction lock): servers starting together create one. */
  bootstrapAdminKey: 0x436f6e76_0003,
} as const;

/**
 * The first key of two-key advisory locks (`pg_advisory_xact_lock(int, int)`, a key space apart from
 * the one-key locks above), the second being a hash of what is locked. A hash collision only makes
 * two unrelated submits wait for each other.
 */
export const ADVISORY_LOCK_CLASSES = {
  /** A user's unique key (src/queue/uniqueness.ts): submits with the same key run one at a time. */
  uniqueKey: 0x436f6e76,
} as const;
