import { InvalidInputError } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';
import { currentTraceParent } from '../tracing.js';
import type { UniqueInput } from './uniqueness.js';
import { postgresErrorOf } from '../db/postgresError.js';

/** What conveyor_submit_job takes (the database checks it; the payload is validated when claimed). */
export interface TransactionalSubmit {
  type: string;
  userId: string;
  payload?: Record<string, unknown>;
  priority?: number;
  runAt?: Date;
  maxAttempts?: number;
  idempotencyKey?: string;
  backoffBaseMs?: number;
  tags?: readonly string[];
  metadata?: Record<string, unknown>;
  /** Unique for a while, throttled or debounced (see uniqueness.ts); needs READ COMMITTED, the default. */
  unique?: UniqueInput;
}

/** Anything with Prisma's raw query: an interactive transaction client (`prisma.$transaction(async (tx) => …)`). */
interface RawQueries {
  $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Prisma.PrismaPromise<T>;
}

/**
 * Submits a job inside the caller's Prisma transaction: the job exists, and its event goes out, only
 * if that transaction commits. It takes the user's slot as submitJob does. Returns the job's id (an
 * idempotency key the user already used returns that job's id). Input the database refuses is
 * InvalidInputError; the transaction is then aborted, as after any failed statement.
 */
export async function submitJobInTransaction(tx: RawQueries, input: TransactionalSubmit): Promise<string> {
  try {
    const [row] = await tx.$queryRaw<{ id: string }[]>`
      SELECT conveyor_submit_job(
        type => ${input.type}, user_id => ${input.userId}, payload => ${JSON.stringify(input.payload ?? {})}::jsonb,
        priority => ${input.priority ?? 0}::int, run_at => ${input.runAt ?? null}::timestamptz,
        max_attempts => ${input.maxAttempts ?? null}::int, idempotency_key => ${input.idempotencyKey ?? null}::text,
        backoff_base_ms => ${input.backoffBaseMs ?? null}::int, trace_parent => ${currentTraceParent()}::text,
        tags => ${[...(input.tags ?? [])]}::text[], metadata => ${JSON.stringify(input.metadata ?? {})}::jsonb,
        unique_key => ${input.unique?.key ?? null}::text, unique_for_ms => ${input.unique?.forMs ?? null}::int,
        unique_mode => ${input.unique?.mode ?? 'UNIQUE_FOR'}::text
      )::text AS id`;
    return row!.id;
  } catch (error) {
    const refused = postgresErrorOf(error);
    // 22023 invalid_parameter_value: what conveyor_submit_job raises for input it refuses.
    if (refused?.sqlState === '22023') throw new InvalidInputError(refused.message || 'conveyor_submit_job refused its input.');
    throw error;
  }
}
