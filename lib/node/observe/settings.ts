/** The collector's settings, from the supervisor's environment (WORKYARD_LOG, WORKYARD_ERROR_RETENTION_DAYS) and what it started. */
import { join } from "node:path";
import type { ProjectPaths } from "../common/paths.ts";
import { UserError } from "../common/user-error.ts";
import type { BuildResult } from "../build/build.ts";
import type { RedisService } from "../redis/service.ts";
import type { Database } from "../runtime/database.ts";
import type { CollectorOptions } from "./collector.ts";
import type { MetricSources } from "./metrics.ts";
import { logTargetSchema } from "./log-stream.ts";
import { readPoolFigures } from "./pool-stats.ts";

export function collectorSettings(
  opts: { paths: ProjectPaths; env: NodeJS.ProcessEnv; log: (line: string) => void },
  release: BuildResult,
  database: Database,
  redis: RedisService,
  queues?: MetricSources["queues"],
): CollectorOptions {
  const logTarget = logTargetSchema.safeParse(opts.env.WORKYARD_LOG || "file");
  if (!logTarget.success)
    throw new UserError(`WORKYARD_LOG must be one of ${logTargetSchema.options.join(", ")} (got "${opts.env.WORKYARD_LOG}")`);
  const retention = Number(opts.env.WORKYARD_ERROR_RETENTION_DAYS || 14);
  if (!Number.isInteger(retention) || retention < 1) {
    throw new UserError(`WORKYARD_ERROR_RETENTION_DAYS must be a whole number of days (got "${opts.env.WORKYARD_ERROR_RETENTION_DAYS}")`);
  }
  const poolStatsUrl = database.backend.kind === "postgres" ? database.backend.pooler.statsUrl : undefined;
  return {
    releaseDir: release.releaseDir,
    manifest: release.manifest,
    root: opts.paths.root,
    databaseUrl: database.directUrl,
    logTarget: logTarget.data,
    logFile: join(opts.paths.logs, "requests.log"),
    errorRetentionDays: retention,
    sources: {
      ...(redis.stats ? { redisProxy: redis.stats } : {}),
      ...(queues ? { queues } : {}),
      ...(poolStatsUrl
        ? {
            pool: async () => {
              const u = poolStatsUrl();
              return u ? readPoolFigures(u) : undefined;
            },
          }
        : {}),
    },
    log: opts.log,
  };
}
