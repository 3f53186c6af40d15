import type { UserConcurrency } from '../../queue/queueTypes.js';
import { actingUserId } from '../../auth/viewer.js';
import { builder } from '../builder.js';

const UserConcurrencyRef = builder.objectRef<UserConcurrency>('UserConcurrency').implement({
  description: "A user's limit on jobs running at once, across all workers.",
  fields: (t) => ({
    userId: t.exposeString('userId'),
    limit: t.exposeInt('limit'),
    isDefault: t.exposeBoolean('isDefault', { description: 'True when the configured default applies.' }),
    running: t.exposeInt('running'),
  }),
});

builder.queryFields((t) => ({
  userConcurrency: t.field({
    type: UserConcurrencyRef,
    args: { userId: t.arg.string({ required: true }) },
    authScopes: { ADMIN: true, WORKER: true, USER: true },
    resolve: (_root, { userId }, ctx) => ctx.queue.getUserConcurrency(actingUserId(ctx.viewer, userId)!),
  }),
}));

builder.mutationFields((t) => ({
  setUserConcurrency: t.field({
    type: UserConcurrencyRef,
    description: "Sets a user's limit (0 pauses the user; null restores the default). Takes effect at once.",
    args: { userId: t.arg.string({ required: true }), limit: t.arg.int() },
    authScopes: { ADMIN: true },
    resolve: (_root, { userId, limit }, ctx) => {
      ctx.logger.info({ userId, limit }, 'user concurrency set');
      return ctx.queue.setUserConcurrency(userId, limit ?? null);
    },
  }),
}));
