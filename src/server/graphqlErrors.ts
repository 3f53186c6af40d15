import { GraphQLError } from 'graphql';

/**
 * The GraphQLError a client gets for `error`, coded: its message, and when it is a GraphQLError its
 * locations and path, with `extensions.code` (and `extra`) added to the extensions it had.
 *
 * Rebuilt without its originalError: Yoga counts an error that carries one as unexpected (answers
 * 500, masks it), and a variable that a scalar refused carries the scalar's TypeError, which would make
 * the client's mistake look like a defect to error masking and logging.
 */
export function withCode(error: Error, code: string, extra: Record<string, unknown> = {}): GraphQLError {
  const located = error instanceof GraphQLError ? error : null;
  return new GraphQLError(error.message, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    extensions: { ...located?.extensions, code, ...extra },
  });
}
