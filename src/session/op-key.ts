import { randomBytes } from 'node:crypto';

/**
 * Operation records: where a session script notes that it ran, so that ioredis resending the
 * same command after a lost reply finds the note instead of applying the change again. The
 * record must live in the session key's hash slot (a Cluster script may only touch keys of one
 * slot), and it is declared in KEYS like every key a script touches.
 */

const PROCESS = randomBytes(6).toString('base64url');
let counter = 0;

/**
 * A fresh operation id: unique per process (a random process part) and call (a counter); no
 * CSPRNG call per operation.
 */
export function newOperationId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return PROCESS + counter.toString(36);
}

/**
 * The hash tag that puts a key in the same Cluster slot as `key`. Redis hashes the text between
 * the first `{` and the first `}` after it when that is not empty, else the whole key.
 */
export function sameSlotTag(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open, close + 1);
  }
  // The whole key is hashed: `{key}` hashes the same text unless the key holds a `}` (then the
  // tag would end early), and for those rare keys a short tag of the same slot is looked up.
  if (!key.includes('}')) return `{${key}}`;
  return `{${slotTag(keySlot(key))}}`;
}

/** The operation record of `opId` on the session at `key`. */
export function operationKey(key: string, opId: string): string {
  return `${sameSlotTag(key)}:op:${opId}`;
}

// CRC16/XMODEM, as Redis Cluster computes slots.
let crcTable: Uint16Array | undefined;
function crc16(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint16Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i << 8;
      for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
      crcTable[i] = c;
    }
  }
  let crc = 0;
  for (const b of bytes)
    crc = ((crc << 8) & 0xffff) ^ (crcTable[((crc >> 8) ^ b) & 0xff] as number);
  return crc;
}

/** The Cluster slot of a key that has no hash tag (the whole key is hashed). */
export function keySlot(key: string): number {
  return crc16(Buffer.from(key)) % 16384;
}

let slotTags: string[] | undefined;
/** A short tag text whose slot is `slot` (a table of all 16384, built once on first need). */
function slotTag(slot: number): string {
  if (slotTags === undefined) {
    const tags: string[] = new Array(16384);
    let left = 16384;
    for (let n = 0; left > 0; n++) {
      const t = n.toString(36);
      const s = keySlot(t);
      if (tags[s] === undefined) {
        tags[s] = t;
        left--;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot] as string;
}
