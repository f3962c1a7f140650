/** scheme://user:secret@host/path → scheme://user:***@host/path (lib/shared/redact.ts, which workerd code uses too). */
export { redactUrl } from "../../shared/redact.ts";
