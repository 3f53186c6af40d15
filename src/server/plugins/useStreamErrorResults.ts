import { GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { endingStream } from '../../events/streams.js';

/**
 * A subscription stream that fails (a subscriber cut off as too slow, a defect) ends with one last
 * result carrying the error, then completes: on that subscription only, the same over graphql-ws and
 * SSE. Yoga's error masking then gives it its code (SUBSCRIBER_TOO_SLOW …) or masks and logs it.
 *
 * Left to the transports, graphql-ws sent an `error` message and Yoga's SSE handler sent the masked
 * error over and over: its mapping of a rejected next() remembers the error result and the source
 * kept rejecting.
 */
export function useStreamErrorResults(): Plugin {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return;
          setResult(
            endingStream(result, {
              onError: (error) => ({
                errors: [
                  error instanceof GraphQLError
                    ? error
                    : new GraphQLError(error instanceof Error ? error.message : String(error), { originalError: error as Error }),
                ],
              }),
            }),
          );
        },
      };
    },
  };
}
