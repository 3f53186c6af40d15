import { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import { roleOf, roleRefusal, type Role, type Viewer } from '../auth/viewer.js';

/**
 * The auth scopes a field may ask for: one per role of API key. A field lists the roles that may
 * call it, any of which will do: `authScopes: { ADMIN: true, WORKER: true }`. Checks that depend on
 * the arguments (a USER key acts for its own user only; another user's job looks unknown) stay in the
 * resolvers, with actingUserId() and canSeeJob() of src/auth/viewer.ts.
 */
export type RoleScopes = Record<Role, boolean>;

/** The scopes the caller holds: its key's role (authentication turned off counts as ADMIN). */
export function roleScopes(viewer: Viewer): RoleScopes {
  const role = roleOf(viewer);
  return { ADMIN: role === 'ADMIN', WORKER: role === 'WORKER', USER: role === 'USER' };
}

/**
 * The error for a field whose roles the caller lacks, worded as clients have always seen it:
 * UNAUTHENTICATED without a key, else FORBIDDEN naming the roles the field takes ("This operation
 * needs a ADMIN or WORKER key; this key is USER.").
 */
export function unauthorizedError(viewer: Viewer, failure: AuthFailure): Error {
  return roleRefusal(viewer, rolesIn(failure));
}

/** The roles a failed scope check asked for, in the order the field lists them. */
function rolesIn(failure: AuthFailure): Role[] {
  switch (failure.kind) {
    case AuthScopeFailureType.AuthScope:
      return isRole(failure.scope) ? [failure.scope] : [];
    case AuthScopeFailureType.AnyAuthScopes:
    case AuthScopeFailureType.AllAuthScopes:
      return failure.failures.flatMap(rolesIn);
    default:
      return [];
  }
}

function isRole(scope: string): scope is Role {
  return scope === 'ADMIN' || scope === 'WORKER' || scope === 'USER';
}
