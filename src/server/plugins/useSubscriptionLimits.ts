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
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return place.release(); // refused (errors): nothing is running
          const stream = endingStream(result, { onEnd: () => place.release() });
          place.stopWith(() => void stream.return());
          setResult(stream);
        },
      };
    },
  };
}
