import type { CodegenConfig } from '@graphql-codegen/cli';

const clientPreset = {
  preset: 'client',
  presetConfig: { fragmentMasking: false },
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    emitLegacyCommonJSImports: false,
    scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
  },
} as const;

/**
 * Typed documents for Conveyor's clients, built from the committed SDL (no server needed), into
 * src/client/generated/: the typed client and the worker SDK use them, the build compiles them into
 * dist/ (its rootDir is src/), and the tests import them from there too.
 */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['client/operations.graphql'],
  generates: {
    'src/client/generated/': clientPreset,
  },
};

export default config;
