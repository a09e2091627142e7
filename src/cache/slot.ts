/**
 * Redis Cluster hash slot of a key (CRC16-XMODEM mod 16384, hash tags honoured), computed here
 * so a batch can be split per node before anything is sent. Same algorithm as the server's
 * `CLUSTER KEYSLOT`.
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  }
  return crc;
}

const encoder = new TextEncoder();
// ASCII keys (almost all keys) are hashed from their char codes without an encoding pass.
const scratch = new Uint8Array(1024);

/** Slot (0..16383) of `key`. */
export function keySlot(key: string): number {
  let bytes: Uint8Array;
  let len = key.length;
  let ascii = len <= scratch.length;
  if (ascii) {
    for (let i = 0; i < len; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) {
        ascii = false;
        break;
      }
      scratch[i] = c;
    }
  }
  if (ascii) {
    bytes = scratch;
  } else {
    bytes = encoder.encode(key);
    len = bytes.length;
  }
  // Hash tag: the part between the first `{` and the next `}`, if non-empty.
  let open = -1;
  for (let i = 0; i < len; i++) {
    if (bytes[i] === 0x7b) {
      open = i;
      break;
    }
  }
  if (open >= 0) {
    for (let j = open + 1; j < len; j++) {
      if (bytes[j] === 0x7d) {
        if (j > open + 1) return crc16(bytes, open + 1, j) & 0x3fff;
        break;
      }
    }
  }
  return crc16(bytes, 0, len) & 0x3fff;
}
