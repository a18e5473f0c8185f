#!/usr/bin/env node
// Makes sure the system binaries lva-edge needs are present (npm `predemo`/`pretest` hooks).
//
//   node scripts/ensure-system-deps.mjs           ffmpeg + ffprobe
//   node scripts/ensure-system-deps.mjs --test    + /usr/bin/python3 with gi, Gst and GstRtspServer and the
//                                                 GStreamer elements the RTSP test server uses, + mosquitto
//   node scripts/ensure-system-deps.mjs --bench   + everything --test needs, the Motion daemon (Debian `motion`,
//                                                 the peer the motion benches compare with) and
//                                                 /usr/bin/python3 with OpenCV (python3-opencv: bench/frigate_motion.py)
//   --check                                       report only, never install (exit 1 when something is missing)
//
// Fast no-op when everything is present. Otherwise, as root on Debian/Ubuntu (apt-get exists), it runs
// `apt-get update` once and installs the missing packages without recommends; without root it prints the
// exact command to run and exits 1. Honours FFMPEG_PATH / FFPROBE_PATH like the daemon does.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = new Set(process.argv.slice(2));
const forBench = args.has('--bench');
const forTests = args.has('--test') || forBench;
const checkOnly = args.has('--check');

const GST_PACKAGES = [
  'python3-gi',
  'gir1.2-gst-rtsp-server-1.0',
  'gstreamer1.0-plugins-base',
  'gstreamer1.0-plugins-good',
  'gstreamer1.0-plugins-bad',
  'gstreamer1.0-plugins-ugly',
  'gstreamer1.0-libav',
];
// Elements test/fixtures/gst_rtsp_server.py builds its mounts from.
const GST_ELEMENTS = [
  'videotestsrc', 'audiotestsrc', 'audioconvert', 'audioresample', // base
  'rtph264pay', 'rtph265pay', 'rtpmp4gpay', 'rtph264depay', 'udpsrc', 'qtdemux', 'matroskademux', // good
  'h264parse', 'h265parse', 'x265enc', 'tsdemux', // bad
  'x264enc', // ugly
  'avenc_aac', // libav
];

function isExecutable(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  return dirs.some((dir) => isExecutable(join(dir, name)));
}

function haveBinary(name, envVar) {
  const override = envVar ? process.env[envVar] : undefined;
  if (override) return isExecutable(override);
  return onPath(name);
}

const GST_PROBE = `
import sys
import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in sys.argv[1:] if Gst.ElementFactory.find(e) is None]
if missing:
    sys.exit('missing GStreamer elements: ' + ' '.join(missing))
`;

function gstProblem() {
  if (!isExecutable('/usr/bin/python3')) return '/usr/bin/python3 not found';
  const r = spawnSync('/usr/bin/python3', ['-c', GST_PROBE, ...GST_ELEMENTS], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return undefined;
  const lines = `${r.stderr ?? ''}`.trim().split('\n');
  return lines[lines.length - 1] || `python GStreamer probe failed (status ${r.status})`;
}

/** @returns {{ what: string, packages: string[] }[]} */
function findMissing() {
  const missing = [];
  if (!haveBinary('ffmpeg', 'FFMPEG_PATH')) missing.push({ what: 'ffmpeg', packages: ['ffmpeg'] });
  if (!haveBinary('ffprobe', 'FFPROBE_PATH')) missing.push({ what: 'ffprobe', packages: ['ffmpeg'] });
  if (forTests) {
    const problem = gstProblem();
    if (problem) missing.push({ what: `GStreamer RTSP server for tests (${problem})`, packages: GST_PACKAGES });
    // Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    if (!onPath('mosquitto', ['/usr/sbin'])) missing.push({ what: 'mosquitto', packages: ['mosquitto'] });
  }
  if (forBench) {
    if (!isExecutable('/usr/bin/motion')) missing.push({ what: 'Motion daemon (/usr/bin/motion)', packages: ['motion'] });
    const cv = isExecutable('/usr/bin/python3')
      ? spawnSync('/usr/bin/python3', ['-c', 'import cv2, numpy'], { encoding: 'utf8', timeout: 60_000 }).status
      : 1;
    if (cv !== 0) missing.push({ what: 'OpenCV for /usr/bin/python3', packages: ['python3-opencv', 'python3-numpy'] });
  }
  return missing;
}

function run(command, commandArgs, env) {
  console.error(`ensure-system-deps: ${command} ${commandArgs.join(' ')}`);
  const r = spawnSync(command, commandArgs, { stdio: 'inherit', env });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

const missing = findMissing();
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.flatMap((m) => m.packages))];
const aptArgs = ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...packages];
console.error(`ensure-system-deps: missing: ${missing.map((m) => m.what).join('; ')}`);

const hasApt = existsSync('/usr/bin/apt-get');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (checkOnly || !hasApt || !isRoot) {
  if (hasApt) {
    const sudo = isRoot ? '' : 'sudo ';
    console.error('ensure-system-deps: install them with:');
    console.error(`  ${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get ${aptArgs.join(' ')}`);
  } else {
    console.error(`ensure-system-deps: no apt-get here; install the equivalents of: ${packages.join(' ')}`);
    console.error('  (or point FFMPEG_PATH / FFPROBE_PATH at existing binaries)');
  }
  process.exit(1);
}

const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
if (run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], env) !== 0) {
  console.error('ensure-system-deps: apt-get update failed');
  process.exit(1);
}
if (run('apt-get', aptArgs, env) !== 0) {
  console.error('ensure-system-deps: apt-get install failed');
  process.exit(1);
}
const still = findMissing();
if (still.length > 0) {
  console.error(`ensure-system-deps: still missing after install: ${still.map((m) => m.what).join('; ')}`);
  process.exit(1);
}
console.error('ensure-system-deps: all system dependencies present');
