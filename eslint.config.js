// Lint: typescript-eslint's type-aware recommended rules, plus the layer rule of DESIGN.md
// (imports only point down: api <- policy, kube <- webhook, controllers, node-agent <- manager <- up <- cli).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// src/runtime (logger, shutdown signal) sits at the bottom beside src/api: it imports nothing of ours and
// every layer may import it, so it is left out of every layer's forbidden list below.
const everyLayerMayImport = ['runtime'];

const layers = {
  api: [],
  runtime: [],
  pki: [],
  policy: ['api'],
  kube: ['api'],
  webhook: ['api', 'policy', 'kube'],
  controllers: ['api', 'policy', 'kube', 'pki'],
  'node-agent': ['api', 'policy', 'kube'],
  check: ['api', 'policy'],
  manager: ['api', 'policy', 'kube', 'webhook', 'controllers', 'pki'],
  up: ['api', 'policy', 'kube', 'webhook', 'controllers', 'node-agent', 'manager', 'pki'],
};

const layerRules = Object.entries(layers).map(([layer, allowed]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: Object.keys(layers)
        .filter((other) => other !== layer && !allowed.includes(other))
        .filter((other) => layer === 'runtime' || !everyLayerMayImport.includes(other))
        .map((other) => ({
          group: [`**/${other}/*`, `**/${other}/**`, `**/${other}`],
          message: `src/${layer} may import only from ${[...allowed, ...(layer === 'runtime' ? [] : everyLayerMayImport)].join(', ') || 'nothing above itself'} (DESIGN.md layers)`,
        })),
    }],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', 'charts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  ...layerRules,
);
