/** Names shared by the gateway (in workerd) and the config generator (in Node) for in-isolate functions. */

/** The gateway binding that carries a secret of an in-isolate function. */
export const inlineSecretBinding = (fn: string, secret: string) => `SECRET__${fn.replaceAll("-", "_")}__${secret}`;
