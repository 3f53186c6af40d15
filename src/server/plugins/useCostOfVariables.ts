import { Kind, validate, visit, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { withCode } from '../graphqlErrors.js';

/** The arguments whose value multiplies a field's cost in GraphQL Armor's cost rule. */
const LIST_SIZE_ARGUMENTS = new Set(['first', 'last']);

/**
 * The cost limit once more, at execution, with the variables' values in place: GraphQL Armor's rule
 * multiplies a list's cost by `first`/`last` only when the value is written in the document, so
 * `first: $n` with `{"n": 100}` counted as 1 and fourteen aliases of a 100-job page that the rule
 * refuses passed as variables (on HTTP, SSE and graphql-ws alike, which all execute through here).
 * Only a document with a variable in such a place is checked again; a refusal is the rule's own
 * message, with BAD_USER_INPUT as the validation-time one has.
 */
export function useCostOfVariables(costRule: ValidationRule): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const document = args.document as DocumentNode;
      const withValues = withListSizesOf(document, (args.variableValues ?? {}) as Record<string, unknown>);
      if (withValues === document) return;
      const errors = validate(args.schema as GraphQLSchema, withValues, [costRule]);
      if (errors.length > 0) setResultAndStopExecution({ errors: errors.map((error) => withCode(error, 'BAD_USER_INPUT')) });
    },
  };
}

/** The document with each `first`/`last` given by a variable written as its value (or its default); itself when there is none. */
function withListSizesOf(document: DocumentNode, variables: Record<string, unknown>): DocumentNode {
  const defaults = new Map<string, unknown>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const v of definition.variableDefinitions ?? []) {
      if (v.defaultValue?.kind === Kind.INT) defaults.set(v.variable.name.value, Number(v.defaultValue.value));
    }
  }
  let changed = false;
  const result = visit(document, {
    Argument(node) {
      if (!LIST_SIZE_ARGUMENTS.has(node.name.value) || node.value.kind !== Kind.VARIABLE) return undefined;
      const name = node.value.name.value;
      const value = name in variables ? variables[name] : defaults.get(name);
      // Not an Int (say, beyond 32 bits): coercion refuses it with its own message.
      if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > 2 ** 31 - 1) return undefined;
      changed = true;
      return { ...node, value: { kind: Kind.INT, value: String(value) } };
    },
  });
  return changed ? result : document;
}
