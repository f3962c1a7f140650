/**
 * The schema: the signed-in user and the links, with the same rules as the REST functions (functions/links/data.ts
 * holds them). Reads are public, as GET /links is; creating needs a signed-in user or an API key made for "links";
 * deleting needs the owner or an admin. A link's owner is shown only to that owner and to admins.
 */
import { createSchema } from "graphql-yoga";
import { z } from "zod";
import { authenticate } from "#workyard/auth";
import type { Principal } from "#workyard/auth";
import { ApiError } from "#workyard/errors";
import type { GraphQLContext } from "#workyard/graphql";
import { checkInput, invalidInput } from "#workyard/validate";
import { codeSchema, createLink, createSchema as createInput, deleteLink, limitCreation, MAX_PAGE, toJson } from "../links/data.ts";
import type { LinkRow } from "../links/data.ts";
import type { Loaders, UserRow } from "./loaders.ts";

export interface Context extends GraphQLContext {
  loaders: Loaders;
  /** Who is calling (401 when nobody is); asked once per request. */
  viewer(): Promise<Principal>;
}

export const typeDefs = /* GraphQL */ `
  type Query {
    "The signed-in user (Authorization: Bearer <access token> from POST /auth/login)."
    me: User
    "A link by its code, or null when there is none."
    link(code: String!): Link
    "Links, newest first: at most ${MAX_PAGE} per page; pass the last one's createdAt as before for the next page."
    links(first: Int = 20, before: String): [Link!]!
  }

  type Mutation {
    "Creates a link (a signed-in user or an API key for links); a taken code is refused with code_taken."
    createLink(url: String!, code: String, expiresInSeconds: Int): Link!
    "Deletes a link: its owner or an admin."
    deleteLink(code: String!): Boolean!
  }

  type User {
    id: ID!
    email: String!
    role: String!
    createdAt: String!
    "This user's links, newest first."
    links(first: Int = 20, before: String): [Link!]!
  }

  type Link {
    code: String!
    url: String!
    "Clicks so far, including those not yet rolled up from Redis."
    clicks: Int!
    createdAt: String!
    expiresAt: String
    "Who created it: shown to that user and to admins, else null (and null for links made with an API key)."
    owner: User
  }
`;

/** A page size in 1..MAX_PAGE, or a 400 that says so. */
function pageSize(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) {
    throw invalidInput(`first must be between 1 and ${MAX_PAGE}`, [{ path: "first", message: `1 to ${MAX_PAGE}` }]);
  }
  return first;
}

const isoDateTime = z.iso.datetime({ offset: true });

function beforeCursor(before: string | null | undefined): string | undefined {
  if (before === null || before === undefined) return undefined;
  if (!isoDateTime.safeParse(before).success) {
    throw invalidInput("before must be a date and time (a link's createdAt)", [{ path: "before", message: "an ISO 8601 date and time" }]);
  }
  return before;
}

const codeArgument = z.object({ code: codeSchema });
const validCode = (code: string): string => checkInput(codeArgument, { code }, "Invalid code: see issues").code;

const userJson = (user: UserRow) => ({ ...user, createdAt: user.created_at.toISOString() });

const asLink = (row: LinkRow) => ({ ...toJson(row), row });
type LinkParent = ReturnType<typeof asLink>;

export const schema = createSchema<Context>({
  typeDefs,
  resolvers: {
    Query: {
      async me(_root, _args, ctx) {
        const viewer = await ctx.viewer();
        if (viewer.kind !== "user") throw new ApiError(403, "An API key has no account: sign in as a user for me", { code: "forbidden" });
        const user = await ctx.loaders.user.load(viewer.id);
        if (!user) throw new ApiError(404, "This account no longer exists");
        return userJson(user);
      },
      async link(_root, { code }: { code: string }, ctx) {
        const row = await ctx.loaders.link.load(validCode(code));
        return row ? asLink(row) : null;
      },
      async links(_root, { first, before }: { first: number; before?: string | null }, ctx) {
        const rows = await ctx.loaders.page({ limit: pageSize(first), before: beforeCursor(before) });
        return rows.map(asLink);
      },
    },
    Mutation: {
      async createLink(_root, args: { url: string; code?: string | null; expiresInSeconds?: number | null }, ctx) {
        const { c } = ctx;
        await ctx.viewer();
        await limitCreation(c);
        const input = checkInput(createInput, {
          url: args.url,
          code: args.code ?? undefined,
          expiresInSeconds: args.expiresInSeconds ?? undefined,
        });
        return asLink(await createLink(c, input));
      },
      async deleteLink(_root, { code }: { code: string }, ctx) {
        await ctx.viewer();
        await deleteLink(ctx.c, validCode(code));
        return true;
      },
    },
    User: {
      async links(user: { id: string }, { first, before }: { first: number; before?: string | null }, ctx) {
        const rows = await ctx.loaders.linksOf({ limit: pageSize(first), before: beforeCursor(before) }).load(`user:${user.id}`);
        return rows.map(asLink);
      },
    },
    Link: {
      async clicks(link: LinkParent, _args, ctx) {
        return Number(link.row.clicks) + (await ctx.loaders.pendingClicks.load(link.code));
      },
      async owner(link: LinkParent, _args, ctx) {
        const owner = link.row.owner;
        if (!owner?.startsWith("user:")) return null;
        // Shown to that user and to admins only; anonymous readers see null, not an error.
        const viewer = await ctx.viewer().catch(() => undefined);
        if (!viewer || (viewer.subject !== owner && viewer.role !== "admin")) return null;
        const user = await ctx.loaders.user.load(owner.slice("user:".length));
        return user ? userJson(user) : null;
      },
    },
  },
});

/** The request's principal, authenticated once (the same credentials as the REST functions; API keys for links). */
export function viewerOf(c: GraphQLContext["c"]): () => Promise<Principal> {
  let pending: Promise<Principal> | undefined;
  return () =>
    (pending ??= authenticate(c, { apiKeysFor: "links" }).then((principal) => {
      c.set("principal", principal);
      return principal;
    }));
}
