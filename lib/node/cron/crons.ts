/**
 * Cron expressions, parsed by croner in UTC (as Cloudflare runs them). Five fields as on Cloudflare; a
 * sixth leading seconds field also works here (useful in tests), though Cloudflare would refuse it.
 */
import { Cron } from "croner";
import { ConfigError } from "../build/wrangler-config.ts";

/** A paused croner job for the expression, for computing fire times. Throws on an invalid expression. */
export function parseCron(expression: string): Cron {
  return new Cron(expression, { timezone: "UTC", paused: true });
}

/** Why the expression is not a valid cron, or undefined when it is. */
export function cronProblem(expression: string): string | undefined {
  try {
    parseCron(expression).stop();
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^CronPattern: /, "");
  }
}

/** The next fire time after `after`. */
export function nextFire(expression: string, after = new Date()): Date | null {
  const cron = parseCron(expression);
  const next = cron.nextRun(after);
  cron.stop();
  return next;
}

/** The latest fire time at or before `before`. */
export function previousFire(expression: string, before = new Date()): Date | undefined {
  const cron = parseCron(expression);
  const [previous] = cron.previousRuns(1, new Date(before.getTime() + 1));
  cron.stop();
  return previous;
}

/** Fails with every invalid cron of every function, naming the function and the expression. */
export function checkCrons(functions: { name: string; crons: string[] }[]): void {
  const problems = functions.flatMap((fn) =>
    fn.crons.flatMap((expr) => {
      const problem = cronProblem(expr);
      return problem ? [`  - functions/${fn.name}: "${expr}": ${problem}`] : [];
    }),
  );
  if (problems.length > 0) {
    throw new ConfigError(
      `Invalid cron expression${problems.length > 1 ? "s" : ""} in [triggers] crons:\n${problems.join("\n")}\n` +
        'A cron has five fields: minute hour day-of-month month day-of-week, e.g. "*/5 * * * *" (UTC).',
    );
  }
}
