import {
  getNamedType,
  getOperationAST,
  isInputObjectType,
  typeFromAST,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLNamedType,
  type GraphQLSchema,
  OperationTypeNode,
  type OperationDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

/**
 * How many times a document runs in graphql-js before it is compiled: the operations a service or a
 * worker sends over and over are compiled, one-off documents (GraphiQL, a hostile client's endless
 * variations) never pay the compilation.
 */
export const COMPILE_AFTER_RUNS = 10;

/** Not compiled: the document is left to graphql-js for good. */
const INTERPRETED = 'interpreted';

/**
 * Runs the queries and mutations that clients repeat as graphql-jit's compiled functions instead of
 * graphql-js's interpreter. The interpreter walks the selection for every object it returns: for
 * `dequeueJobs(limit: 200)` with the SDK's job fields that is ~4 600 field resolutions a claim
 * (bench 3, quick, alternated six times each: SDK workers' median 3 547 → 4 041 jobs/s, the plain
 * dequeue loops' 3 548 → 3 815).
 *
 * graphql-jit also coerces the variables, and there it differs from graphql-js: it ignores the
 * default of a non-null variable (`$nextRuns: Int! = 3` left out is "not provided"), and compiling
 * the coercion of a recursive input type (a flow's `children`) overflows the stack. So a document is
 * compiled only if none of its variables has a default or an input type that contains itself;
 * otherwise, or if compilation fails, graphql-js runs it as before. Subscriptions are left to
 * graphql-js (and to useSharedSubscriptionExecution, which runs each event once per operation).
 */
export function useCompiledExecution(schema: GraphQLSchema): Plugin {
  /**
   * Per parsed document (Yoga's parser cache hands out the same object for the same text) and
   * operation name (a document may hold several operations): runs so far, or the outcome.
   */
  const state = new WeakMap<DocumentNode, Map<string, OperationState>>();
  return {
    onExecute({ args, setExecuteFn }) {
      const document = args.document as DocumentNode;
      const operationName = (args.operationName as string | null | undefined) ?? null;
      let operations = state.get(document);
      if (!operations) state.set(document, (operations = new Map<string, OperationState>()));
      const key = operationName ?? '';
      const seen = operations.get(key) ?? 0;
      if (seen === INTERPRETED) return;
      if (typeof seen === 'function') return setExecuteFn(seen);
      if (seen + 1 < COMPILE_AFTER_RUNS) return void operations.set(key, seen + 1);
      const compiled = compile(schema, document, operationName);
      operations.set(key, compiled);
      if (compiled !== INTERPRETED) setExecuteFn(compiled);
    },
  };
}

/** An operation's runs in graphql-js so far, its compiled execution, or INTERPRETED for good. */
type OperationState = number | ExecuteCompiled | typeof INTERPRETED;
type ExecuteCompiled = (args: ExecutionArgs) => ReturnType<CompiledQuery['query']>;

function compile(schema: GraphQLSchema, document: DocumentNode, operationName: string | null): ExecuteCompiled | typeof INTERPRETED {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation === OperationTypeNode.SUBSCRIPTION || !variablesCompileSafely(schema, operation))
    return INTERPRETED;
  try {
    const compiled = compileQuery(schema, document, operationName ?? undefined);
    if (!isCompiledQuery(compiled)) return INTERPRETED;
    return (args) => compiled.query(args.rootValue, args.contextValue, args.variableValues ?? {});
  } catch {
    return INTERPRETED;
  }
}

/**
 * No variable with a default value, none of an input type from which an input type reaches itself.
 * (Compiling a flow's recursive input took 11.6 s of CPU here before it overflowed the stack.)
 */
export function variablesCompileSafely(schema: GraphQLSchema, operation: OperationDefinitionNode): boolean {
  return (operation.variableDefinitions ?? []).every((definition) => {
    if (definition.defaultValue) return false;
    const type = typeFromAST(schema, definition.type);
    return type !== undefined && [...inputTypesFrom(getNamedType(type))].every((inner) => !inputTypesFrom(inner, true).has(inner));
  });
}

/** The input object types reachable through fields from `type`: with `throughFields`, only those behind at least one field. */
function inputTypesFrom(type: GraphQLNamedType, throughFields = false): Set<GraphQLNamedType> {
  const found = new Set<GraphQLNamedType>();
  const pending: GraphQLNamedType[] = [];
  const visit = (next: GraphQLNamedType) => {
    if (isInputObjectType(next) && !found.has(next)) {
      found.add(next);
      pending.push(next);
    }
  };
  if (throughFields) pending.push(type);
  else visit(type);
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (isInputObjectType(current)) for (const field of Object.values(current.getFields())) visit(getNamedType(field.type));
  }
  return found;
}
