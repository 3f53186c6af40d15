import { Writable } from 'node:stream';
import { getOperationAST, parse } from 'graphql';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JobDocument,
  SchedulesDocument,
  SubmitFlowDocument,
  SubmitJobDocument,
  UpsertScheduleDocument,
} from '../src/client/generated/graphql.js';
import { createMaskError } from '../src/server/errorMasking.js';
import { COMPILE_AFTER_RUNS, useCompiledExecution, variablesCompileSafely } from '../src/server/plugins/useCompiledExecution.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { execute, executeOk, postGraphQL } from '../testing/graphqlClient.js';

/** A few more runs than it takes to compile a document. */
const RUNS = COMPILE_AFTER_RUNS + 3;

describe('useCompiledExecution (a small schema in Yoga, in process)', () => {
  const schema = createSchema({
    typeDefs: /* GraphQL */ `
      input Tree {
        value: Int!
        children: [Tree!]
      }
      input Forest {
        trees: [Tree!]!
      }
      type Query {
        double(n: Int!): Int!
        sum(tree: Tree!): Int!
        count(forest: Forest!): Int!
      }
    `,
    resolvers: {
      Query: {
        double: (_: unknown, { n }: { n: number }) => 2 * n,
        sum: (_: unknown, { tree }: { tree: Tree }) => sumOf(tree),
        count: (_: unknown, { forest }: { forest: { trees: Tree[] } }) => forest.trees.length,
      },
    },
  });
  interface Tree {
    value: number;
    children?: Tree[] | null;
  }
  const sumOf = (tree: Tree): number => tree.value + (tree.children ?? []).reduce((total, child) => total + sumOf(child), 0);

  /** Whether each execution ran graphql-yoga's own executor or the one the plugin set. */
  const runs: ('interpreted' | 'compiled')[] = [];
  let interpreter: unknown = null;
  const before: Plugin = {
    onExecute({ executeFn }) {
      interpreter = executeFn;
    },
  };
  const after: Plugin = {
    onExecute({ executeFn }) {
      runs.push(executeFn === interpreter ? 'interpreted' : 'compiled');
    },
  };
  const yoga = createYoga({ schema, plugins: [before, useCompiledExecution(schema), after], logging: false });
  const run = async (query: string, variables: Record<string, unknown> = {}, operationName?: string) => {
    const response = await yoga.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables, operationName }),
    });
    return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string }[] };
  };
  const runMany = async (query: string, variables: Record<string, unknown>) => {
    runs.length = 0;
    const answers = [];
    for (let i = 0; i < RUNS; i++) answers.push(await run(query, variables));
    return answers;
  };

  it('compiles a repeated document on its COMPILE_AFTER_RUNS-th run, with the same answers and variable errors', async () => {
    const answers = await runMany('query ($n: Int!) { double(n: $n) }', { n: 21 });
    expect(answers).toEqual(Array.from({ length: RUNS }, () => ({ data: { double: 42 } })));
    expect(runs.indexOf('compiled')).toBe(COMPILE_AFTER_RUNS - 1);
    expect(runs.slice(COMPILE_AFTER_RUNS - 1).every((kind) => kind === 'compiled')).toBe(true);
    // A bad variable on the compiled path is still an error without data.
    const bad = await run('query ($n: Int!) { double(n: $n) }', { n: 'x' });
    expect(runs.at(-1)).toBe('compiled');
    expect(bad.data).toBeUndefined();
    expect(bad.errors?.[0]?.message).toMatch(/\$n/);
  });

  it('leaves to graphql-js a document whose variable has a default (graphql-jit would drop it)', async () => {
    const answers = await runMany('query ($n: Int! = 5) { double(n: $n) }', {});
    expect(answers).toEqual(Array.from({ length: RUNS }, () => ({ data: { double: 10 } })));
    expect(runs).not.toContain('compiled');
  });

  it('compiles each operation of a document on its own', async () => {
    const document = 'query Double($n: Int!) { double(n: $n) } query Sum($tree: Tree!) { sum(tree: $tree) } query Twice { double(n: 2) }';
    runs.length = 0;
    for (let i = 0; i < RUNS; i++) {
      expect(await run(document, { n: i }, 'Double')).toEqual({ data: { double: 2 * i } });
      expect(await run(document, { tree: { value: i } }, 'Sum')).toEqual({ data: { sum: i } });
      expect(await run(document, {}, 'Twice')).toEqual({ data: { double: 4 } });
    }
    // Double and Twice compiled on their 10th run each; Sum (a recursive input) never.
    expect(runs.filter((kind) => kind === 'compiled')).toHaveLength(2 * (RUNS - COMPILE_AFTER_RUNS + 1));
  });

  it('compiles only documents whose variables have no default and no input type that reaches itself', () => {
    const safely = (query: string) => variablesCompileSafely(schema, getOperationAST(parse(query))!);
    expect(safely('query ($n: Int!) { double(n: $n) }')).toBe(true);
    expect(safely('query ($n: Int! = 5) { double(n: $n) }')).toBe(false);
    expect(safely('query ($tree: Tree!) { sum(tree: $tree) }')).toBe(false);
    expect(safely('query ($trees: [Tree!]!) { __typename }')).toBe(false);
    // Forest does not contain itself, but the Tree it holds does.
    expect(safely('query ($forest: Forest!) { count(forest: $forest) }')).toBe(false);
  });

  it('leaves to graphql-js a document with a recursive input type (compiling its coercion overflows the stack)', async () => {
    const tree = { value: 1, children: [{ value: 2, children: [{ value: 3 }] }, { value: 4 }] };
    const answers = await runMany('query ($tree: Tree!) { sum(tree: $tree) }', { tree });
    expect(answers).toEqual(Array.from({ length: RUNS }, () => ({ data: { sum: 10 } })));
    expect(runs).not.toContain('compiled');
  });
});

describe('errors graphql-jit raises itself, masked as graphql-js’s are', () => {
  it('answers a null for a non-null field the same on every run, compiled or not: 200, the data, one masked error logged as a defect', async () => {
    const schema = createSchema({
      typeDefs: /* GraphQL */ `
        type Thing {
          ok: Int!
          broken: Int!
        }
        type Query {
          thing: Thing
          other: Int!
        }
      `,
      resolvers: { Query: { thing: () => ({ ok: 1, broken: null }), other: () => 7 } },
    });
    const logged: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({ write: (chunk, _enc, done) => (logged.push(JSON.parse(String(chunk))), done()) }),
    );
    const yoga = createYoga({
      schema,
      plugins: [useCompiledExecution(schema)],
      logging: false,
      maskedErrors: { maskError: createMaskError(logger) },
    });
    const answers = [];
    for (let i = 0; i < RUNS; i++) {
      const response = await yoga.fetch('http://yoga/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ thing { ok broken } other }' }),
      });
      answers.push({ status: response.status, body: (await response.json()) as unknown });
    }
    // graphql-js wraps the failure around an Error; graphql-jit (from the 10th run) raises it bare,
    // with a path and no extensions, which was taken for the client's: 500, the data lost.
    expect(answers).toEqual(
      Array.from({ length: RUNS }, () => ({
        status: 200,
        body: {
          data: { thing: null, other: 7 },
          errors: [expect.objectContaining({ message: 'Unexpected error.', path: ['thing', 'broken'] })],
        },
      })),
    );
    expect(logged.filter((line) => line.level === 50 && line.msg === 'unexpected error in a GraphQL operation')).toHaveLength(RUNS);
  });
});

describe('compiled execution in a Conveyor server', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor.close());

  it('answers a repeated job query, a bad variable and the documents it leaves to graphql-js as before', async () => {
    const { submitJob } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'echo', userId: 'compiled', payload: { message: 'hi' }, tags: ['a'] },
    });
    await executeOk(conveyor.graphqlUrl, UpsertScheduleDocument, {
      input: { name: 'hourly', cron: '0 * * * *', job: { type: 'echo', userId: 'compiled' } },
    });
    const jobs = [];
    for (let i = 0; i < RUNS; i++) jobs.push(await execute(conveyor.graphqlUrl, JobDocument, { id: submitJob.job.id }));
    expect(jobs[0]?.data?.job).toMatchObject({ id: submitJob.job.id, status: 'QUEUED', tags: ['a'] });
    for (const answer of jobs) expect(answer).toEqual(jobs[0]);
    for (let i = 0; i < RUNS; i++) {
      // The schedules query's $nextRuns has a default; submitFlow's input is recursive.
      const { schedules } = await executeOk(conveyor.graphqlUrl, SchedulesDocument, {});
      expect(schedules[0]?.nextRuns).toHaveLength(3);
      const { submitFlow } = await executeOk(conveyor.graphqlUrl, SubmitFlowDocument, {
        input: {
          job: { type: 'echo', userId: 'flows' },
          children: [{ job: { type: 'echo', userId: 'flows' }, children: [{ job: { type: 'echo', userId: 'flows' } }] }],
        },
      });
      expect(submitFlow.jobs).toHaveLength(3);
      const bad = await postGraphQL(conveyor.graphqlUrl, {
        query: 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }',
        variables: { input: { type: 'echo', userId: 'compiled', priority: 'high' } },
      });
      expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });
});
