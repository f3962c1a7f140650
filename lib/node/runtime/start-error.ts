import { UserError } from "../common/user-error.ts";

/** `npm start` could not start: a setting, a port, the database, a release. The message says which and what to do. */
export class StartError extends UserError {}
