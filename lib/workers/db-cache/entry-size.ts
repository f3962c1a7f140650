/**
 * About how much memory a cached read's rows take, so the read cache can keep a byte budget as well as a count: a
 * thousand rows of a large text or json column would otherwise stay in a host object's memory until they age out.
 * An estimate in the shape of V8's costs (a string's characters, a number's 8 bytes, an object's slots), not a
 * measurement; it walks each value once, on a miss that stores.
 */

/** What an object or array costs beside what it holds, and each of its properties. */
const OBJECT_BYTES = 32;
const SLOT_BYTES = 8;

/** About the bytes `value` takes, what it holds included. */
export function approximateBytes(value: unknown): number {
  switch (typeof value) {
    case "string":
      return 16 + value.length * 2;
    case "number":
    case "boolean":
    case "undefined":
      return SLOT_BYTES;
    case "bigint":
      return 24;
    case "object": {
      if (value === null) return SLOT_BYTES;
      if (ArrayBuffer.isView(value)) return OBJECT_BYTES + value.byteLength;
      if (value instanceof Date) return OBJECT_BYTES;
      let bytes = OBJECT_BYTES;
      if (Array.isArray(value)) for (const v of value as unknown[]) bytes += SLOT_BYTES + approximateBytes(v);
      else for (const [k, v] of Object.entries(value)) bytes += SLOT_BYTES + k.length + approximateBytes(v);
      return bytes;
    }
    default:
      return SLOT_BYTES;
  }
}
