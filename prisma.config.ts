import { defineConfig } from 'prisma/config';

// Only `prisma generate` runs offline; migrations are applied by src/db/migrator.ts at start-up.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
