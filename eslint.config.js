// Lint: typescript-eslint's type-aware rules over the TypeScript and the dashboard's checked JavaScript.
// `npm run lint` (in .ci/run); Prettier formats (`npm run format`), so no formatting rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['src/generated/', 'src/client/generated/', 'dist/', 'node_modules/', '.conveyor/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['bin/*.js', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // TypeScript checks names itself (and knows the DOM's and Node's globals); this rule does not.
      'no-undef': 'off',
      // Handlers, resolvers and hooks are async by contract: one that happens not to await is fine.
      '@typescript-eslint/require-await': 'off',
      // An unused binding named with a leading underscore says so on purpose (destructuring a field away).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests read rows from pg (typed `any`) and GraphQL answers to assert on them; the assertions are
    // the type check there.
    files: ['test/**', 'testing/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
