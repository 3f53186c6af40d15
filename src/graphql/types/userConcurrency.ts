import type { UserConcurrency } from '../../queue/queueTypes.js';
import { actingUserId } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import { InvalidInputError } from '../../errors.js';

const UserConcurrencyRef = builder.objectRef<UserConcurrency>('UserConcurrency').implement({
  description: "A user's limit on jobs running at once, across all workers.",
  fields: (t) => ({
    userId: t.exposeString('userId'),
    limit: t.exposeInt('limit', { nullable: true, description: 'Null when the user has no limit.' }),
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
    description:
      "Sets a user's limit (0 pauses the user), or with `unlimited: true` takes it away; neither restores the default. Takes effect at once.",
    args: {
      userId: t.arg.string({ required: true }),
      limit: t.arg.int(),
      unlimited: t.arg.boolean({ description: 'True: the user has no limit (then `limit` must be left out).' }),
    },
    authScopes: { ADMIN: true },
    resolve: (_root, { userId, limit, unlimited }, ctx) => {
      if (unlimited && limit != null) throw new InvalidInputError('Give either limit or unlimited: true, not both.');
      const setting = unlimited ? 'unlimited' : (limit ?? null);
      ctx.logger.info({ userId, limit: setting }, 'user concurrency set');
      return ctx.queue.setUserConcurrency(userId, setting);
    },
  }),
}));
