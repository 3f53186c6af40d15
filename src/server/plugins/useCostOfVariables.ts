import {
  Kind,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type GraphQLError,
  type GraphQLSchema,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { withCode } from '../graphqlErrors.js';

/** The arguments whose value multiplies a field's cost in GraphQL Armor's cost rule. */
const LIST_SIZE_ARGUMENTS = new Set(['first', 'last']);

/**
 * The cost limit once more, at execution, with every page size in place: GraphQL Armor's rule
 * multiplies a list's cost by `first`/`last` only when the value is written in the document, so
 * `first: $n` with `{"n": 100}` counted as 1 and fourteen aliases of a 100-job page that the rule
 * refuses passed as variables (on HTTP, SSE and graphql-ws alike, which all execute through here);
 * so did an omitted `first`, whose default in the schema (a job's `logs`: 100 lines) is what runs.
 * A document whose sizes are all written, or that has no list with a size, is not checked again; one
 * whose only unwritten sizes are the schema's defaults is checked once (per parsed document, which
 * Yoga's parser cache keeps). A refusal is the rule's own message, with BAD_USER_INPUT as the
 * validation-time one has.
 */
export function useCostOfVariables(costRule: ValidationRule): Plugin {
  const checked = new WeakMap<DocumentNode, { document: DocumentNode; hasVariables: boolean; errors?: readonly GraphQLError[] }>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const document = args.document as DocumentNode;
      const schema = args.schema as GraphQLSchema;
      let sized = checked.get(document);
      if (!sized) {
        sized = withListSizes(schema, document, null);
        checked.set(document, sized);
      }
      let errors: readonly GraphQLError[];
      if (sized.hasVariables) {
        const variables = (args.variableValues ?? {}) as Record<string, unknown>;
        errors = validate(schema, withListSizes(schema, document, variables).document, [costRule]);
      } else if (sized.document === document) {
        return;
      } else {
        errors = sized.errors ??= validate(schema, sized.document, [costRule]);
      }
      if (errors.length > 0) setResultAndStopExecution({ errors: errors.map((error) => withCode(error, 'BAD_USER_INPUT')) });
    },
  };
}

/**
 * The document with every list's size written as what will run: a `first`/`last` variable's value
 * (or its default; with `variables` null, left as it is), and the schema's default `first` on a
 * field given neither or given a variable without a value. Itself when nothing changed; and whether
 * any size is a variable.
 */
export function withListSizes(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | null,
): { document: DocumentNode; hasVariables: boolean } {
  const defaults = new Map<string, unknown>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const v of definition.variableDefinitions ?? []) {
      if (v.defaultValue?.kind === Kind.INT) defaults.set(v.variable.name.value, Number(v.defaultValue.value));
    }
  }
  const intValue = (value: unknown): ValueNode | null =>
    // Not an Int (say, beyond 32 bits): coercion refuses it with its own message.
    typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1
      ? { kind: Kind.INT, value: String(value) }
      : null;
  const typeInfo = new TypeInfo(schema);
  let hasVariables = false;
  let changed = false;
  const result = visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node): FieldNode | undefined {
        const sizes = (node.arguments ?? []).filter((argument) => LIST_SIZE_ARGUMENTS.has(argument.name.value));
        const schemaDefault = typeInfo.getFieldDef()?.args.find((argument) => argument.name === 'first')?.defaultValue;
        const arguments_: ArgumentNode[] = [];
        let written = false;
        for (const argument of node.arguments ?? []) {
          if (!sizes.includes(argument) || argument.value.kind !== Kind.VARIABLE) {
            arguments_.push(argument);
            continue;
          }
          hasVariables = true;
          const name = argument.value.name.value;
          if (variables === null) {
            arguments_.push(argument);
            continue;
          }
          // A variable without a value leaves the argument unset: the schema's default runs (and a
          // null is counted as the default, which is the most a resolver then reads).
          const given = name in variables ? variables[name] : defaults.get(name);
          const value = intValue(given == null && argument.name.value === 'first' ? schemaDefault : given);
          arguments_.push(value ? { ...argument, value } : argument);
          written ||= value !== null;
        }
        if (sizes.length === 0) {
          const value = intValue(schemaDefault);
          if (value) {
            arguments_.push({ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'first' }, value });
            written = true;
          }
        }
        if (!written) return undefined;
        changed = true;
        return { ...node, arguments: arguments_ };
      },
    }),
  );
  return { document: changed ? result : document, hasVariables };
}
