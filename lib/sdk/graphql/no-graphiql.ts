/** What `#workyard/graphiql` is outside `npm run dev`: no GraphiQL page in the bundle (see graphiql.ts). */
export const renderGraphiQL: ((options: { endpoint?: string; title?: string }) => string) | undefined = undefined;
