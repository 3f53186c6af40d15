import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './types/job.js';
import './types/jobQueries.js';
import './types/jobMutations.js';
import './types/jobSubscriptions.js';
import './types/queueStats.js';
import './types/userConcurrency.js';
import './types/health.js';
import './types/apiKeys.js';
import './types/outsideWorkers.js';

export function buildSchema(): GraphQLSchema {
  return builder.toSchema();
}

/** The SDL committed as schema.graphql (sorted, so that diffs show real changes only). */
export function printSchemaSdl(schema: GraphQLSchema = buildSchema()): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
