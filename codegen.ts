import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed documents for Conveyor's clients, built from the committed SDL (no server needed). */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['client/operations.graphql'],
  generates: {
    'client/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        emitLegacyCommonJSImports: false,
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
      },
    },
  },
};

export default config;
