/**
 * Small H.264 / H.265 bitstream helpers over MP4-style (length-prefixed) access units.
 *
 * Used to cross-check the sync flags a container claims (trun sample flags) against the payload, and
 * to build RFC 6381 codec strings from the decoder configuration records (avcC / hvcC).
 */

/** NAL unit types found in one length-prefixed access unit. Stops (without throwing) at a truncated
 * length field, because the purpose is classification, not validation. */
export function nalUnitTypes(data: Uint8Array, codec: 'h264' | 'hevc', lengthSize = 4): number[] {
  const types: number[] = [];
  let pos = 0;
  while (pos + lengthSize <= data.length) {
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + data[pos + i]!;
    pos += lengthSize;
    if (len === 0 || pos + len > data.length) break;
    const header = data[pos]!;
    types.push(codec === 'h264' ? header & 0x1f : (header >> 1) & 0x3f);
    pos += len;
  }
  return types;
}

/** H.264: an access unit is a random access point when it holds an IDR slice (nal_unit_type 5). */
export function isH264Idr(data: Uint8Array, lengthSize = 4): boolean {
  return nalUnitTypes(data, 'h264', lengthSize).includes(5);
}

/** H.265: IRAP pictures are nal_unit_type 16..23 (BLA, IDR, CRA and reserved IRAP types). */
export function isH265Irap(data: Uint8Array, lengthSize = 4): boolean {
  return nalUnitTypes(data, 'hevc', lengthSize).some((t) => t >= 16 && t <= 23);
}

export function isKeyframePayload(codec: 'h264' | 'hevc', data: Uint8Array, lengthSize = 4): boolean {
  return codec === 'h264' ? isH264Idr(data, lengthSize) : isH265Irap(data, lengthSize);
}

/** NALU length field size declared by an avcC record (lengthSizeMinusOne in byte 4). */
export function avcNalLengthSize(avcC: Uint8Array): number {
  if (avcC.length < 5) throw new Error(`avcC too short (${avcC.length} bytes)`);
  return (avcC[4]! & 0x03) + 1;
}

/** NALU length field size declared by an hvcC record (lengthSizeMinusOne in byte 21). */
export function hevcNalLengthSize(hvcC: Uint8Array): number {
  if (hvcC.length < 23) throw new Error(`hvcC too short (${hvcC.length} bytes)`);
  return (hvcC[21]! & 0x03) + 1;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** `avc1.PPCCLL` from an avcC record body (profile, constraint flags, level). */
export function avcCodecString(avcC: Uint8Array, prefix: 'avc1' | 'avc3' = 'avc1'): string {
  if (avcC.length < 4 || avcC[0] !== 1) throw new Error('avcC: not an AVCDecoderConfigurationRecord v1');
  return `${prefix}.${hex2(avcC[1]!)}${hex2(avcC[2]!)}${hex2(avcC[3]!)}`;
}

/**
 * `hvc1.1.6.L93.B0` style string from an hvcC record body (ISO/IEC 14496-15 Annex E): profile space
 * letter + profile idc, the 32 compatibility flags bit-reversed in hex, tier + level, then the six
 * constraint bytes with trailing zero bytes dropped.
 */
export function hevcCodecString(hvcC: Uint8Array, prefix: 'hvc1' | 'hev1' = 'hvc1'): string {
  if (hvcC.length < 23 || hvcC[0] !== 1) throw new Error('hvcC: not an HEVCDecoderConfigurationRecord v1');
  const b1 = hvcC[1]!;
  const profileSpace = b1 >> 6;
  const tier = (b1 >> 5) & 1;
  const profileIdc = b1 & 0x1f;
  let compat = ((hvcC[2]! << 24) | (hvcC[3]! << 16) | (hvcC[4]! << 8) | hvcC[5]!) >>> 0;
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = ((reversed << 1) | (compat & 1)) >>> 0;
    compat >>>= 1;
  }
  const constraints = Array.from(hvcC.subarray(6, 12));
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const levelIdc = hvcC[12]!;
  const space = profileSpace === 0 ? '' : String.fromCharCode(0x40 + profileSpace); // A, B, C
  const parts = [
    prefix,
    `${space}${profileIdc}`,
    reversed.toString(16).toUpperCase(),
    `${tier ? 'H' : 'L'}${levelIdc}`,
    ...constraints.map((c) => c.toString(16).toUpperCase()),
  ];
  return parts.join('.');
}
