import { jsonSchemaOf, pascalName } from '../jobTypeSchema.js';
import type { AnyJobType } from '../../jobTypes/jobType.js';
import { builder } from '../builder.js';

/** A job type's contract, as clients and GraphiQL read it. */
const JobTypeRef = builder.objectRef<{ definition: AnyJobType; defaultMaxAttempts: number }>('JobType').implement({
  description: 'A job type this server knows: what a submit must send, what its jobs return, and its defaults.',
  fields: (t) => ({
    name: t.string({ resolve: ({ definition }) => definition.name }),
    payloadSchema: t.field({
      type: 'JSON',
      description: "JSON Schema of the payload a submit sends (made from the type's zod schema).",
      resolve: ({ definition }) => jsonSchemaOf(definition.payload, 'input'),
    }),
    resultSchema: t.field({
      type: 'JSON',
      nullable: true,
      description: 'JSON Schema of the result, when the type declares one.',
      resolve: ({ definition }) => (definition.result ? jsonSchemaOf(definition.result, 'output') : null),
    }),
    handledHere: t.boolean({
      description: "Whether this server's built-in worker runs it; otherwise outside workers do.",
      resolve: ({ definition }) => definition.handler !== undefined,
    }),
    maxAttempts: t.int({
      description: 'Attempts a job of this type gets unless its submit says otherwise.',
      resolve: ({ definition, defaultMaxAttempts }) => definition.maxAttempts ?? defaultMaxAttempts,
    }),
    timeoutMs: t.int({
      nullable: true,
      description: 'The built-in worker aborts a run after this long.',
      resolve: ({ definition }) => definition.timeoutMs ?? null,
    }),
    typedSubmit: t.string({
      nullable: true,
      description: 'The mutation that submits this type with its payload typed (null when the payload cannot be typed in GraphQL).',
      resolve: ({ definition }, _args, _ctx, info) => {
        const name = `submit${pascalName(definition.name) ?? ''}`;
        return info.schema.getMutationType()?.getFields()[name] ? name : null;
      },
    }),
  }),
});

builder.queryFields((t) => ({
  jobTypes: t.field({
    type: [JobTypeRef],
    description: 'Every job type this server knows, with its payload and result schemas, limits and defaults.',
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: (_root, _args, ctx) =>
      ctx.jobTypes.all().map((definition) => ({ definition, defaultMaxAttempts: ctx.queue.settings.defaultMaxAttempts })),
  }),
}));
