import { isInputObjectType, isNonNullType, type GraphQLSchema } from 'graphql';
import type { AnyJobType } from '../jobTypes/jobType.js';
import { jsonSchemaOf, pascalName } from './jobTypeSchema.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  minimum?: number;
  format?: string;
  default?: unknown;
}

/** A plausible value for a schema, as GraphQL literal text (required fields only). */
function exampleValue(schema: JsonSchema): string {
  if (schema.enum?.length) return typeof schema.enum[0] === 'string' ? schema.enum[0] : JSON.stringify(schema.enum[0]);
  switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
    case 'object': {
      const required = new Set(schema.required ?? []);
      const fields = Object.entries(schema.properties ?? {}).filter(([key]) => required.has(key));
      return `{ ${fields.map(([key, inner]) => `${key}: ${exampleValue(inner)}`).join(', ')} }`;
    }
    case 'array':
      return '[]';
    case 'integer':
    case 'number':
      return String(schema.minimum ?? 1);
    case 'boolean':
      return 'false';
    case 'string':
      return schema.format === 'email' ? '"someone@example.com"' : '"text"';
    default:
      return '{}';
  }
}

/**
 * What GraphiQL opens with: a submit of this server's first job type (its typed mutation when the
 * schema has one), a subscription that watches it, and the jobTypes query — instead of a generic
 * welcome text, so that a team sees its own types.
 */
export function exampleOperation(schema: GraphQLSchema, jobTypes: readonly AnyJobType[]): string {
  const names = jobTypes.map((type) => type.name);
  const header = `# Conveyor. This server's job types: ${names.join(', ') || 'none yet (add them to conveyor.config.ts)'}.
# Run a mutation, then the subscription (it watches the user's jobs live); jobTypes shows each type's schema.
`;
  const watch = `subscription WatchJobs {
  jobUpdated(userId: "alice") { id type status progress result version }
}

query JobTypes {
  jobTypes { name handledHere maxAttempts payloadSchema typedSubmit }
}
`;
  const first = jobTypes[0];
  if (!first) return header + watch;
  const pascal = pascalName(first.name);
  const typed = pascal ? schema.getMutationType()?.getFields()[`submit${pascal}`] : undefined;
  const payload = exampleValue(jsonSchemaOf(first.payload, 'input'));
  // A type whose payload has no fields has a typed submit without a payload argument.
  const typedInput = typed?.args[0]?.type;
  const takesPayload =
    typedInput && isNonNullType(typedInput) && isInputObjectType(typedInput.ofType) && 'payload' in typedInput.ofType.getFields();
  const submit = typed
    ? `mutation Submit${pascal} {
  ${typed.name}(input: { userId: "alice"${takesPayload ? `, payload: ${payload}` : ''} }) {
    deduplicated
    job { id status waitingFor }
  }
}`
    : `mutation SubmitJob {
  submitJob(input: { type: ${JSON.stringify(first.name)}, userId: "alice", payload: ${payload} }) {
    deduplicated
    job { id status waitingFor }
  }
}`;
  return `${header}\n${submit}\n\n${watch}`;
}
