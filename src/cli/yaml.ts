/**
 * A small YAML 1.2 emitter for the plain data the CLI prints (Kubernetes manifests): objects,
 * arrays, strings, numbers, booleans and null. Kept in-house so the published CLI has no YAML
 * dependency; the tests parse its output with the `yaml` package.
 */

/** A value the emitter can write. */
export type YamlValue =
  | string
  | number
  | boolean
  | null
  | readonly YamlValue[]
  | { readonly [key: string]: YamlValue | undefined };

// Plain scalars YAML would read back as something other than the same string.
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null|~|-?\.inf|\.nan)$/i;
const NUMERIC = /^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$|^0x[0-9a-f]+$|^0o[0-7]+$/i;
const PLAIN_SAFE = /^[A-Za-z0-9_./][A-Za-z0-9_./ :@=+-]*$/;

function scalar(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as YAML`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (
    value.length > 0 &&
    PLAIN_SAFE.test(value) &&
    !RESERVED.test(value) &&
    !NUMERIC.test(value) &&
    !value.endsWith(' ') &&
    !value.includes(': ') &&
    !value.endsWith(':') &&
    !value.includes(' #')
  ) {
    return value;
  }
  // JSON strings are valid YAML double-quoted scalars.
  return JSON.stringify(value);
}

function isBlock(value: unknown): value is string {
  return typeof value === 'string' && value.includes('\n') && !/[^\S\n]\n/.test(value);
}

function blockScalar(value: string, indent: string): string {
  const keep = value.endsWith('\n') ? '' : '-';
  const body = value.replace(/\n$/, '').split('\n');
  return `|${keep}\n${body.map((l) => (l.length ? indent + l : '')).join('\n')}`;
}

function emit(value: YamlValue, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value
      .map((item: YamlValue) => {
        if (item !== null && typeof item === 'object') {
          const inner = emit(item, `${indent}  `);
          if (Array.isArray(item) && item.length > 0) return `${indent}-\n${inner}`;
          if (!Array.isArray(item) && Object.keys(item).length > 0) {
            return `${indent}- ${inner.slice(indent.length + 2)}`;
          }
          return `${indent}- ${inner}`;
        }
        if (isBlock(item)) return `${indent}- ${blockScalar(item, `${indent}  `)}`;
        return `${indent}- ${scalar(item as string | number | boolean | null)}`;
      })
      .join('\n');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, YamlValue | undefined>).filter(
      (e): e is [string, YamlValue] => e[1] !== undefined,
    );
    if (entries.length === 0) return '{}';
    return entries
      .map(([k, v]) => {
        const key = scalar(k);
        if (v !== null && typeof v === 'object') {
          const empty = Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0;
          if (empty) return `${indent}${key}: ${Array.isArray(v) ? '[]' : '{}'}`;
          // Sequences under a key are written at the key's indentation (the Kubernetes style).
          return `${indent}${key}:\n${emit(v, Array.isArray(v) ? indent : `${indent}  `)}`;
        }
        if (isBlock(v)) return `${indent}${key}: ${blockScalar(v, `${indent}  `)}`;
        return `${indent}${key}: ${scalar(v as string | number | boolean | null)}`;
      })
      .join('\n');
  }
  return scalar(value);
}

/** Writes one value as a YAML document body (no `---`), ending with a newline. */
export function toYaml(value: YamlValue): string {
  return `${emit(value, '')}\n`;
}

/** Writes several documents separated by `---`, with an optional leading comment block. */
export function toYamlDocuments(docs: readonly YamlValue[], header?: string): string {
  const head = header
    ? `${header
        .split('\n')
        .map((l) => (l ? `# ${l}` : '#'))
        .join('\n')}\n`
    : '';
  return head + docs.map((d) => `---\n${toYaml(d)}`).join('');
}
