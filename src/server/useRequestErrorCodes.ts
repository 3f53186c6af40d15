import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Gives request errors a stable `extensions.code`. graphql-js reports variables that fail coercion
 * (wrong type, missing, unknown enum value) as a result without `data` and without a code, so a client
 * could not tell them from a server fault; they are the client's input, so: BAD_USER_INPUT.
 */
export function useRequestErrorCodes(): Plugin {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result || 'data' in result || !result.errors) return;
          setResult({
            ...result,
            errors: result.errors.map((error) =>
              error.extensions?.code
                ? error
                : new GraphQLError(error.message, {
                    nodes: error.nodes,
                    source: error.source,
                    positions: error.positions,
                    path: error.path,
                    originalError: error.originalError,
                    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', http: { status: 400 } },
                  }),
            ),
          });
        },
      };
    },
  };
}
