/**
 * What the typed client and the worker SDK throw: the server's answer with GraphQL errors (their
 * `extensions.code` kept, so callers branch on NOT_FOUND, CONFLICT, BAD_USER_INPUT, …), or a failure
 * to talk to the server at all. Browser-safe (no Node imports).
 */

/** One error as the server sent it (graphql's GraphQLFormattedError, without importing its types). */
export interface ServerError {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
}

/** Codes the server documents; others (a newer server's) come through as they are. */
export type ApiErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'RESPONSE_TOO_LARGE'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'SUBSCRIBER_TOO_SLOW'
  | 'GRAPHQL_VALIDATION_FAILED'
  | 'DATABASE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR'
  | (string & {});

/** The server answered, with GraphQL errors: `code` is the first error's `extensions.code`. */
export class ConveyorApiError extends Error {
  override readonly name = 'ConveyorApiError';
  readonly code: ApiErrorCode;
  readonly errors: readonly ServerError[];

  constructor(errors: readonly ServerError[]) {
    super(errors.map((error) => error.message).join('\n') || 'The server answered with an error.');
    this.errors = errors;
    const code = errors[0]?.extensions?.code;
    this.code = typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
  }
}

/**
 * No GraphQL answer: the server could not be reached (NETWORK_ERROR), answered HTTP without a GraphQL
 * body (HTTP_ERROR, with `status`), or closed the WebSocket for good (SOCKET_CLOSED, with `closeCode`;
 * 4403 when the API key was refused or revoked).
 */
export class ConveyorConnectionError extends Error {
  override readonly name = 'ConveyorConnectionError';
  readonly code: 'NETWORK_ERROR' | 'HTTP_ERROR' | 'SOCKET_CLOSED';
  readonly status: number | null;
  readonly closeCode: number | null;

  constructor(
    code: ConveyorConnectionError['code'],
    message: string,
    details: { status?: number; closeCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.code = code;
    this.status = details.status ?? null;
    this.closeCode = details.closeCode ?? null;
  }
}

/** Whether an error says the job is no longer the caller's (cancelled, finished, lease lost) or gone. */
export function isLeaseLost(error: unknown): boolean {
  return error instanceof ConveyorApiError && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND');
}

/** Turns what a graphql-ws sink's `error` receives (GraphQL errors, a close event, an Error) into one of the above. */
export function subscriptionError(error: unknown): Error {
  if (Array.isArray(error)) return new ConveyorApiError(error as ServerError[]);
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') {
    const reason = 'reason' in error && typeof error.reason === 'string' && error.reason ? `: ${error.reason}` : '';
    return new ConveyorConnectionError('SOCKET_CLOSED', `The live connection closed (${error.code}${reason}).`, { closeCode: error.code });
  }
  const message = typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
  return new ConveyorConnectionError('NETWORK_ERROR', message || 'The live connection failed.', { cause: error });
}
