/**
 * What a list's search box means. Two kinds of narrowing:
 * - **names** (services, authors): exact keys the gateway filters on (`SubscribeRequest.services`,
 *   `.authors`), so the browser receives only those events;
 * - **text**: words that must all appear (case-insensitive) in a row's searchable text. The
 *   page applies it at once to what it holds, and `searchExpression` turns it into a CEL
 *   `SubscribeRequest.filter` that keeps at least what the page keeps, so the gateway sends
 *   only the rows the search can show (the request builders in `requests.ts`).
 */

/** Splits a names box (`"payment-service, auth-service"`) into distinct, non-empty names. */
export function parseNames(input: string): string[] {
  const names = input
    .split(/[\s,]+/)
    .map((n) => n.trim().replace(/^@/, ""))
    .filter(Boolean);
  return [...new Set(names)].slice(0, 32);
}

/** The words of a text query, lower-cased; an empty query matches everything. */
export function queryWords(query: string): string[] {
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 16);
}

/** Whether `haystack` (already lower-cased) holds every word. */
export function matchesWords(haystack: string, words: readonly string[]): boolean {
  for (const w of words) if (!haystack.includes(w)) return false;
  return true;
}

/** Keeps the rows whose `haystack` holds every word of `query` (the same array when empty). */
export function filterByText<T extends { readonly haystack: string }>(
  rows: readonly T[],
  query: string,
): readonly T[] {
  const words = queryWords(query);
  if (words.length === 0) return rows;
  return rows.filter((r) => matchesWords(r.haystack, words));
}

/** A CEL string literal for `text` (double-quoted, escaped). */
export function celString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** `text` as a regular expression that matches it literally (RE2 syntax). */
export function literalRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

/** How the text search of a list is said in CEL. */
export interface SearchSpec {
  /** CEL strings a word may appear in, ignoring case (e.g. `log_entry.message`). */
  readonly operands: readonly string[];
  /** Further CEL alternatives for a word (e.g. the levels whose names contain it). */
  readonly extra?: (word: string) => readonly string[];
  /**
   * Most words said to the gateway (it bounds an expression's size and loops); the page still
   * applies every word, and fewer words only narrow less.
   */
  readonly maxWords?: number;
}

/**
 * The CEL expression that keeps what the text search keeps: every word appears, ignoring
 * case, in one of `spec.operands` or satisfies one of `spec.extra(word)`. `undefined` for an
 * empty query. For `SubscribeRequest.filter`.
 */
export function searchExpression(query: string, spec: SearchSpec): string | undefined {
  const words = queryWords(query).slice(0, spec.maxWords ?? Infinity);
  if (words.length === 0) return undefined;
  const clause = (word: string): string => {
    const pattern = celString(`(?i)${literalRegex(word)}`);
    const any = [...spec.operands.map((o) => `${o}.matches(${pattern})`), ...(spec.extra?.(word) ?? [])];
    return any.length > 1 ? `(${any.join(" || ")})` : (any[0] ?? "false");
  };
  return words.map(clause).join(" && ");
}

/**
 * The CEL expression that keeps rows whose `fields` of `message` (e.g. `log_entry`,
 * [`message`, `service`]) hold every word of `query`, ignoring case.
 */
export function textFilterExpression(
  message: string,
  fields: readonly string[],
  query: string,
): string | undefined {
  if (fields.length === 0) return undefined;
  return searchExpression(query, { operands: fields.map((f) => `${message}.${f}`) });
}
