/**
 * The page, rendered on the server (renderToString in index.ts) and hydrated in the browser (client/main.tsx). Every
 * action is a real <form> that posts to the function, so it works without JavaScript; with JavaScript, `actions`
 * sends the same form with fetch and the page updates in place. Nothing here touches the DOM: it type-checks and runs
 * inside workerd too.
 */
import type { ComponentType, FormEvent, ReactNode } from "react";
import { Suspense } from "react";
import type { Link, Notice, PageState, User } from "./state.ts";
import { paths } from "./state.ts";

/** What the browser adds: each form's submit, in-page navigation, copying, and the chart (its own chunk). */
export interface Actions {
  submit(event: FormEvent<HTMLFormElement>): void;
  navigate(event: { preventDefault(): void; currentTarget: { getAttribute(name: string): string | null } }): void;
  copy(text: string): void;
  Chart: ComponentType<{ links: Link[] }>;
}

export interface AppProps {
  state: PageState;
  /** Absent on the server and until the page is hydrated: the first render is the same on both sides. */
  actions?: Actions | undefined;
  /** Set while an action is on its way (buttons are disabled). */
  busy?: boolean;
  /** The code whose short address was just copied. */
  copied?: string | null;
}

export function App({ state, actions, busy = false, copied = null }: AppProps) {
  return (
    // data-ready: the browser's script has taken over (tests and styles can tell the two apart).
    <div className="page" data-ready={actions ? "yes" : undefined}>
      <Header user={state.user} actions={actions} busy={busy} />
      <main>
        {state.notice && <NoticeLine notice={state.notice} />}
        {!state.user ? (
          <SignIn actions={actions} busy={busy} />
        ) : state.view === "stats" ? (
          <Stats links={state.links} actions={actions} />
        ) : (
          <Links state={state} actions={actions} busy={busy} copied={copied} />
        )}
      </main>
    </div>
  );
}

function Header({ user, actions, busy }: { user: User | null; actions: Actions | undefined; busy: boolean }) {
  return (
    <header>
      <h1>
        <a href={paths.links} onClick={actions?.navigate}>
          workyard links
        </a>
      </h1>
      {user && (
        <nav>
          <a href={paths.links} onClick={actions?.navigate}>
            My links
          </a>
          <a href={paths.stats} onClick={actions?.navigate}>
            Stats
          </a>
          <span className="who">{user.email}</span>
          <form method="post" action={paths.signOut} onSubmit={actions?.submit}>
            <button type="submit" disabled={busy}>
              Sign out
            </button>
          </form>
        </nav>
      )}
    </header>
  );
}

function NoticeLine({ notice }: { notice: Notice }) {
  return (
    <p className={`notice ${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"}>
      {notice.text}
    </p>
  );
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label>
      <span>{label}</span>
      {children}
    </label>
  );
}

function SignIn({ actions, busy }: { actions: Actions | undefined; busy: boolean }) {
  return (
    <section className="card">
      <h2>Sign in</h2>
      <form method="post" action={paths.session} onSubmit={actions?.submit} className="stack">
        <Field label="Email">
          <input type="email" name="email" autoComplete="username" required maxLength={254} />
        </Field>
        <Field label="Password">
          <input type="password" name="password" autoComplete="current-password" required minLength={1} maxLength={1024} />
        </Field>
        <div className="row">
          <button type="submit" name="intent" value="sign-in" disabled={busy}>
            Sign in
          </button>
          <button type="submit" name="intent" value="sign-up" className="secondary" disabled={busy}>
            Create an account
          </button>
        </div>
        <p className="hint">A new account needs a password of at least 10 characters.</p>
      </form>
    </section>
  );
}

function Links({ state, actions, busy, copied }: { state: PageState; actions: Actions | undefined; busy: boolean; copied: string | null }) {
  return (
    <>
      <section className="card">
        <h2>Shorten a link</h2>
        <form method="post" action={paths.create} onSubmit={actions?.submit} className="row wrap">
          <Field label="URL">
            <input type="url" name="url" required maxLength={2048} placeholder="https://example.com/a/long/page" />
          </Field>
          <Field label="Code (optional)">
            <input type="text" name="code" pattern="[A-Za-z0-9_\-]{3,64}" maxLength={64} placeholder="my-code" />
          </Field>
          <button type="submit" disabled={busy}>
            Create
          </button>
        </form>
      </section>
      <section className="card">
        <h2>My links</h2>
        {state.links.length === 0 ? (
          <p className="hint">No links yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Short link</th>
                <th>Goes to</th>
                <th className="num">Clicks</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {state.links.map((link) => (
                <tr key={link.code}>
                  <td>
                    <code>{state.shortBase + link.code}</code>
                    {actions && (
                      <button type="button" className="small secondary" onClick={() => actions.copy(state.shortBase + link.code)}>
                        {copied === state.shortBase + link.code ? "Copied" : "Copy"}
                      </button>
                    )}
                  </td>
                  <td className="url">{link.url}</td>
                  <td className="num">{link.clicks}</td>
                  <td>
                    <form method="post" action={paths.remove(link.code)} onSubmit={actions?.submit}>
                      <button type="submit" className="small danger" disabled={busy} aria-label={`Delete ${link.code}`}>
                        Delete
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

function Stats({ links, actions }: { links: Link[]; actions: Actions | undefined }) {
  const ranked = [...links].sort((a, b) => b.clicks - a.clicks);
  const total = ranked.reduce((sum, l) => sum + l.clicks, 0);
  return (
    <section className="card">
      <h2>Clicks</h2>
      <p>
        {total} click{total === 1 ? "" : "s"} on {links.length} link{links.length === 1 ? "" : "s"}.
      </p>
      {actions && ranked.length > 0 && (
        <Suspense fallback={<p className="hint">Loading the chart…</p>}>
          <actions.Chart links={ranked} />
        </Suspense>
      )}
      <table>
        <thead>
          <tr>
            <th>Code</th>
            <th className="num">Clicks</th>
          </tr>
        </thead>
        <tbody>
          {ranked.map((l) => (
            <tr key={l.code}>
              <td>
                <code>{l.code}</code>
              </td>
              <td className="num">{l.clicks}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
