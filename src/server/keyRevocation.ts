import type { ApiKeyStore } from '../auth/apiKeys.js';
import type { Viewer } from '../auth/viewer.js';
import type { JobEventBus } from '../events/jobEventBus.js';
import type { Logger } from '../logger.js';
import type { GraphQLWs } from './graphqlWs.js';
import type { SubscriptionLimits } from './subscriptionLimits.js';

/**
 * How often the keys of open sockets and SSE streams are checked again, through the cached lookup (5 s):
 * a revocation whose notification was lost still ends them within about 7 s.
 */
const RECHECK_MS = 2000;

/**
 * Ends what a revoked API key still has open in this process: its graphql-ws sockets (closed with
 * 4403 "API key revoked") and its SSE streams. ApiKeyStore.revoke, in any process, NOTIFYs the key's
 * id; the LISTEN connection of this process passes it here, within milliseconds. A periodic re-check
 * covers a notification lost while that connection was down.
 */
export function watchKeyRevocations(deps: {
  bus: JobEventBus;
  apiKeys: ApiKeyStore;
  graphqlWs: GraphQLWs;
  subscriptionLimits: SubscriptionLimits;
  viewerOf(authorization: unknown): Promise<Viewer>;
  logger: Logger;
}): () => void {
  const { graphqlWs, subscriptionLimits, logger } = deps;
  const endAllOf = (keyId: string) => {
    graphqlWs.closeSocketsOfKey(keyId);
    subscriptionLimits.endAllOfKey(keyId);
  };
  const stopListening = deps.bus.onApiKeyRevoked((keyId) => {
    deps.apiKeys.forgetCachedLookups(); // HTTP requests with the key are refused from now on, too
    endAllOf(keyId);
    logger.info({ apiKeyId: keyId }, 'API key revoked: closed its sockets and streams');
  });
  // Revocations sent while the LISTEN connection was down never arrive: read every key afresh.
  const stopReconnect = deps.bus.onReconnect(() => deps.apiKeys.forgetCachedLookups());

  let checking = false;
  const recheck = async () => {
    if (checking) return;
    checking = true;
    try {
      for (const [keyId, authorization] of new Map([...graphqlWs.liveKeys(), ...subscriptionLimits.liveKeys()])) {
        if ((await deps.viewerOf(authorization)).kind === 'anonymous') endAllOf(keyId);
      }
    } catch (error) {
      logger.warn({ err: error }, 're-checking the API keys of open sockets failed');
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void recheck(), RECHECK_MS);
  return () => {
    stopListening();
    stopReconnect();
    clearInterval(timer);
  };
}
