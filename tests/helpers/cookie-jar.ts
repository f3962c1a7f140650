/** A client's cookies between requests, as a browser keeps them (by name: the tests talk to one site and path). */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** Keeps what an answer sets (an empty value or Max-Age=0 deletes); returns its Set-Cookie lines. */
  take(res: Response): string[] {
    const lines = res.headers.getSetCookie();
    for (const line of lines) {
      const [pair = ""] = line.split(";");
      const [name = "", value = ""] = pair.split("=");
      if (value === "" || /max-age=0/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return lines;
  }

  /** The Cookie header to send. */
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}
