/**
 * GraphiQL's page, for `npm run dev` only: the dev bundler resolves `#workyard/graphiql` here (the "workyard-dev"
 * condition, lib/node/dev/esbuild.ts). The page is 9 MB of inline script and style (no CDN), which every workerd start
 * would otherwise load for nothing: production builds (Wrangler) get no-graphiql.ts.
 */
export { renderGraphiQL } from "@graphql-yoga/render-graphiql";
