import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import { isDatabaseUnavailable } from '../db/postgresError.js';
import { ConveyorError } from '../errors.js';
import { withCode } from './graphqlErrors.js';

const DATABASE_UNAVAILABLE_MESSAGE = 'The database is unavailable for the moment; try again.';

export type MaskError = (error: unknown, message: string, isDev?: boolean) => Error;

/**
 * What a client may see of an error, and what the log gets:
 * - a ConveyorError (NOT_FOUND, CONFLICT, BAD_USER_INPUT, FORBIDDEN …) goes out with its code;
 * - a GraphQLError of graphql-js or GraphQL Armor without an underlying error (parse, validation,
 *   variables, limits) goes out as it is;
 * - an error that says the database cannot be reached now (down, restarting, out of connections)
 *   goes out as DATABASE_UNAVAILABLE (HTTP 503), for the client to try again, and logs one warning;
 * - anything else is a defect: masked as "Unexpected error." and logged at error level, with its stack.
 * The first two are the client's doing and log one debug line, so that an error line means a defect.
 * (Logging every refused request at error with a stack, 3 200 bad requests wrote 1.46 MB of log.)
 */
export function createMaskError(logger: Logger): MaskError {
  return (error, message, isDev) => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof ConveyorError) {
      logger.debug({ code: original.code }, original.message);
      // Without its originalError: Yoga would count the error as unexpected and answer 500.
      return withCode(error instanceof GraphQLError ? error : original, original.code);
    }
    if (isClientError(error)) {
      logger.debug({ code: error.extensions.code }, error.message);
      return error;
    }
    if (isDatabaseUnavailable(original ?? error)) {
      // An outage, not a defect: one line without a stack, and a code (and 503) that says "try again".
      logger.warn({ reason: original instanceof Error ? original.message : String(original ?? error) }, 'database unavailable');
      return withCode(new Error(DATABASE_UNAVAILABLE_MESSAGE), 'DATABASE_UNAVAILABLE', { http: { status: 503 } });
    }
    logger.error({ err: original ?? error }, 'unexpected error in a GraphQL operation');
    return yogaMaskError(error, message, isDev);
  };
}

/** A GraphQLError that graphql-js or a limit raised itself, with no other error beneath it. */
function isClientError(error: unknown): error is GraphQLError {
  if (!(error instanceof GraphQLError)) return false;
  return error.originalError == null || (error.originalError instanceof GraphQLError && isClientError(error.originalError));
}
