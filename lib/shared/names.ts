/**
 * Names both sides use: the workers in workerd read them, the config generator and the supervisor in Node set them.
 * A name spelled differently on one side fails silently at run time (an unset binding, a 404 on the internal
 * socket), so each is written once, here, and type-checked under both tsconfigs.
 */

/** The gateway binding that carries a secret of an in-isolate function. */
export const inlineSecretBinding = (fn: string, secret: string) => `SECRET__${fn.replaceAll("-", "_")}__${secret}`;

/** The gateway binding that carries a queue producer binding of an in-isolate function. */
export const inlineQueueBinding = (fn: string, binding: string) => `QUEUE__${fn.replaceAll("-", "_")}__${binding}`;

/** Where the queue producer entrypoint (lib/workers/queue-producer.ts) forwards what producers send: the queue service. */
export const QUEUE_SERVICE_URL_VAR = "WORKYARD_QUEUE_URL";
/** The bearer token the queue service wants. */
export const QUEUE_SERVICE_TOKEN_VAR = "WORKYARD_QUEUE_TOKEN";
/** The header that names the queue a forwarded producer request is for. */
export const QUEUE_NAME_HEADER = "x-workyard-queue";
/** The producer's delivery_delay, for messages that set no delay of their own. */
export const QUEUE_DELAY_HEADER = "x-workyard-delivery-delay";
/** What a queue binding's props tell the producer entrypoint. */
export interface QueueProducerProps {
  queue: string;
  deliveryDelay: number;
}
/** The internal worker's entrypoint that queue bindings point at (props name the queue). */
export const QUEUE_PRODUCER_ENTRYPOINT = "QueueProducer";

/** The gateway's entrypoint that functions' [[services]] bindings point at (props name the function called). */
export const FUNCTION_CALL_ENTRYPOINT = "FunctionCall";
/** What a [[services]] binding's props tell the gateway's FunctionCall entrypoint. */
export interface FunctionCallProps {
  fn: string;
}

/** The internal worker's entrypoint that takes a function worker's own trace records (props name the function). */
export const TRACE_SINK_ENTRYPOINT = "TraceSink";
/** The binding a function's worker reaches it through; taken out of the env its code is handed. */
export const TRACE_SINK_BINDING = "WORKYARD_TRACE_SINK";
/** What a trace sink binding's props tell the entrypoint. */
export interface TraceSinkProps {
  worker: string;
}

/** A batch as the dispatcher posts it to the internal worker's /queue/<function>. */
export interface QueueDelivery {
  queue: string;
  messages: { id: string; timestamp: number; attempts: number; contentType: "json" | "text" | "bytes" | "v8"; body: string }[];
}

/** What workerd's queue() on a service binding returns (the outcome of one batch). */
export interface QueueOutcome {
  outcome: string;
  ackAll: boolean;
  retryBatch: { retry: boolean; delaySeconds?: number };
  explicitAcks: string[];
  retryMessages: { msgId: string; delaySeconds?: number }[];
}

/** The name of the Durable Object the gateway addresses in each process: one per function per process. */
export const HOST_OBJECT_NAME = "pool";

/** A cap on a function host's pool the supervisor sets (1 on the embedded PGlite, which runs one query at a time). */
export const DB_POOL_MAX_VAR = "WORKYARD_DB_POOL_MAX";

/** Where a function host's read cache listens for other hosts' writes; unset turns the read cache off. */
export const DB_LISTEN_URL_VAR = "WORKYARD_DB_LISTEN_URL";

/** The project setting that turns the read cache off (`off`); on by default. */
export const DB_CACHE_VAR = "WORKYARD_DB_CACHE";

/** The environment variable (and binding) the internal worker reads its token from. */
export const INTERNAL_TOKEN_VAR = "WORKYARD_INTERNAL_TOKEN";

/** Where the gateway and the trace sink send traces, and the internal worker finds metrics: the collector. */
export const COLLECTOR_URL_VAR = "WORKYARD_COLLECTOR_URL";
/** The bearer token the collector wants. */
export const COLLECTOR_TOKEN_VAR = "WORKYARD_COLLECTOR_TOKEN";

/** The internal worker's paths that the supervisor calls. */
export const INTERNAL_PATHS = {
  healthz: "/healthz",
  readyz: "/readyz",
  /** POST, ?holdMs=N: hold new requests before this process is stopped (workers/drain.ts). */
  drain: "/drain",
  /** POST /scheduled/<function>?cron=..&scheduledTime=<ms>: run a function's scheduled() (cron/scheduler.ts). */
  scheduled: "/scheduled/",
  /** POST /queue/<function>: deliver a batch (QueueDelivery) to the function's queue() (queues/dispatcher.ts). */
  queue: "/queue/",
} as const;

/** A var every function gets from the build: the names of all the functions of the release, comma-separated. */
export const FUNCTIONS_VAR = "WORKYARD_FUNCTIONS";

/** The header the gateway tells a function in its own isolate the prefix it was routed under with. */
export const FORWARDED_PREFIX_HEADER = "x-forwarded-prefix";

/** `npm run dev`: the binding through which each dev loader (lib/workers/dev-loader.ts) loads its worker's bundles. */
export const DEV_LOADER_BINDING = "DEV_LOADER";

/**
 * `npm run dev`: the binding holding the dev server's random token for this run. A request to a dev loader that
 * carries it in DEV_ACTIVATE_HEADER hands the loader a new version; any other request is served by the worker.
 */
export const DEV_TOKEN_BINDING = "DEV_TOKEN";
export const DEV_ACTIVATE_HEADER = "x-workyard-dev-activate";

/** `npm run dev`: one bundle as the dev server hands it to a dev loader. */
export interface DevVersion {
  /** Changes whenever the script or its compatibility settings do: the Worker Loader caches by it. */
  id: string;
  /** The worker's name ("gateway", "fn-hello"): the module is named after it, so startup errors say whose. */
  worker: string;
  script: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
}

/**
 * Set to "1" in every function's bindings under `npm run dev` (and by a user in .dev.vars for `wrangler dev`): what is
 * for developers only (GraphQL introspection, field suggestions, GraphiQL) is on. Unset everywhere else.
 */
export const DEV_MODE_VAR = "WORKYARD_DEV";

/** Where npm run deno tells a function on Deno to listen (lib/deno/serve.ts). */
export const DENO_HOST_VAR = "WORKYARD_DENO_HOST";
export const DENO_PORT_VAR = "WORKYARD_DENO_PORT";
/** Set to "1" by `npm run deno -- <name> --test-scheduled`: /__scheduled?cron=... fires a cron, as under wrangler dev. */
export const DENO_TEST_SCHEDULED_VAR = "WORKYARD_DENO_TEST_SCHEDULED";
