import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { roleScopes, unauthorizedError, type RoleScopes } from './authScopes.js';
import type { GraphQLContext } from './context.js';

/** The one schema builder: its type parameter is the source of truth for context, scalars and scopes. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: RoleScopes;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => roleScopes(ctx.viewer),
    unauthorizedError: (_parent, ctx, _info, result) => unauthorizedError(ctx.viewer, result.failure),
    // A subscription is checked once, when it starts (as before: a refused one never runs), not at
    // every event it delivers.
    authorizeOnSubscribe: true,
  },
  relay: {
    // Only the connection helpers: jobs keep their UUIDs as ids (no global ids, no Node interface), so
    // there is no node or nodes query either.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    // `nodes` beside `edges`, for clients that want no cursors.
    nodesOnConnection: true,
    hasPreviousPageFieldOptions: { description: 'Pages only go forward.' },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
