import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import { demoJobTypes } from '../examples/demoJobTypes.js';
import { buildSchema, printSchemaSdl } from '../src/graphql/schema.js';
import codegenConfig from '../codegen.js';

describe('generated artefacts are current', () => {
  it('schema.graphql is the schema the code builds (run `npm run schema:print`)', async () => {
    const committed = await readFile(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(printSchemaSdl(buildSchema(demoJobTypes))).toBe(committed);
  });

  it.each(Object.keys(codegenConfig.generates))(
    '%s is what codegen makes of schema.graphql and the operations (run `npm run codegen`)',
    async (target) => {
      const out = await mkdtemp(path.join(tmpdir(), 'conveyor-codegen-'));
      try {
        await generate({ ...codegenConfig, generates: { [`${out}/`]: codegenConfig.generates[target]! } }, true);
        const committedDir = new URL(`../${target}`, import.meta.url);
        const files = (await readdir(committedDir)).sort();
        expect((await readdir(out)).sort()).toEqual(files);
        for (const file of files) {
          const fresh = await readFile(path.join(out, file), 'utf8');
          expect(fresh, file).toBe(await readFile(new URL(file, committedDir), 'utf8'));
        }
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
  );
});
