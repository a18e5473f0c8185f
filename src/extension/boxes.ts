import type { Inference } from '../nodes/node.js';

export interface ContentBox {
  readonly l: number;
  readonly t: number;
  readonly w: number;
  readonly h: number;
}

const FULL: ContentBox = { l: 0, t: 0, w: 1, h: 1 };

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

/**
 * Boxes an extension returns are relative to the image it received. With Pad scaling the frame
 * occupies only `content` of that image (black bars around it), and LVA publishes boxes relative to
 * the original frame (lva-spec §5.2: 0.2 left/right padding maps (0.2,0,0.6,1) to (0,0,1,1)). Boxes
 * falling partly on a bar are clipped to the frame. Inferences are copied, never mutated.
 */
export function mapBoxesToFrame(inferences: readonly Inference[], content: ContentBox = FULL): Inference[] {
  if (content.l === 0 && content.t === 0 && content.w === 1 && content.h === 1) return inferences.slice();
  return inferences.map((inf) => {
    const payload = inf[inf.type];
    if (!payload || typeof payload !== 'object' || !('box' in payload)) return inf;
    const box = (payload as { box?: unknown }).box as { l: number; t: number; w: number; h: number } | undefined;
    if (!box || typeof box.l !== 'number') return inf;
    const l = clamp01((box.l - content.l) / content.w);
    const t = clamp01((box.t - content.t) / content.h);
    const r = clamp01((box.l + box.w - content.l) / content.w);
    const b = clamp01((box.t + box.h - content.t) / content.h);
    const mapped = { l: round6(l), t: round6(t), w: round6(r - l), h: round6(b - t) };
    return { ...inf, [inf.type]: { ...(payload as object), box: mapped } } as Inference;
  });
}
