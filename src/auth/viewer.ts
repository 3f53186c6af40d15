import { ForbiddenError, UnauthenticatedError } from '../errors.js';

export type Role = 'ADMIN' | 'WORKER' | 'USER';

/** Who is calling: from the API key of the request (HTTP) or of the connection (graphql-ws). */
export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'key'; keyId: string; role: Role; userId: string | null }
  /** Authentication turned off for local development: acts as an admin. */
  | { kind: 'development' };

export const ANONYMOUS: Viewer = { kind: 'anonymous' };
export const DEVELOPMENT: Viewer = { kind: 'development' };

/** The role a viewer acts with; null without a key. */
export function roleOf(viewer: Viewer): Role | null {
  if (viewer.kind === 'development') return 'ADMIN';
  return viewer.kind === 'key' ? viewer.role : null;
}

/**
 * Why a viewer may not do an operation that needs one of `roles`: UNAUTHENTICATED without a key,
 * FORBIDDEN for a key of another role. (The GraphQL fields declare their roles as auth scopes:
 * src/graphql/authScopes.ts.)
 */
export function roleRefusal(viewer: Viewer, roles: readonly Role[]): UnauthenticatedError | ForbiddenError {
  const role = roleOf(viewer);
  if (!role) return new UnauthenticatedError('An API key is required: send "Authorization: Bearer <key>".');
  return new ForbiddenError(`This operation needs a ${roles.join(' or ')} key; this key is ${role}.`);
}

/** The userId a USER key is bound to, or null for roles that may act for any user. */
export function ownUserId(viewer: Viewer): string | null {
  return viewer.kind === 'key' && viewer.role === 'USER' ? viewer.userId : null;
}

/**
 * The user an operation acts for. A USER key always acts for its own user (naming another is
 * FORBIDDEN); other roles act for the user they name, or for no particular user (null).
 */
export function actingUserId(viewer: Viewer, requested: string | null | undefined): string | null {
  const own = ownUserId(viewer);
  if (own === null) return requested ?? null;
  if (requested != null && requested !== own) {
    throw new ForbiddenError(`This key acts for user "${own}" only.`);
  }
  return own;
}

/**
 * Whether the viewer may see the job at all. A USER key sees its own user's jobs only, and another
 * user's job must look to it exactly like an id that does not exist (null, NOT_FOUND): a FORBIDDEN
 * would tell it that the id is taken.
 */
export function canSeeJob(viewer: Viewer, job: { userId: string }): boolean {
  const own = ownUserId(viewer);
  return own === null || job.userId === own;
}
