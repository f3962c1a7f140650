// Lint for the whole project; `npm run check` runs it after the type checks, and Prettier after it (formatting is
// Prettier's alone: eslint-config-prettier turns off the rules that would disagree with it).
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import prettier from "eslint-config-prettier";

export default tseslint.config(
  { ignores: ["node_modules/", ".workyard/", "**/*.d.ts", "tests/fixtures/lib/", "functions/*/dist/"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    // The one plain-JavaScript script (scripts/prepare.mjs), which runs on whatever Node npm runs on.
    files: ["**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
  {
    // Code that runs inside workerd must not reach for Node's process or file system.
    files: ["lib/sdk/**", "lib/workers/**", "lib/shared/**", "functions/**"],
    rules: {
      "no-restricted-globals": ["error", { name: "process", message: "process.env is empty inside workerd: read bindings from c.env" }],
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["../node/*", "../../lib/node/*"], message: "lib/node runs in Node, not in workerd" }] },
      ],
    },
  },
  {
    // The SDK is what functions build on: it depends on neither the platform's workers nor Node.
    files: ["lib/sdk/**", "lib/shared/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["../workers/*", "../node/*", "../../lib/node/*"],
              message: "lib/sdk and lib/shared import neither lib/workers nor lib/node",
            },
          ],
        },
      ],
    },
  },
  {
    // Functions reach the SDK through one path, package.json's `imports` (#workyard/app, #workyard/db, ...).
    files: ["functions/**", "tests/fixtures/functions/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/lib/*", "**/lib/**"], message: "import the SDK as #workyard/<module> (package.json imports)" }] },
      ],
    },
  },
  prettier,
);
