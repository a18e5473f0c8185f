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
  /** 'gray': `data` is width*height luma for pixel analysis (motion). 'none': no processor asked for
   * analysis pixels; `data` is empty and the frame only carries `images` (extensions). */
  readonly format: 'gray' | 'none';
  readonly data: Uint8Array;
  /** Images encoded by ffmpeg for extensions, from the same decoded picture, keyed by ImageRequest key. */
  readonly images?: ReadonlyMap<string, EncodedImage>;
}

/** One picture as an extension receives it (lva-spec §2.3 Image): scaled and encoded by ffmpeg. */
export interface EncodedImage {
  readonly width: number;
  readonly height: number;
  /** MIME type sent as Content-Type: image/jpeg, image/png, image/bmp or image/x-raw. */
  readonly contentType: string;
  /** Raw only: the ffmpeg pixel format name (e.g. rgb24) and bytes per row of plane 0. */
  readonly pixelFormat?: string;
  readonly stride?: number;
  /** Where the source picture sits inside the image (Pad mode adds bars), as fractions of the image:
   * boxes the extension returns relative to the image are mapped back to the frame with it. */
  readonly content: { readonly l: number; readonly t: number; readonly w: number; readonly h: number };
  readonly data: Buffer;
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
