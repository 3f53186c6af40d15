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
  /** Set on the top node of a CTE or subplan: `CTE name`, `InitPlan 3`, … */
  'Subplan Name'?: string;
  'Actual Rows'?: number;
  /** How many times the node ran (Actual Rows is per run). */
  'Actual Loops'?: number;
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
