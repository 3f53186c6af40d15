import { z } from 'zod';
import type { Logger } from '../logger.js';
import type { JobRow } from '../scheduler/sql.js';
import { InvalidInputError } from '../errors.js';

/** What a handler gets besides its payload. */
export interface JobContext {
  job: JobRow;
  /** Fires when the job is cancelled, times out, or the worker shuts down past its grace period. */
  signal: AbortSignal;
  /** Reports progress (0–100) to subscribers; throttled by the worker. */
  reportProgress(percent: number, message?: string): void;
  logger: Logger;
}

export interface JobTypeDefinition<Payload = unknown> {
  name: string;
  /** Validates (and may normalise) the payload at submit time. */
  payload: z.ZodType<Payload>;
  /** Runs the job in the built-in worker. Without one, the type is for outside workers only. */
  handler?: (payload: Payload, context: JobContext) => Promise<unknown>;
  /** The built-in worker aborts a run after this long and counts it as a failed attempt. */
  timeoutMs?: number;
  /** Default attempts for jobs of this type (a submit may override). */
  maxAttempts?: number;
}

/** Throw from a handler to fail the job at once, without the retries it has left. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/** The job types a process knows: submit validates against it, the worker runs its handlers. */
export class JobTypeRegistry {
  readonly #types = new Map<string, JobTypeDefinition<any>>();

  register<Payload>(definition: JobTypeDefinition<Payload>): this {
    if (this.#types.has(definition.name)) throw new Error(`job type ${definition.name} is registered twice`);
    this.#types.set(definition.name, definition);
    return this;
  }

  /** A type run by outside workers: any JSON object payload. */
  registerExternal(name: string): this {
    return this.register({ name, payload: z.record(z.string(), z.unknown()) });
  }

  get(name: string): JobTypeDefinition | undefined {
    return this.#types.get(name);
  }

  names(): string[] {
    return [...this.#types.keys()];
  }

  /** Names of the types this process can run itself. */
  handledTypes(): string[] {
    return [...this.#types.values()].filter((t) => t.handler).map((t) => t.name);
  }

  /** The payload as the type's schema parses it; InvalidInputError naming what is wrong otherwise. */
  parsePayload(type: string, payload: unknown): unknown {
    const definition = this.#types.get(type);
    if (!definition) {
      throw new InvalidInputError(`Unknown job type "${type}". Known types: ${this.names().join(', ') || 'none'}.`);
    }
    const parsed = definition.payload.safeParse(payload);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'payload'}: ${i.message}`);
      throw new InvalidInputError(`Invalid payload for job type "${type}": ${problems.join('; ')}`);
    }
    return parsed.data;
  }
}
