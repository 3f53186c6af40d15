import type { ApiKeyInfo } from '../../auth/apiKeys.js';
import { builder } from '../builder.js';

const ApiKeyRoleEnum = builder.enumType('ApiKeyRole', {
  description: "ADMIN: everything. WORKER: dequeue, heartbeat, complete, fail, and read. USER: its own user's jobs only.",
  values: ['ADMIN', 'WORKER', 'USER'] as const,
});

const ApiKeyRef = builder.objectRef<ApiKeyInfo>('ApiKey').implement({
  description: 'An API key (the key itself is shown only once, when it is created).',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key, to tell keys apart.' }),
    role: t.field({ type: ApiKeyRoleEnum, resolve: (key) => key.role }),
    userId: t.exposeString('userId', { nullable: true, description: 'The user a USER key acts for.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

const CreatedApiKeyRef = builder.objectRef<{ key: string; apiKey: ApiKeyInfo }>('CreatedApiKey').implement({
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The secret. Store it now: it cannot be shown again.' }),
    apiKey: t.expose('apiKey', { type: ApiKeyRef }),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.field({
    type: [ApiKeyRef],
    description: 'Every API key, revoked ones included (admin only).',
    authScopes: { ADMIN: true },
    resolve: (_root, _args, ctx) => ctx.apiKeys.list(),
  }),
}));

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKeyRef,
    description: 'Creates an API key (admin only). A USER key needs the userId it acts for.',
    args: {
      name: t.arg.string({ required: true }),
      role: t.arg({ type: ApiKeyRoleEnum, required: true }),
      userId: t.arg.string(),
    },
    authScopes: { ADMIN: true },
    resolve: async (_root, args, ctx) => {
      const { key, info } = await ctx.apiKeys.create({ name: args.name, role: args.role, userId: args.userId ?? null });
      ctx.logger.info({ apiKeyId: info.id, role: info.role, userId: info.userId }, 'API key created');
      return { key, apiKey: info };
    },
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    description: 'Revokes an API key (admin only); it stops working within seconds, on every server.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { ADMIN: true },
    resolve: async (_root, { id }, ctx) => {
      const info = await ctx.apiKeys.revoke(String(id));
      ctx.logger.info({ apiKeyId: info.id }, 'API key revoked');
      return info;
    },
  }),
}));
