import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Viewer } from '../auth/viewer.js';
import { mapStream } from '../events/streams.js';
import type { GraphQLContext } from './context.js';

/**
 * Executes each subscription event once per distinct operation instead of once per subscriber.
 *
 * The event bus hands the same event object to every subscription of a topic, so a thousand clients
 * watching one user's jobs would otherwise run the same selection over the same object a thousand
 * times. Results are shared between subscriptions with the same document, variables, operation name
 * and viewer (role and user), which is everything a Job's fields depend on; they are remembered per
 * event object in a WeakMap and go with it.
 */
export function useSharedSubscriptionExecution(): Plugin<GraphQLContext> {
  const resultsByEvent = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const source = await createSourceEventStream(args);
        if (!(Symbol.asyncIterator in source)) return source; // errors: no stream was created
        const key = [
          viewerKey((args.contextValue as GraphQLContext).viewer),
          args.operationName ?? '',
          JSON.stringify(args.variableValues ?? {}),
          print(args.document),
        ].join('\n');
        return mapStream(source, (event) => {
          if (typeof event !== 'object' || event === null) return execute({ ...args, rootValue: event });
          let results = resultsByEvent.get(event);
          if (!results) resultsByEvent.set(event, (results = new Map<string, ExecutionResult | Promise<ExecutionResult>>()));
          let result = results.get(key);
          if (!result) results.set(key, (result = execute({ ...args, rootValue: event })));
          return result;
        });
      });
    },
  };
}

function viewerKey(viewer: Viewer): string {
  return viewer.kind === 'key' ? `key:${viewer.role}:${viewer.userId ?? ''}` : viewer.kind;
}
