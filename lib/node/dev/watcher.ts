/**
 * Watches the sources `npm run dev` serves and hands over saves in batches. Uses chokidar: Node 20's
 * recursive fs.watch on Linux loses a file once an editor saves it by renaming a temporary file over it.
 * Chokidar in turn drops a second "change" of a file within 50 ms of the first (its de-duplication), so
 * a save right after another (format on save) would go unseen: each change is checked again once that
 * window has passed.
 */
import { stat } from "node:fs/promises";
import { watch } from "chokidar";
import type { FSWatcher } from "chokidar";

export type ChangeKind = "add" | "addDir" | "change" | "unlink" | "unlinkDir";

export interface ChangeBatch {
  /** Absolute path → what happened to it last. */
  changes: Map<string, ChangeKind>;
  /** When the first file of the batch was saved (its mtime), in ms since the epoch: the start of the reload. */
  savedAt: number;
}

export interface SourceWatcher {
  ready: Promise<void>;
  close(): Promise<void>;
}

export interface WatchOptions {
  /** Folders watched recursively and single files (which may not exist yet). */
  paths: string[];
  onBatch: (batch: ChangeBatch) => void;
  /** Saves this close together are one batch (editors write a file in several steps). */
  settleMs?: number;
}

/** Longer than chokidar's 50 ms "change" throttle. */
const RECHECK_MS = 75;

const mtimeOf = (path: string) =>
  stat(path).then(
    (s) => s.mtimeMs,
    () => undefined,
  );

const IGNORED = /(^|[/\\])(node_modules|\.git)([/\\]|$)|\.sw[px]$|~$/;

/** Starts watching; the first batch comes from the first save after `ready`. */
export function watchSources({ paths, onBatch, settleMs = 10 }: WatchOptions): SourceWatcher {
  const watcher: FSWatcher = watch(paths, { ignoreInitial: true, ignored: (path) => IGNORED.test(path) });
  let pending = new Map<string, ChangeKind>();
  let firstEventAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  let closed = false;
  const record = (path: string, kind: ChangeKind) => {
    if (closed) return;
    if (pending.size === 0) firstEventAt = Date.now();
    pending.set(path, kind);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => void flush(), settleMs);
  };

  const flush = async () => {
    timer = undefined;
    const changes = pending;
    const eventAt = firstEventAt;
    pending = new Map();
    const saved = [...changes].filter(([, kind]) => kind === "add" || kind === "change").map(([path]) => path);
    const mtimes = await Promise.all(saved.map(mtimeOf));
    onBatch({ changes, savedAt: Math.min(eventAt, ...mtimes.map((m) => m ?? eventAt)) });
    // A later save of the same file that chokidar swallowed shows as a newer mtime once its window is over.
    setTimeout(() => {
      saved.forEach((path, i) => {
        void mtimeOf(path).then((now) => {
          if (now !== undefined && now !== mtimes[i]) record(path, "change");
        });
      });
    }, RECHECK_MS);
  };

  watcher.on("all", (kind, path) => record(path, kind as ChangeKind));

  return {
    ready: new Promise((resolve) => watcher.once("ready", () => resolve())),
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await watcher.close();
    },
  };
}
