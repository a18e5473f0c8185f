import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes `data` to `file` so that a crash at any instant leaves either the old or the new content,
 * never a torn file: temp file in the same directory (mode 0600: stored state can hold secrets),
 * fsync, rename over the target, fsync the directory so the rename itself is durable.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  let dh: fs.FileHandle | undefined;
  try {
    dh = await fs.open(dir, 'r');
    await dh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await dh?.close().catch(() => {});
  }
}

/** Removes an atomic write's stray temp files (left by a crash between open and rename). */
export async function removeStrayTempFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir).catch(() => [] as string[])) {
    if (e.startsWith('.') && e.endsWith('.tmp')) {
      await fs.rm(path.join(dir, e), { force: true });
      n++;
    }
  }
  return n;
}
