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

/** The app's own paths, under the function's prefix (the gateway serves the function at /app). */
export const BASE = "/app";
export const paths = {
  links: `${BASE}/`,
  stats: `${BASE}/stats`,
  session: `${BASE}/session`,
  signOut: `${BASE}/session/end`,
  create: `${BASE}/links`,
  remove: (code: string) => `${BASE}/links/${encodeURIComponent(code)}/delete`,
} as const;
