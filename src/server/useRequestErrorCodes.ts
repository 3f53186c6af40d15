import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Gives request errors a stable `extensions.code`. A result without `data` is a request error: the
 * operation never ran because of what the client sent. graphql-js reports variables that fail
 * coercion that way without a code, and GraphQL Armor's limits (depth, aliases, directives, tokens,
 * cost) too; so that a client can tell them from a server fault, they get BAD_USER_INPUT.
 */
export function useRequestErrorCodes(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      const single = result as ExecutionResult;
      if ('data' in single || !single.errors?.some((error) => !error.extensions?.code)) return;
      setResult({ ...single, errors: single.errors.map(withBadUserInputCode) });
    },
  };
}

function withBadUserInputCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', http: { status: 400 } },
  });
}
