import type { ExecutionResult, GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import { withCode } from '../graphqlErrors.js';

/**
 * Gives request errors a stable `extensions.code`. A result without `data` is a request error: the
 * operation never ran because of what the client sent. graphql-js reports variables that fail
 * coercion that way without a code, and GraphQL Armor's limits (depth, aliases, directives, tokens,
 * cost) too; so that a client can tell them from a server fault, they get BAD_USER_INPUT.
 *
 * Applied where execution returns (before Yoga masks errors, for HTTP, SSE and graphql-ws alike) and
 * again to the HTTP result, which also carries errors thrown before execution (Armor's limits);
 * graphql-ws applies `withRequestErrorCodes` to those itself (src/server/graphqlWs.ts).
 */
export function useRequestErrorCodes(): Plugin {
  const onDone = ({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) => {
    const coded = withRequestErrorCodes(result);
    if (coded !== result) setResult(coded);
  };
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onDone) }),
    onSubscribe: () => ({
      onSubscribeResult: (payload) => {
        if (Symbol.asyncIterator in payload.result) return;
        onDone(payload as { result: ExecutionResult; setResult: (result: ExecutionResult) => void });
      },
    }),
    onResultProcess(payload) {
      const { result } = payload;
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      const coded = withRequestErrorCodes(result as ExecutionResult);
      if (coded !== result) payload.setResult(coded);
    },
  };
}

/**
 * The result with BAD_USER_INPUT on each request error that has no code. Errors with a `path` came
 * from a resolver (a subscription's subscribe() that threw, which also yields no `data`): they keep
 * whatever code error masking gives them.
 */
export function withRequestErrorCodes<T extends ExecutionResult>(result: T): T {
  if ('data' in result || !result.errors?.some(isUncodedRequestError)) return result;
  const coded = (error: GraphQLError) =>
    isUncodedRequestError(error) ? withCode(error, 'BAD_USER_INPUT', { http: { status: 400 } }) : error;
  return { ...result, errors: result.errors.map(coded) };
}

function isUncodedRequestError(error: GraphQLError): boolean {
  return !error.extensions?.code && !error.path;
}
