import { readFileSync } from 'node:fs';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { buildSchema, Kind, parse, validate, visit, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../src/queue/limits.js';
import { ARMOR } from '../src/server/app.js';
import { withListSizes } from '../src/server/plugins/useCostOfVariables.js';

const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));
const operations = parse(readFileSync(new URL('../client/operations.graphql', import.meta.url), 'utf8'));

/** What Armor's cost rule finds for `document` (it reports the cost only when over a limit: 0 here). */
function costOf(document: DocumentNode): number {
  const found: string[] = [];
  validate(schema, document, [
    costLimitRule({ maxCost: 0, propagateOnRejection: false, onReject: [(_, error) => found.push(error.message)] }),
  ]);
  return Number(/found (\d+(?:\.\d+)?)/.exec(found.join(' '))?.[1] ?? 0);
}

describe('the cost limit, with page sizes given as variables counted (useCostOfVariables)', () => {
  it('lets every operation of the typed client through at the largest page, and refuses fourteen aliases of one', () => {
    const fragments = operations.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
    const costs = operations.definitions.flatMap((definition) => {
      if (definition.kind !== Kind.OPERATION_DEFINITION) return [];
      const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [definition, ...fragments] };
      const atLargestPage = visit(document, {
        Argument: (node) =>
          (node.name.value === 'first' || node.name.value === 'last') && node.value.kind === Kind.VARIABLE
            ? { ...node, value: { kind: Kind.INT, value: String(LIMITS.pageSize) } }
            : undefined,
      });
      // Lists without a size count the schema's default page, as they are executed.
      return [{ name: definition.name?.value, cost: costOf(withListSizes(schema, atLargestPage, {}).document) }];
    });
    expect(costs.filter(({ cost }) => cost > ARMOR.costLimit.maxCost)).toEqual([]);
    // The costliest is near the bound, so it is the bound that was chosen for it, not a cost model gone stale.
    expect(Math.max(...costs.map(({ cost }) => cost))).toBeGreaterThan(ARMOR.costLimit.maxCost / 2);
    const bomb = parse(
      `{ ${Array.from({ length: 14 }, (_, i) => `a${i}: userJobs(userId: "u", first: ${LIMITS.pageSize}) { edges { node { id type status payload result } } }`).join(' ')} }`,
    );
    expect(costOf(bomb)).toBeGreaterThan(ARMOR.costLimit.maxCost);
  });

  it("counts a list without a size as the schema's default page, which Armor's rule counted as 1 (158 against 257 100)", () => {
    const bomb = parse(
      `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: userJobs(userId: "u") { nodes { logs { nodes { message fields } } } }`).join(' ')} }`,
    );
    expect(costOf(bomb)).toBeLessThan(ARMOR.costLimit.maxCost);
    expect(costOf(withListSizes(schema, bomb, null).document)).toBeGreaterThan(ARMOR.costLimit.maxCost);
  });
});
