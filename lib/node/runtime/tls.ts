/**
 * HTTPS straight from workerd, for `npm start` without a proxy in front: TLS_CERT and TLS_KEY name PEM files
 * (certificate chain and private key), HTTPS_PORT (default 8443) is where the gateway serves HTTPS, and the HTTP
 * port then answers only redirects to it. In production the usual path is Caddy in front (automatic
 * certificates); this is for a box without it, or for trying TLS locally with a self-signed certificate.
 *
 * The key is never copied: the generated config names the files by a relative `embed` path (Cap'n Proto refuses
 * absolute ones) and workerd reads them itself at start, so a restart picks up a renewed certificate. The config
 * is written per start to .workyard/run/, beside the immutable release, which stays TLS-free.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { z } from "zod";
import { UserError } from "../common/user-error.ts";
import type { Manifest } from "../releases/manifest.ts";
import { serveConfig } from "../build/serve-config.ts";
import { rebaseModules, serializeConfig } from "../build/workerd-config.ts";

export interface TlsSettings {
  certFile: string;
  keyFile: string;
  httpsPort: number;
}

const schema = z.object({
  TLS_CERT: z.string().optional(),
  TLS_KEY: z.string().optional(),
  HTTPS_PORT: z.coerce.number().int().min(0).max(65535).default(8443),
});

/** TLS settings from the environment, or undefined when TLS is off (neither TLS_CERT nor TLS_KEY set). */
export function tlsSettings(env: NodeJS.ProcessEnv, cwd = process.cwd()): TlsSettings | undefined {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new UserError(`HTTPS_PORT must be a port number (got "${env.HTTPS_PORT}")`);
  const { TLS_CERT, TLS_KEY, HTTPS_PORT } = parsed.data;
  if (!TLS_CERT && !TLS_KEY) return undefined;
  if (!TLS_CERT || !TLS_KEY)
    throw new UserError("Set both TLS_CERT (the certificate chain, PEM) and TLS_KEY (its private key, PEM), or neither");
  return { certFile: resolve(cwd, TLS_CERT), keyFile: resolve(cwd, TLS_KEY), httpsPort: HTTPS_PORT };
}

/** Reads both files once to fail early with a clear message: missing, not PEM, or a key that is not the certificate's. */
export async function checkKeypair({ certFile, keyFile }: TlsSettings): Promise<X509Certificate> {
  const read = (file: string, what: string) =>
    readFile(file).catch((err: unknown) => {
      throw new UserError(`Cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
    });
  const [certPem, keyPem] = await Promise.all([read(certFile, "TLS_CERT"), read(keyFile, "TLS_KEY")]);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new UserError(`TLS_CERT ${certFile} is not a PEM certificate`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new UserError(`TLS_KEY ${keyFile} is not a PEM private key (or it is encrypted; workerd needs it unencrypted)`, { cause: err });
  }
  if (!cert.checkPrivateKey(key)) throw new UserError(`TLS_KEY ${keyFile} is not the private key of the certificate in ${certFile}`);
  return cert;
}

/**
 * Writes the workerd config that serves the release with an HTTPS socket too, and returns its path. Only paths
 * go into the file, never the key.
 */
export async function writeTlsConfig(opts: {
  runDir: string;
  releaseDir: string;
  manifest: Manifest;
  tls: TlsSettings;
  httpsPort: number;
}): Promise<string> {
  const file = join(opts.runDir, `workerd-${opts.manifest.id}-tls.capnp`);
  const from = (target: string) => relative(dirname(file), target).split("\\").join("/");
  const config = serveConfig(opts.manifest, {
    address: "127.0.0.1:8787",
    internalAddress: "127.0.0.1:8788",
    tls: {
      address: `127.0.0.1:${opts.httpsPort}`,
      port: opts.httpsPort,
      certificateChain: from(opts.tls.certFile),
      privateKey: from(opts.tls.keyFile),
    },
  });
  await mkdir(opts.runDir, { recursive: true, mode: 0o700 });
  await writeFile(file, serializeConfig(rebaseModules(config, from(opts.releaseDir))));
  return file;
}
