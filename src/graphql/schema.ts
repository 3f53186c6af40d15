import { lexicographicSortSchema, printSchema, validateSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './types/job.js';
import './types/jobQueries.js';
import './types/jobMutations.js';
import './types/jobSearch.js';
import './types/jobSubscriptions.js';
import './types/jobLogs.js';
import './types/queueStats.js';
import './types/userConcurrency.js';
import './types/health.js';
import './types/apiKeys.js';
import './types/jobTypes.js';
import './types/outsideWorkers.js';
import './types/workerEvents.js';
import './types/schedules.js';
import './types/flowGates.js';
import './types/throughput.js';
import './types/flows.js';
import type { AnyJobType } from '../jobTypes/jobType.js';
import { withJobTypeFields } from './jobTypeSchema.js';

/** The API for these job types: the generic schema, plus each type's typed submit and result. */
export function buildSchema(jobTypes: readonly AnyJobType[] = []): GraphQLSchema {
  const schema = withJobTypeFields(builder.toSchema(), jobTypes);
  // Checked here, at start-up, so a job type GraphQL cannot express stops the server with the reason
  // instead of failing every request with an internal error.
  const problems = validateSchema(schema);
  if (problems.length > 0) throw new Error(`The job types make an invalid GraphQL schema: ${problems.map((p) => p.message).join('; ')}`);
  return schema;
}

/** A schema's SDL, sorted so that diffs show real changes only (schema.graphql is the demo types'). */
export function printSchemaSdl(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
