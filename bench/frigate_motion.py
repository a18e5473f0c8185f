#!/usr/bin/python3
"""An OpenCV-Python motion detector built the way Frigate's "improved" detector works, as the speed
baseline for bench/motion-speed.ts (run with Debian's /usr/bin/python3 + python3-opencv).

Per frame (gray, already small): resize to FRAME_HEIGHT rows (nearest neighbour, like Frigate's
default), contrast normalisation (the 4th/96th percentiles, averaged over the last 50 frames, stretched
to 0..255), 3x3 Gaussian blur, absolute difference against a running average (alpha FRAME_ALPHA),
threshold, one dilation, external contours, boxes of the contours above a minimum area. A change over
more than LIGHTNING_FRACTION of the frame re-learns the background (Frigate's lightning rule); the
first frames (one second) only calibrate.

    /usr/bin/python3 bench/frigate_motion.py --file frames.gray --width 320 --height 180 --fps 25 \\
        [--rounds 3] [--json]

Frames are read from a raw 8-bit gray file into memory first; only the detection loop is timed, in
CPU time of this process (time.process_time), like the Node side (process.cpuUsage).
Prints the median µs/frame over the rounds and the number of motion frames (same on every round).
"""
import argparse
import json
import sys
import time

import cv2
import numpy as np

FRAME_HEIGHT = 100
THRESHOLD = 30
CONTOUR_AREA = 10
FRAME_ALPHA = 0.01
LIGHTNING_FRACTION = 0.8
CONTRAST_HISTORY = 50


class FrigateStyleDetector:
    def __init__(self, width, height, fps, contrast=True):
        self.contrast = contrast
        self.out_h = FRAME_HEIGHT
        self.out_w = int(round(width * FRAME_HEIGHT / height))
        self.size = (self.out_w, self.out_h)
        self.area = self.out_w * self.out_h
        self.fps = fps
        self.avg = np.zeros((self.out_h, self.out_w), np.float32)
        self.lows = np.zeros(CONTRAST_HISTORY, np.float32)
        self.highs = np.full(CONTRAST_HISTORY, 255, np.float32)
        self.slot = 0
        self.frames = 0
        self.calibrate_until = fps

    def detect(self, gray):
        small = cv2.resize(gray, self.size, interpolation=cv2.INTER_NEAREST)
        norm = self.normalise(small) if self.contrast else small
        blurred = cv2.GaussianBlur(norm, (3, 3), 1)
        self.frames += 1
        if self.frames <= self.calibrate_until:
            cv2.accumulateWeighted(blurred, self.avg, 1.0 if self.frames == 1 else 0.2)
            return []
        delta = cv2.absdiff(blurred, cv2.convertScaleAbs(self.avg))
        _, mask = cv2.threshold(delta, THRESHOLD, 255, cv2.THRESH_BINARY)
        mask = cv2.dilate(mask, None, iterations=1)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        changed = 0
        for c in contours:
            a = cv2.contourArea(c)
            changed += a
            if a > CONTOUR_AREA:
                boxes.append(cv2.boundingRect(c))
        if changed > LIGHTNING_FRACTION * self.area:
            # Lights on/off: adopt the new frame, report nothing, calibrate for a second.
            self.avg[:] = blurred
            self.calibrate_until = self.frames + self.fps
            return []
        cv2.accumulateWeighted(blurred, self.avg, FRAME_ALPHA)
        return boxes

    def normalise(self, small):
        # Contrast normalisation against a short history of the frame's percentiles.
        lo, hi = np.percentile(small, (4, 96))
        self.lows[self.slot] = lo
        self.highs[self.slot] = hi
        self.slot = (self.slot + 1) % CONTRAST_HISTORY
        n = min(self.frames + 1, CONTRAST_HISTORY)
        lo = float(self.lows[:n].mean()) if self.frames + 1 < CONTRAST_HISTORY else float(self.lows.mean())
        hi = float(self.highs[:n].mean()) if self.frames + 1 < CONTRAST_HISTORY else float(self.highs.mean())
        span = max(hi - lo, 1.0)
        return cv2.convertScaleAbs(small, alpha=255.0 / span, beta=-lo * 255.0 / span)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--file', required=True)
    ap.add_argument('--width', type=int, required=True)
    ap.add_argument('--height', type=int, required=True)
    ap.add_argument('--fps', type=int, default=25)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--no-contrast', action='store_true', help="Frigate's improve_contrast off")
    a = ap.parse_args()
    cv2.setNumThreads(1)  # one core, like the Node detector
    raw = np.fromfile(a.file, np.uint8)
    n = raw.size // (a.width * a.height)
    frames = [raw[i * a.width * a.height:(i + 1) * a.width * a.height].reshape(a.height, a.width) for i in range(n)]
    times = []
    motion_frames = 0
    for _ in range(a.rounds):
        det = FrigateStyleDetector(a.width, a.height, a.fps, contrast=not a.no_contrast)
        motion_frames = 0
        t0 = time.process_time()  # CPU time: robust to other work on a shared machine
        for f in frames:
            if det.detect(f):
                motion_frames += 1
        times.append((time.process_time() - t0) / n * 1e6)
    times.sort()
    result = {'usPerFrame': times[len(times) // 2], 'min': times[0], 'max': times[-1], 'frames': n,
              'motionFrames': motion_frames, 'opencv': cv2.__version__}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"frigate-style OpenCV: {result['usPerFrame']:.1f} us/frame over {n} frames, {motion_frames} motion frames")


if __name__ == '__main__':
    sys.exit(main())
