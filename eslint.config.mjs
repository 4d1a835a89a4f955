// ESLint for the engine, the extension, the tests and the build scripts (issue 19). Formatting is
// Prettier's alone (.prettierrc.json): eslint-config-prettier comes last and turns every stylistic
// rule off, so the two never disagree. The rules are typescript-eslint's recommended set without
// type information (fast enough to run on 2 cores), tuned to what this codebase means by a mistake.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    'dist/**',
    'out/**',
    'checkpoints/**',
    '.cache/**',
    'test-results/**',
    // scratch files of a session (never committed)
    '**/.*.tmp.ts',
    // Inputs of the load-order analyzer and the model-file tests: their exact text is the test.
    'test/fixtures/**',
    // The workspace the extension tests open: a user's files, written as a user would (a
    // @ts-nocheck script, a model that never returns, one that does not compile); tsconfig.json
    // leaves it out for the same reason.
    'test/extension/workspace/**',
  ]),
  {
    // A disable comment that no longer suppresses anything is stale: fail so it gets removed.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.tsx'],
    rules: {
      // `_`-prefixed names are the convention for an argument a signature needs but the body
      // does not use (PyTorch-shaped forward(x, _state), callbacks); tsc's noUnusedLocals already
      // catches unused locals, so this adds the parameters and destructured leftovers only.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'none',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `any` is allowed only where a line says why (the existing eslint-disable comments: mixin
      // constructors, acorn's untyped nodes, VS Code's command arguments); everywhere else it is
      // an error, which is what those comments already assume.
      '@typescript-eslint/no-explicit-any': 'error',
      // Lazy require() is how the engine loads optional or heavy packages (tfjs-node,
      // onnxruntime-node, esbuild) at run time; each one carries a disable comment saying so.
      '@typescript-eslint/no-require-imports': 'error',
      // `Module` is a callable class (PyTorch's `model(x)`), declared as an interface merged
      // with the class; module.ts disables this where it does so.
      '@typescript-eslint/no-unsafe-declaration-merging': 'error',
      // A tree walk starts its cursor at `this` (`let m: Module = this`, Module.getSubmodule):
      // not the closure alias the rule is after, which arrow functions made unnecessary anyway.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
  {
    // Engine and extension run in Node (the extension host, the engine and kernel processes,
    // worker threads); tests and scripts too.
    files: ['src/**', 'test/**', 'scripts/**', 'examples/**', '*.mjs'],
    ignores: ['src/webview/**'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    // The graph view's script runs in a VS Code webview (a browser).
    files: ['src/webview/**', 'media/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Build and test scripts are ES modules run by node directly.
    files: ['scripts/**/*.mjs', '*.mjs'],
    languageOptions: { sourceType: 'module' },
  },
  prettier,
);
