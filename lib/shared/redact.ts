/** scheme://user:secret@host/path → scheme://user:***@host/path: URLs fit to print or log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(an unparsable URL)";
  }
}
