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
 * Typed documents for Conveyor's clients, built from the committed SDL (no server needed), twice from
 * the same operations: client/generated/ for the tests, examples and benchmark, and src/client/generated/
 * for the typed client and the worker SDK, which the build compiles into dist/ (its rootDir is src/,
 * so it cannot compile files outside it).
 */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['client/operations.graphql'],
  generates: {
    'client/generated/': clientPreset,
    'src/client/generated/': clientPreset,
  },
};

export default config;
