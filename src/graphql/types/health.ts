import { builder } from '../builder.js';

const HealthRef = builder.objectRef<{ database: boolean }>('Health').implement({
  fields: (t) => ({
    ok: t.boolean({ resolve: (h) => h.database }),
    database: t.exposeBoolean('database', { description: 'PostgreSQL answered.' }),
  }),
});

builder.queryFields((t) => ({
  health: t.field({
    type: HealthRef,
    resolve: async (_root, _args, ctx) => ({ database: await ctx.queue.ping() }),
  }),
}));
