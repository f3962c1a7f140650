/** Names shared by the gateway and function hosts (in workerd) and the config generator (in Node). */

/** The gateway binding that carries a secret of an in-isolate function. */
export const inlineSecretBinding = (fn: string, secret: string) => `SECRET__${fn.replaceAll("-", "_")}__${secret}`;

/** The name of the Durable Object the gateway addresses in each process: one per function per process. */
export const HOST_OBJECT_NAME = "pool";

/** A cap on a function host's pool the supervisor sets (1 on the embedded PGlite, which runs one query at a time). */
export const DB_POOL_MAX_VAR = "WORKYARD_DB_POOL_MAX";
