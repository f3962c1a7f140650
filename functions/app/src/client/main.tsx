/**
 * The browser's side: hydrates the page the function rendered, then sends each form with fetch (the same request a
 * form post would make, answered with the next page state as JSON) and moves between views without reloading.
 * Tokens never reach this code: they live in HttpOnly cookies the function sets (see index.ts).
 */
import { lazy, StrictMode, useCallback, useEffect, useMemo, useState } from "react";
import type { FormEvent } from "react";
import { hydrateRoot } from "react-dom/client";
import { App } from "../App.tsx";
import type { Actions } from "../App.tsx";
import { paths } from "../state.ts";
import type { PageState } from "../state.ts";
import "../styles.css";

// Its own chunk (and uPlot's): fetched the first time the stats view shows with JavaScript on.
const Chart = lazy(() => import("./Chart.tsx"));

/** Asks the function for a page state (a view, or an action's outcome); a failure becomes a notice. */
async function request(url: string, init: RequestInit = {}): Promise<PageState | { failed: string }> {
  try {
    const response = await fetch(url, { ...init, headers: { accept: "application/json" }, credentials: "same-origin" });
    if (response.headers.get("content-type")?.startsWith("application/json")) {
      const body = (await response.json()) as PageState | { error?: { message?: string } };
      if ("view" in body) return body;
      return { failed: body.error?.message ?? `The server answered ${response.status}` };
    }
    return { failed: `The server answered ${response.status}` };
  } catch {
    return { failed: "The server could not be reached; check the connection and try again." };
  }
}

function Root({ initial }: { initial: PageState }) {
  const [state, setState] = useState(initial);
  const [hydrated, setHydrated] = useState(false);
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState<string | null>(null);
  useEffect(() => setHydrated(true), []);

  const load = useCallback(async (url: string, init?: RequestInit) => {
    setBusy(true);
    const next = await request(url, init);
    setBusy(false);
    if ("failed" in next) setState((s) => ({ ...s, notice: { kind: "error", text: next.failed } }));
    else setState(next);
    return next;
  }, []);

  useEffect(() => {
    const back = () => void load(location.pathname);
    addEventListener("popstate", back);
    return () => removeEventListener("popstate", back);
  }, [load]);

  const actions = useMemo<Actions>(
    () => ({
      submit(event: FormEvent<HTMLFormElement>) {
        event.preventDefault();
        const form = event.currentTarget;
        const submitter = (event.nativeEvent as SubmitEvent).submitter;
        const body = new URLSearchParams();
        for (const [name, value] of new FormData(form, submitter)) if (typeof value === "string") body.append(name, value);
        void load(form.action, { method: "POST", body }).then((next) => {
          if ("failed" in next || next.notice?.kind === "error") return;
          form.reset();
          // Signing in or out leads to the links view, as the redirect without JavaScript does.
          if (location.pathname !== new URL(form.action).pathname && next.view === "links") history.pushState(null, "", paths.links);
        });
      },
      navigate(event) {
        const href = event.currentTarget.getAttribute("href");
        if (!href) return;
        event.preventDefault();
        history.pushState(null, "", href);
        void load(href);
      },
      copy(text: string) {
        void navigator.clipboard.writeText(text).then(
          () => setCopied(text),
          () => setState((s) => ({ ...s, notice: { kind: "error", text: "Copying was not allowed; select the address instead." } })),
        );
      },
      Chart,
    }),
    [load],
  );

  return <App state={state} actions={hydrated ? actions : undefined} busy={busy} copied={copied} />;
}

const stateElement = document.getElementById("state");
const root = document.getElementById("root");
if (stateElement && root) {
  hydrateRoot(
    root,
    <StrictMode>
      <Root initial={JSON.parse(stateElement.textContent ?? "null") as PageState} />
    </StrictMode>,
  );
}
