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
      logger.debug({ code: error.extensions?.code }, error.message);
      return error;
    }
    if (isDatabaseUnavailable(original ?? error)) {
      // An outage, not a defect: one line without a stack, and a code (and 503) that says "try again".
      logger.warn({ reason: original instanceof Error ? original.message : String(original ?? error) }, 'database unavailable');
      return withCode(new Error(DATABASE_UNAVAILABLE_MESSAGE), 'DATABASE_UNAVAILABLE', { http: { status: 503 } });
    }
    logger.error({ err: original ?? error }, 'unexpected error in a GraphQL operation');
    // graphql-jit's own errors have nothing beneath them, which Yoga's masking takes for a safe error.
    const masked =
      error instanceof GraphQLError && error.originalError == null
        ? new GraphQLError(error.message, { nodes: error.nodes, path: error.path, originalError: new Error(error.message) })
        : error;
    return yogaMaskError(masked, message, isDev);
  };
}

/**
 * A GraphQLError that graphql-js or a limit raised itself about the request (parse, validation,
 * variables: no path in the result), with no other error beneath it. An execution error raised
 * without one beneath it has a path: graphql-jit's own (a null for a non-null field, a value its
 * scalar cannot serialize) are made so, where graphql-js wraps the same failure around an Error.
 * They are the server's defects, as graphql-js's are; taken for the client's, a query compiled after
 * its 10th run answered 500 without its data (graphql-jit's errors carry no `extensions`).
 */
function isClientError(error: unknown): error is GraphQLError {
  if (!(error instanceof GraphQLError)) return false;
  if (error.originalError == null) return error.path === undefined;
  return error.originalError instanceof GraphQLError && isClientError(error.originalError);
}
