// Locates the ffmpeg/ffprobe binaries. An explicit env variable wins (FFMPEG_PATH / FFPROBE_PATH) so
// deployments can pin a build; otherwise PATH is searched. A missing binary is reported once, at the
// caller's start-up, with the command that fixes it — never as an ENOENT deep inside a media pipeline.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

const INSTALL_HINT = 'install it with `apt-get install ffmpeg` (Debian/Ubuntu; run as root or with sudo)';

/** Results keyed by (name, env override, PATH), so a changed environment is honoured but lookups stay cheap. */
const cache = new Map<string, string>();

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pure resolution rule, exported for tests: `override` (the env variable's value) when set, else the
 * first executable `name` in `searchPath`. Returns undefined when nothing fits.
 */
export function resolveExecutable(
  name: string,
  override: string | undefined,
  searchPath: string | undefined,
  isExecutable: (path: string) => boolean = isExecutableFile,
): string | undefined {
  if (override !== undefined && override !== '') {
    const candidate = isAbsolute(override) ? override : resolve(override);
    return isExecutable(candidate) ? candidate : undefined;
  }
  for (const dir of (searchPath ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function find(name: 'ffmpeg' | 'ffprobe', envVar: 'FFMPEG_PATH' | 'FFPROBE_PATH'): string {
  const override = process.env[envVar];
  const searchPath = process.env.PATH;
  const key = `${name}\0${override ?? ''}\0${searchPath ?? ''}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const found = resolveExecutable(name, override, searchPath);
  if (found === undefined) {
    const where = override ? `${envVar}=${override} is not an executable file` : `${name} was not found on PATH`;
    throw new Error(`${where}; ${INSTALL_HINT}, or set ${envVar} to the binary`);
  }
  cache.set(key, found);
  return found;
}

/** Absolute path of ffmpeg (env FFMPEG_PATH, else PATH). Throws an Error naming `apt-get install ffmpeg`. */
export function findFfmpeg(): string {
  return find('ffmpeg', 'FFMPEG_PATH');
}

/** Absolute path of ffprobe (env FFPROBE_PATH, else PATH). Throws an Error naming `apt-get install ffmpeg`. */
export function findFfprobe(): string {
  return find('ffprobe', 'FFPROBE_PATH');
}
