import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLFloat,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  type GraphQLFieldConfig,
  type GraphQLFieldConfigMap,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLScalarType,
} from 'graphql';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { z } from 'zod';
import type { AnyJobType } from '../jobTypes/jobType.js';

/**
 * Each job type's contract as GraphQL types, so that GraphiQL autocompletes payloads and codegen gives
 * typed clients in any language: `submit<Type>(input: <Type>SubmitInput!)` beside the generic
 * `submitJob`, and `Job.<type>Result` typed from the type's result schema. Made from the zod schemas
 * through their JSON Schema (zod's toJSONSchema); a part JSON Schema cannot say in GraphQL (a union, a
 * record) becomes the JSON scalar, and a type whose payload is not an object of named fields gets no
 * typed submit (the generic submitJob still takes it).
 */

interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  description?: string;
  additionalProperties?: unknown;
}

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const INT32 = 2 ** 31 - 1;

/** `send_email` → `SendEmail`; null when that is not a GraphQL name. */
export function pascalName(jobType: string): string | null {
  const name = jobType
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  return NAME.test(name) ? name : null;
}

/** The JSON Schema of a zod schema, as a client sends it (`input`: defaults optional) or reads it (`output`). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
}

/** An object GraphQL can type: at least one field (GraphQL has no empty object), each a GraphQL name. */
/**
 * The fields of an object type (input or output) made from a JSON Schema object: each property's type
 * from `typeOf`, under the object's name followed by the property's, non-null when required and null
 * is not one of its values (`z.string().nullable()` is required, and may be null).
 */
function fieldsOf<T extends GraphQLInputType | GraphQLOutputType>(
  schema: JsonSchema & { properties: Record<string, JsonSchema> },
  name: string,
  typeOf: (inner: JsonSchema, name: string) => T,
) {
  const required = new Set(schema.required ?? []);
  return Object.fromEntries(
    Object.entries(schema.properties).map(([key, inner]) => {
      const type = typeOf(inner, `${name}${pascalName(key) ?? key}`);
      return [key, { type: required.has(key) && !admitsNull(inner) ? new GraphQLNonNull(type) : type, description: inner.description }];
    }),
  );
}

/** Whether null is a value of the schema: its type says so, one of its branches does, or it says nothing of types. */
function admitsNull(schema: JsonSchema): boolean {
  const branches = [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
  if (branches.length > 0) return branches.some(admitsNull);
  if (schema.type === undefined) return schema.enum === undefined || schema.enum.includes(null);
  return schema.type === 'null' || (Array.isArray(schema.type) && schema.type.includes('null'));
}

function hasNamedFields(schema: JsonSchema): schema is JsonSchema & { properties: Record<string, JsonSchema> } {
  const keys = Object.keys(schema.properties ?? {});
  return keys.length > 0 && keys.every((key) => NAME.test(key));
}

/** Builds GraphQL types from JSON Schemas, naming nested ones after their path, each name once. */
class TypeMaker {
  readonly #made = new Map<string, GraphQLNamedType>();
  constructor(
    readonly json: GraphQLScalarType,
    readonly taken: (name: string) => boolean,
  ) {}

  #unique<T extends GraphQLNamedType>(name: string, make: () => T): T | null {
    if (this.taken(name) || this.#made.has(name)) return null;
    const type = make();
    this.#made.set(name, type);
    return type;
  }

  made(): GraphQLNamedType[] {
    return [...this.#made.values()];
  }

  input(schema: JsonSchema, name: string): GraphQLInputType {
    const kind = Array.isArray(schema.type) ? null : schema.type;
    if (kind === 'object' && hasNamedFields(schema)) {
      const fields = () => fieldsOf(schema, name, (inner, innerName) => this.input(inner, innerName));
      return this.#unique(name, () => new GraphQLInputObjectType({ name, fields })) ?? this.json;
    }
    if (kind === 'array' && schema.items) return new GraphQLList(new GraphQLNonNull(this.input(schema.items, `${name}Item`)));
    return this.#leaf(schema, name) ?? this.json;
  }

  output(schema: JsonSchema, name: string): GraphQLOutputType {
    const kind = Array.isArray(schema.type) ? null : schema.type;
    if (kind === 'object' && hasNamedFields(schema)) {
      const fields = () => fieldsOf(schema, name, (inner, innerName) => this.output(inner, innerName));
      return this.#unique(name, () => new GraphQLObjectType({ name, fields })) ?? this.json;
    }
    if (kind === 'array' && schema.items) return new GraphQLList(this.output(schema.items, `${name}Item`));
    return this.#leaf(schema, name) ?? this.json;
  }

  #leaf(schema: JsonSchema, name: string): GraphQLScalarType | GraphQLEnumType | null {
    if (schema.enum?.every((value) => typeof value === 'string' && NAME.test(value))) {
      const values = schema.enum as string[];
      return this.#unique(name, () => new GraphQLEnumType({ name, values: Object.fromEntries(values.map((value) => [value, { value }])) }));
    }
    switch (schema.type) {
      case 'string':
        return GraphQLString;
      case 'boolean':
        return GraphQLBoolean;
      case 'number':
        return GraphQLFloat;
      case 'integer':
        // GraphQL's Int is 32 bits; a wider integer travels as a Float.
        return Math.abs(schema.minimum ?? -Infinity) <= INT32 + 1 && Math.abs(schema.maximum ?? Infinity) <= INT32
          ? GraphQLInt
          : GraphQLFloat;
      default:
        return null;
    }
  }
}

/**
 * The schema with each job type's typed submit and typed result added. `submitJob`'s and `Job.result`'s
 * own resolvers do the work (auth scopes, validation, the response budget), so a typed field behaves
 * exactly as the generic one it stands for.
 */
export function withJobTypeFields(base: GraphQLSchema, jobTypes: readonly AnyJobType[]): GraphQLSchema {
  const config = base.toConfig();
  const mutation = base.getMutationType()!;
  const jobType = base.getType('Job') as GraphQLObjectType;
  const submitJob = mutation.getFields().submitJob!;
  const result = jobType.getFields().result!;
  const json = base.getType('JSON') as GraphQLScalarType;
  const maker = new TypeMaker(json, (name) => base.getType(name) !== undefined);

  const submits: GraphQLFieldConfigMap<unknown, unknown> = {};
  const results: GraphQLFieldConfigMap<unknown, unknown> = {};
  // Which job type each name prefix (`SendEmail`) went to. A type whose typed fields would take a
  // built-in field (a type `job`: submitJob) or another type's (`send_email` and `send-email`) stops
  // start-up: replacing submitJob, or quietly leaving a type without its fields, broke clients instead.
  const prefixOwners = new Map<string, string>();
  const refuse = (definition: AnyJobType, what: string) => {
    throw new Error(`Job type "${definition.name}" would make ${what}: rename the job type.`);
  };
  for (const definition of jobTypes) {
    const name = pascalName(definition.name);
    if (!name) continue;
    const payloadSchema = jsonSchemaOf(definition.payload, 'input');
    // A payload with no fields at all (`z.object({})`) gets a typed submit without a payload argument.
    // (A record or loose object allows other keys, so it stays untyped: only submitJob takes it.)
    const noFields =
      payloadSchema.type === 'object' &&
      payloadSchema.properties !== undefined &&
      Object.keys(payloadSchema.properties).length === 0 &&
      payloadSchema.additionalProperties === undefined;
    const typed = definition.result !== undefined || (payloadSchema.type === 'object' && payloadSchema.properties !== undefined);
    if (typed) {
      const owner = prefixOwners.get(name);
      if (owner !== undefined) refuse(definition, `the GraphQL names of job type "${owner}" (submit${name}, ${name}Result)`);
      prefixOwners.set(name, definition.name);
      if (mutation.getFields()[`submit${name}`]) refuse(definition, `the typed mutation submit${name}, which is built in`);
      const resultField = `${name[0]!.toLowerCase()}${name.slice(1)}Result`;
      if (definition.result && jobType.getFields()[resultField]) refuse(definition, `the field Job.${resultField}, which is built in`);
    }
    const payload = noFields ? null : maker.input(payloadSchema, `${name}PayloadInput`);
    if (noFields || payload instanceof GraphQLInputObjectType) {
      const input = new GraphQLInputObjectType({
        name: `${name}SubmitInput`,
        description: `A job of type "${definition.name}": its payload typed, the rest as in SubmitJobInput.`,
        fields: () => ({
          ...Object.fromEntries(
            Object.entries(
              (submitJob.args.find((arg) => arg.name === 'input')!.type as GraphQLNonNull<GraphQLInputObjectType>).ofType.getFields(),
            )
              .filter(([field]) => field !== 'type' && field !== 'payload')
              .map(([field, spec]) => [field, { type: spec.type, description: spec.description }]),
          ),
          ...(payload ? { payload: { type: new GraphQLNonNull(payload) } } : {}),
        }),
      });
      submits[`submit${name}`] = {
        type: submitJob.type,
        description: `Submits a job of type "${definition.name}" (submitJob with the payload typed).`,
        args: { input: { type: new GraphQLNonNull(input) } },
        resolve: (root, args: { input: Record<string, unknown> }, context, info) =>
          submitJob.resolve!(root, { input: { payload: {}, ...args.input, type: definition.name } }, context, info),
      } satisfies GraphQLFieldConfig<unknown, unknown>;
    }
    if (definition.result) {
      const resultSchema = definition.result;
      const fieldName = `${name[0]!.toLowerCase()}${name.slice(1)}Result`;
      results[fieldName] = {
        type: maker.output(jsonSchemaOf(definition.result, 'output'), `${name}Result`),
        description:
          `The result, typed, when this is a completed job of type "${definition.name}"; null otherwise, and null when the ` +
          "stored result does not match the type's result schema (one stored before the schema changed, or an outside worker's " +
          'for a type that has a handler: ' +
          '`result` has it as it is).',
        resolve: async (job, args, context, info) => {
          if ((job as { type?: string }).type !== definition.name) return null;
          const stored: unknown = await result.resolve!(job, args, context, info);
          return stored != null && resultSchema.safeParse(stored).success ? stored : null;
        },
      } satisfies GraphQLFieldConfig<unknown, unknown>;
    }
  }
  if (Object.keys(submits).length === 0 && Object.keys(results).length === 0) return base;

  // The new types first (they reference only types already there), then Job and Mutation with the
  // new fields: mapSchema rebuilds every type that points at either, so no stale copy is left.
  const withTypes = new GraphQLSchema({ ...config, types: [...config.types, ...maker.made()] });
  return mapSchema(withTypes, {
    [MapperKind.OBJECT_TYPE]: (type) => {
      if (type.name !== 'Job') return type;
      const own = type.toConfig();
      return new GraphQLObjectType({ ...own, fields: { ...own.fields, ...results } as typeof own.fields });
    },
    [MapperKind.MUTATION]: (type) => {
      const own = type.toConfig();
      return new GraphQLObjectType({ ...own, fields: { ...own.fields, ...submits } as typeof own.fields });
    },
  });
}
