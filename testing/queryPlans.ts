import type { Prisma } from '../src/generated/prisma/client.js';
import type { Db } from '../src/queue/sql/fragments.js';
import { withClient } from './database.js';

/** Builds a statement exactly as the queue sends it, without running it. */
export const statementOf = (build: (db: Db) => unknown) =>
  build({ $queryRaw: (query: Prisma.Sql) => query, $executeRaw: (query: Prisma.Sql) => query } as unknown as Db) as Prisma.Sql;

/** One node of an EXPLAIN (FORMAT JSON) plan. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  /** The CTE a `CTE Scan` reads. */
  'CTE Name'?: string;
  /** Set on the top node of a CTE or subplan: `CTE name`, `InitPlan 3`, … */
  'Subplan Name'?: string;
  'Actual Rows'?: number;
  /** How many times the node ran (Actual Rows is per run). */
  'Actual Loops'?: number;
  /** Rows read and dropped by the node's conditions (per run). */
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  Plans?: PlanNode[];
}

/** A plan node and every node under it. */
export const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

/** EXPLAIN ANALYZE of `statement` on `databaseUrl`, inside a transaction that is rolled back; returns every plan node. */
export const explainAnalyze = (databaseUrl: string, statement: Prisma.Sql) =>
  withClient(databaseUrl, async (client) => {
    await client.query('BEGIN');
    try {
      const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`, statement.values);
      return nodesOf(rows[0]['QUERY PLAN'][0].Plan as PlanNode);
    } finally {
      await client.query('ROLLBACK');
    }
  });

/**
 * EXPLAIN ANALYZE of `statement` with the plan PostgreSQL makes once for every execution of a prepared
 * statement (a generic plan: it assumes ten items an array), in a transaction that is rolled back.
 */
export const explainAnalyzeGeneric = (databaseUrl: string, statement: Prisma.Sql) =>
  withClient(databaseUrl, async (client) => {
    await client.query('BEGIN');
    try {
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query(`PREPARE explained AS ${statement.text}`);
      // The statements' values: strings, numbers, booleans, nulls, and arrays of them.
      const text = (value: unknown) =>
        typeof value === 'string' ? value : typeof value === 'bigint' ? value.toString() : JSON.stringify(value);
      const literal = (value: unknown): string => {
        if (value === null || value === undefined) return 'NULL';
        if (!Array.isArray(value)) return client.escapeLiteral(text(value));
        const items = value.map((item: unknown) => (item === null ? 'NULL' : `"${text(item).replace(/["\\]/g, '\\$&')}"`));
        return client.escapeLiteral(`{${items.join(',')}}`);
      };
      const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained(${statement.values.map(literal).join(', ')})`);
      return nodesOf(rows[0]['QUERY PLAN'][0].Plan as PlanNode);
    } finally {
      await client.query('ROLLBACK');
    }
  });
