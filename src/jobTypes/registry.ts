import { z } from 'zod';
import { describeIssues, type AnyJobType, type JobTypeDefinition } from './jobType.js';
import { InvalidInputError } from '../errors.js';

/** The job types a process knows: submit validates against it, the worker runs its handlers. */
export class JobTypeRegistry {
  readonly #types = new Map<string, AnyJobType>();

  /** The registry of these definitions, plus `external` types (for outside workers) not among them. */
  static of(definitions: readonly AnyJobType[], external: readonly string[] = []): JobTypeRegistry {
    const registry = new JobTypeRegistry();
    for (const definition of definitions) registry.register(definition);
    for (const name of external) if (!registry.get(name)) registry.registerExternal(name);
    return registry;
  }

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

  /** Every type this process knows. */
  all(): JobTypeDefinition[] {
    return [...this.#types.values()];
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
      throw new InvalidInputError(`Invalid payload for job type "${type}": ${describeIssues(parsed.error, 'payload')}`);
    }
    return parsed.data;
  }
}
