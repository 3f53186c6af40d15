import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../../graphql/context.js';
import { TooManySubscriptionsError } from '../../errors.js';
import { withCode } from '../graphqlErrors.js';
import { endingStream } from '../../events/streams.js';
import type { SubscriptionLimits } from '../subscriptionLimits.js';

/**
 * MAX_SUBSCRIPTIONS_PER_CONNECTION and MAX_SUBSCRIPTIONS_PER_KEY, for graphql-ws and SSE alike (both
 * subscribe through the same envelop): over a cap, the new subscription gets TOO_MANY_SUBSCRIPTIONS
 * and the others run on. A place is held until the stream ends, however it ends.
 *
 * An SSE stream also ends when its request is aborted, here rather than by Yoga: a client gone while
 * the subscribe resolver was still awaiting (jobLogAppended reads the job first) left a stream no
 * one would ever end, and it held its place, its feed and its metric for good (6 of 36 such clients).
 */
export function useSubscriptionLimits(limits: SubscriptionLimits): Plugin<GraphQLContext> {
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const place = limits.acquire((args.contextValue as GraphQLContext).subscriber);
      if (place instanceof TooManySubscriptionsError) {
        // Final as it is: the plugins after this one (error masking included) do not run.
        setResultAndStopExecution({ errors: [withCode(place, place.code)] });
        return;
      }
      // The HTTP request of an SSE subscription (graphql-ws contexts have none with a signal).
      const signal = (args.contextValue as { request?: { signal?: AbortSignal } }).request?.signal;
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return place.release(); // refused (errors): nothing is running
          const stop = () => void stream.return();
          const stream = endingStream(result, {
            onEnd: () => {
              signal?.removeEventListener('abort', stop);
              place.release();
            },
          });
          place.stopWith(stop);
          if (signal?.aborted) stop();
          else signal?.addEventListener('abort', stop, { once: true });
          setResult(stream);
        },
      };
    },
  };
}
