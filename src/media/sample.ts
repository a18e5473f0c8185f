/**
 * What flows between media nodes. Timestamps are integers in the track's timescale; `pts90k` places a
 * sample on the graph's media timeline (90 kHz ticks since the stream's time zero), which every
 * time-based rule (signal gate, pre-roll, aggregation windows, sampling rates) uses.
 */

export type MediaKind = 'video' | 'audio' | 'application';
export type Codec = 'h264' | 'hevc' | 'aac' | 'opus' | 'other';

export interface TrackInfo {
  /** Track id as in the source container. */
  readonly id: number;
  readonly kind: MediaKind;
  readonly codec: Codec;
  /** RFC 6381 codec string, e.g. `avc1.64001f`, `mp4a.40.2`. */
  readonly codecString: string;
  /** Ticks per second of this track's timestamps. */
  readonly timescale: number;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
  /** The complete sample entry box (avc1/avc3/hvc1/hev1/mp4a…) as found in the source's stsd, so a
   * writer can reproduce the codec configuration byte for byte. */
  readonly sampleEntry: Buffer;
}

export interface Sample {
  readonly track: TrackInfo;
  /** Decode timestamp, track timescale. */
  readonly dts: number;
  /** Presentation timestamp, track timescale. */
  readonly pts: number;
  /** Duration, track timescale (0 when unknown). */
  readonly duration: number;
  /** True for sync samples (IDR / IRAP for video; every audio sample). */
  readonly keyframe: boolean;
  /** True when this sample follows a discontinuity (reconnect, gap, timestamp jump). */
  readonly discont?: boolean;
  /** Presentation time on the graph's media timeline, 90 kHz ticks. */
  readonly pts90k: number;
  /** Payload as stored in MP4 (length-prefixed NAL units for H.264/H.265, raw AAC frames). */
  readonly data: Buffer;
}

/** A decoded picture for analysis processors (motion detector, extensions). */
export interface Frame {
  /** Presentation time on the graph's media timeline, 90 kHz ticks; equals the pts90k of the sample it came from. */
  readonly pts90k: number;
  readonly width: number;
  readonly height: number;
  readonly format: 'gray';
  readonly data: Uint8Array;
}

export const TICKS_PER_SECOND = 90_000;

export function toTicks90k(value: number, timescale: number): number {
  return timescale === TICKS_PER_SECOND ? value : Math.round((value * TICKS_PER_SECOND) / timescale);
}

export function msToTicks(ms: number): number {
  return Math.round(ms * 90);
}

export function ticksToMs(ticks: number): number {
  return ticks / 90;
}
