/**
 * What a page shows: the server renders it (index.ts) and hands it to the browser in the page, where the React app
 * takes over with the same value; every action answers the next one as JSON (or, without JavaScript, a redirect).
 */
export interface User {
  id: string;
  email: string;
}

export interface Link {
  code: string;
  url: string;
  clicks: number;
  createdAt: string;
  expiresAt: string | null;
}

export type View = "links" | "stats";

export interface Notice {
  kind: "error" | "ok";
  text: string;
}

export interface PageState {
  view: View;
  /** Null when signed out. */
  user: User | null;
  /** The signed-in user's links, newest first (empty when signed out). */
  links: Link[];
  /** What the last action did, or why it failed. */
  notice: Notice | null;
  /** Where a short link is followed: this origin's /links/. */
  shortBase: string;
}

/**
 * The app's own addresses, relative to the page's <base href> (which the function sets to where it is served: "/app/"
 * behind workyard's gateway, "/" on a domain of its own on Cloudflare), so the same build works at any prefix.
 */
export const paths = {
  links: "./",
  stats: "stats",
  session: "session",
  signOut: "session/end",
  create: "links",
  remove: (code: string) => `links/${encodeURIComponent(code)}/delete`,
} as const;
