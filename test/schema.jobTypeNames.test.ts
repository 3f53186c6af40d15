import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildSchema } from '../src/graphql/schema.js';
import { defineJobType } from '../src/jobTypes/jobType.js';
import { JobTypeRegistry } from '../src/jobTypes/registry.js';

const typed = (name: string) => defineJobType({ name, payload: z.object({ to: z.string() }), result: z.object({ sent: z.boolean() }) });

describe("job types' typed GraphQL names", () => {
  it('a type whose typed submit would replace a built-in mutation stops start-up, naming it', () => {
    // Before, a type `job` replaced submitJob itself: every generic submit failed validation.
    expect(() => buildSchema([typed('job')])).toThrow('Job type "job" would make the typed mutation submitJob, which is built in');
    expect(() => buildSchema([typed('flow')])).toThrow('submitFlow, which is built in');
  });

  it('two types with the same GraphQL name stop start-up, naming both', () => {
    // Before, the second got no typed submit, silently.
    expect(() => buildSchema([typed('send_email'), typed('send-email')])).toThrow(
      'Job type "send-email" would make the GraphQL names of job type "send_email" (submitSendEmail, SendEmailResult)',
    );
  });

  it('types with no typed fields (outside workers’ any-object payloads) may share a name, or take a built-in one', () => {
    const schema = buildSchema(JobTypeRegistry.of([], ['send_email', 'send-email', 'job']).all());
    expect(
      schema
        .getMutationType()!
        .getFields()
        .submitJob!.args.map((arg) => arg.type.toString()),
    ).toEqual(['SubmitJobInput!']);
  });
});
