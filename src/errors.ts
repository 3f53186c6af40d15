/**
 * Expected outcomes a client must branch on. Each carries the stable code that the GraphQL layer puts
 * in `extensions.code`; anything that is not a ConveyorError is unexpected and gets masked.
 */
export abstract class ConveyorError extends Error {
  abstract readonly code:
    | 'NOT_FOUND'
    | 'CONFLICT'
    | 'BAD_USER_INPUT'
    | 'UNAUTHENTICATED'
    | 'FORBIDDEN'
    | 'TOO_MANY_SUBSCRIPTIONS'
    | 'SUBSCRIBER_TOO_SLOW'
    | 'RESPONSE_TOO_LARGE';
}

export class NotFoundError extends ConveyorError {
  readonly code = 'NOT_FOUND';
}

/** The job exists but is not in a state that allows the operation (or the caller's lease is gone). */
export class ConflictError extends ConveyorError {
  readonly code = 'CONFLICT';
}

export class InvalidInputError extends ConveyorError {
  readonly code = 'BAD_USER_INPUT';
}

/** No valid API key came with the request or connection. */
export class UnauthenticatedError extends ConveyorError {
  readonly code = 'UNAUTHENTICATED';
}

/** The key is valid, but its role or user may not do this. */
export class ForbiddenError extends ConveyorError {
  readonly code = 'FORBIDDEN';
}

/** The operation asks for more payload and result bytes than one response may carry (MAX_RESPONSE_BYTES). */
export class ResponseTooLargeError extends ConveyorError {
  readonly code = 'RESPONSE_TOO_LARGE';
}

/** A connection or an API key already holds as many subscriptions as it may (the new one is refused). */
export class TooManySubscriptionsError extends ConveyorError {
  readonly code = 'TOO_MANY_SUBSCRIPTIONS';
}

/** A subscriber read events slower than they came and fell too far behind: its subscription ends. */
export class SubscriberTooSlowError extends ConveyorError {
  readonly code = 'SUBSCRIBER_TOO_SLOW';
}
