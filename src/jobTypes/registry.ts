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

  /**
   * What to store of a submitted payload (to be written as JSON): InvalidInputError naming what is
   * wrong when the type's schema refuses it. The parsed payload, defaults filled in, when the schema's
   * output is plain JSON that parses to itself (outside workers in any language read it complete);
   * else the payload as submitted, checked as the worker will read it (from JSON), so that the schema
   * runs on it once, when a worker claims it. Stored as parsed, a transform ran twice (amount 1.5 →
   * 150 stored → 15 000 in the handler), and a Date passed at submit and failed at every claim.
   */
  payloadToStore(type: string, payload: unknown): unknown {
    const definition = this.#types.get(type);
    if (definition && !outputIsPlainJson(definition.payload)) {
      const asJson: unknown = JSON.parse(JSON.stringify(payload));
      this.parsePayload(type, asJson);
      return asJson;
    }
    return this.parsePayload(type, payload);
  }

  /**
   * Whether some type run by outside workers (no handler here) has a result schema: their completions
   * are then checked (checkOutsideResult). A type with a handler is checked by it (runHandler).
   */
  hasOutsideResultSchemas(): boolean {
    return this.all().some((definition) => definition.result !== undefined && !definition.handler);
  }

  /** InvalidInputError when `type` is run by outside workers and has a result schema that `result` does not match. */
  checkOutsideResult(type: string | undefined, result: unknown): void {
    const definition = type === undefined ? undefined : this.#types.get(type);
    const schema = definition?.handler ? undefined : definition?.result;
    const checked = schema?.safeParse(result);
    if (checked && !checked.success) {
      throw new InvalidInputError(`result does not match job type "${type}"'s result schema: ${describeIssues(checked.error, 'result')}`);
    }
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

const plainJson = new WeakMap<z.ZodType, boolean>();

/**
 * Whether what `schema` returns is plain JSON of the shape it accepts: zod can write its output as JSON
 * Schema (no transform, Date or bigint), the same as its input but for required fields (defaults) and
 * closed objects. A pipe or coerce to another type, a transform, a Date make this false.
 */
function outputIsPlainJson(schema: z.ZodType): boolean {
  let plain = plainJson.get(schema);
  if (plain === undefined) {
    const shape = (io: 'input' | 'output') =>
      JSON.stringify(z.toJSONSchema(schema, { io, unrepresentable: 'throw' }), (key, value: unknown) =>
        key === 'required' || key === 'additionalProperties' ? undefined : value,
      );
    try {
      plain = shape('input') === shape('output');
    } catch {
      plain = false;
    }
    plainJson.set(schema, plain);
  }
  return plain;
}
