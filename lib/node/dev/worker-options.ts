/**
 * The miniflare workers for `npm run dev`, shaped like the production workerd config (serve-config.ts):
 * the gateway first (miniflare sends every request to the first worker) with the same ROUTES binding, the
 * vars and secrets of the functions in its isolate (INLINE_ENV, SECRET__<fn>__<name>) and one
 * `FN_<NAME>` service binding per isolated function; then one worker per function (an in-isolate
 * function's own worker still runs its crons), with its vars and secrets as bindings. Each of them runs the
 * dev loader (lib/workers/dev-loader.ts), which serves the worker's current bundle through workerd's Worker
 * Loader: the bundles are not part of these options, so a code change leaves them as they are (no restart).
 */
import { existsSync, mkdirSync } from "node:fs";
import type { WorkerOptions } from "miniflare";
import { DEV_LOADER_BINDING, DEV_MODE_VAR, DEV_TOKEN_BINDING, inlineQueueBinding, inlineSecretBinding } from "../../shared/names.ts";
import { functionQueues } from "../queues/config.ts";
import { bindingName, routeSettings } from "../build/functions.ts";
import type { FunctionSource } from "../build/functions.ts";
import { gatewayRoutes, serviceName } from "../build/serve-config.ts";

export const GATEWAY_WORKER = "gateway";

export interface SecretSources {
  /** What the dev server itself provides (DATABASE_URL, the Redis proxy's URL and token): these win. */
  provided: Record<string, string>;
  /** The process environment: it wins over .dev.vars, as it wins over .env for `npm start`. */
  env: NodeJS.ProcessEnv;
  /** Values from .dev.vars. */
  devVars: Record<string, string>;
}

export interface FunctionBindings {
  vars: Record<string, unknown>;
  secrets: Record<string, string>;
  /** Secrets the function declares that nothing sets. */
  missing: string[];
}

/**
 * A function's bindings: its merged vars (a .dev.vars value of the same name overrides one, as in
 * `wrangler dev`), and the secrets it declares; nothing else from the environment.
 */
export function functionBindings(fn: FunctionSource, { provided, env, devVars }: SecretSources): FunctionBindings {
  const vars: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fn.config.vars)) vars[name] = devVars[name] ?? value;
  vars[DEV_MODE_VAR] = devVars[DEV_MODE_VAR] ?? "1"; // developer aids on (GraphQL introspection, GraphiQL); .dev.vars may say "0"
  const secrets: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of fn.config.secrets?.required ?? []) {
    const value = provided[name] ?? env[name] ?? devVars[name];
    if (value === undefined) missing.push(name);
    else secrets[name] = value;
  }
  return { vars, secrets, missing };
}

const isInline = (fn: FunctionSource) => fn.route.isolate === false;

type WorkerConfig = WorkerOptions["config"];
type Env = NonNullable<WorkerConfig["env"]>;
type Binding = Env[string];

type Json = Extract<Binding, { type: "json" }>["value"];
type Triggers = NonNullable<WorkerConfig["triggers"]>;

/**
 * A function's queues on miniflare's own (in-memory) queues: its producer bindings, and its consumers as queue
 * triggers with workyard's settings written out, so miniflare's different defaults (batch 5, timeout 1 s, retries 2)
 * never apply. Messages live in miniflare's memory: a restart of npm run dev loses those not yet delivered.
 */
function queueBindings(fn: FunctionSource): { producers: Env; consumers: Triggers } {
  const { producers, consumers } = functionQueues(fn);
  return {
    producers: Object.fromEntries(
      producers.map((p): [string, Binding] => [p.binding, { type: "queue", name: p.queue, deliveryDelay: p.deliveryDelay }]),
    ),
    consumers: consumers.map((c) => ({
      type: "queue" as const,
      name: c.queue,
      maxBatchSize: c.maxBatchSize,
      maxBatchTimeout: c.maxBatchTimeoutMs / 1000,
      maxRetries: c.maxRetries,
      maxConcurrency: c.maxConcurrency,
      retryDelay: c.retryDelay,
      ...(c.deadLetterQueue ? { deadLetterQueue: c.deadLetterQueue } : {}),
    })),
  };
}

/** A var as Wrangler binds it: a string as text, anything else (parsed from TOML or JSON) as JSON. */
export const varBinding = (value: unknown): Binding =>
  typeof value === "string" ? { type: "text", value } : { type: "json", value: value as Json };

/** The dev loader: its script, and the token that hands it new versions (loader.ts). */
export interface DevLoader {
  script: string;
  token: string;
}

/**
 * One worker for miniflare (its config-shaped options, as Wrangler's): the dev loader's script, with the
 * worker's bindings, a Worker Loader and the run's token. `service_binding_extra_handlers` lets it run its bundle's scheduled();
 * `experimental` lets it load bundles with experimental flags, as miniflare allows its workers.
 */
function worker(name: string, dir: string, loader: DevLoader, compatibilityDate: string, env: Env, triggers: Triggers = []): WorkerOptions {
  return {
    config: {
      name,
      compatibilityDate,
      ...(triggers.length > 0 ? { triggers } : {}),
      compatibilityFlags: ["service_binding_extra_handlers", "experimental"],
      manifest: { mainModule: "index.js", modulesRoot: dir, modules: { "index.js": { type: "esm", contents: loader.script } } },
      env: { ...env, [DEV_LOADER_BINDING]: { type: "worker-loader" }, [DEV_TOKEN_BINDING]: varBinding(loader.token) },
    },
  };
}

export interface GatewayWorker {
  dir: string;
  compatibilityDate: string;
}

export interface FunctionWorker {
  fn: FunctionSource;
  dir: string;
  /** False while the function has never built: not routed (unless it runs in the gateway's isolate). */
  built: boolean;
  bindings: FunctionBindings;
}

function gatewayEnv(functions: FunctionWorker[]): Env {
  const routed = functions.filter((f) => isInline(f.fn) || f.built);
  const inline = routed.filter((f) => isInline(f.fn));
  const isolated = routed.filter((f) => !isInline(f.fn));
  const inlineEnv = Object.fromEntries(
    inline.map(({ fn, bindings }) => [
      fn.name,
      { vars: bindings.vars, secrets: fn.config.secrets?.required ?? [], queues: Object.keys(queueBindings(fn).producers) },
    ]),
  );
  const inlineSecrets = inline.flatMap(({ fn, bindings }) =>
    Object.entries(bindings.secrets).map(([name, value]) => [inlineSecretBinding(fn.name, name), varBinding(value)] as const),
  );
  const inlineQueues = inline.flatMap(({ fn }) =>
    Object.entries(queueBindings(fn).producers).map(([name, binding]) => [inlineQueueBinding(fn.name, name), binding] as const),
  );
  return {
    // No host objects in dev: a function's db(c) opens a connection per request, as on Cloudflare.
    ROUTES: varBinding(gatewayRoutes(routed.map((f) => ({ ...routeSettings(f.fn), dbPool: 0 })))),
    ...(inline.length > 0 ? { INLINE_ENV: varBinding(inlineEnv) } : {}),
    ...Object.fromEntries(inlineSecrets),
    ...Object.fromEntries(inlineQueues),
    ...Object.fromEntries(isolated.map(({ fn }): [string, Binding] => [bindingName(fn.name), { type: "worker", worker: serviceName(fn) }])),
  };
}

/** The workers miniflare runs, each a dev loader: the gateway, then one per function that has built. */
export function devWorkers(loader: DevLoader, gateway: GatewayWorker, functions: FunctionWorker[]): WorkerOptions[] {
  return [
    worker(GATEWAY_WORKER, gateway.dir, loader, gateway.compatibilityDate, gatewayEnv(functions)),
    ...functions.flatMap(({ fn, dir, built, bindings }): WorkerOptions[] => {
      if (!built) return [];
      const queues = queueBindings(fn);
      const env = {
        ...Object.fromEntries(Object.entries({ ...bindings.vars, ...bindings.secrets }).map(([name, value]) => [name, varBinding(value)])),
        ...queues.producers,
        // [[services]]: straight to the called function's worker (npm start goes through the gateway's FunctionCall).
        ...Object.fromEntries(
          (fn.config.services ?? []).flatMap((s): [string, Binding][] =>
            functions.some((other) => other.fn.name === s.service && other.built)
              ? [[s.binding, { type: "worker", worker: serviceName({ name: s.service }) }]]
              : [],
          ),
        ),
      };
      const options = worker(serviceName(fn), dir, loader, fn.config.compatibility_date, env, queues.consumers);
      const assets = fn.config.assets;
      // Static assets on miniflare's own asset worker, as `wrangler dev` serves them: the gateway's calls to the
      // function go through its router (files first, run_worker_first to the code), and the binding reaches the files.
      if (assets && (fn.build || existsSync(assets.directory))) {
        // A front end that has not built yet serves an empty folder (its page then says it was not built); a folder
        // that is not built is the user's to create (a typo in directory must not make one).
        if (fn.build && !existsSync(assets.directory)) mkdirSync(assets.directory, { recursive: true });
        options.config.assets = {
          directory: assets.directory,
          hasUserWorker: !fn.assetsOnly,
          ...(assets.html_handling ? { htmlHandling: assets.html_handling } : {}),
          ...(assets.not_found_handling ? { notFoundHandling: assets.not_found_handling } : {}),
          ...(assets.run_worker_first !== undefined ? { runWorkerFirst: assets.run_worker_first } : {}),
        };
        if (assets.binding) options.config.env = { ...options.config.env, [assets.binding]: { type: "assets" } };
      }
      return [options];
    }),
  ];
}
