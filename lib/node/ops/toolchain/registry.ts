/**
 * What the npm registry has that is newer than what package.json pins. One small request per package
 * (`/<name>/latest`); miniflare is compared with the version the newest Wrangler ships with (its `latest` tag
 * can lag behind Wrangler's), and the project's Node with the newest release of the same LTS line.
 */
import pLimit from "p-limit";
import semver from "semver";
import { z } from "zod";
import { installedVersion, pinnedDependencies } from "./versions.ts";

export interface Latest {
  name: string;
  installed: string | undefined;
  latest: string;
}

const manifestSchema = z.object({ version: z.string(), dependencies: z.record(z.string(), z.string()).optional() });
const packumentSchema = z.object({ versions: z.record(z.string(), z.unknown()) });

async function getJson(url: string, accept = "application/json"): Promise<unknown> {
  const res = await fetch(url, { headers: { accept }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}

const packageUrl = (registry: string, name: string) => `${registry.replace(/\/?$/, "/")}${name.replace("/", "%2f")}`;

/** The newest version of each pinned package the registry has (for a Node binary package: within its major). */
export async function latestVersions(root: string, registry: string): Promise<Latest[]> {
  const limit = pLimit(8);
  const pinned = pinnedDependencies(root).filter((d) => installedVersion(root, d.name) !== undefined || !d.optional);
  const latestOf = async (name: string): Promise<string> => {
    if (name === "miniflare") {
      const wrangler = manifestSchema.parse(await getJson(`${packageUrl(registry, "wrangler")}/latest`));
      const spec = wrangler.dependencies?.miniflare;
      if (spec && semver.valid(spec)) return spec;
    }
    if (/^node-(linux|darwin|win)-/.test(name)) {
      const installed = installedVersion(root, name) ?? pinnedDependencies(root).find((d) => d.name === name)?.spec ?? "0.0.0";
      const doc = packumentSchema.parse(await getJson(packageUrl(registry, name), "application/vnd.npm.install-v1+json"));
      const sameLine = Object.keys(doc.versions).filter(
        (v) => semver.valid(v) && semver.major(v) === semver.major(installed) && !semver.prerelease(v),
      );
      return semver.rsort(sameLine)[0] ?? installed;
    }
    return manifestSchema.parse(await getJson(`${packageUrl(registry, name)}/latest`)).version;
  };
  return Promise.all(
    pinned.map(({ name }) => limit(async () => ({ name, installed: installedVersion(root, name), latest: await latestOf(name) }))),
  );
}
