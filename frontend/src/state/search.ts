/**
 * What a list's search box means. Two kinds of narrowing:
 * - **names** (services, authors): exact keys the gateway filters on (`SubscribeRequest.services`,
 *   `.authors`), so the browser receives only those events;
 * - **text**: words that must all appear (case-insensitive) in a row's searchable text. The
 *   gateway has no text filter yet, so the page applies it to what it holds; when
 *   `SubscribeRequest.filter` (a CEL expression, issue 8) lands, `textFilterExpression` gives
 *   the same narrowing for the request, and the request builders add it in one line.
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

/**
 * The CEL expression that keeps what the text search keeps: every word appears, ignoring
 * case, in at least one of `fields` of `message` (e.g. `log_entry`, [`message`, `service`]).
 * `undefined` for an empty query. Ready for `SubscribeRequest.filter` (issue 8).
 */
export function textFilterExpression(
  message: string,
  fields: readonly string[],
  query: string,
): string | undefined {
  const words = queryWords(query);
  if (words.length === 0 || fields.length === 0) return undefined;
  const clause = (word: string): string => {
    const pattern = celString(`(?i)${literalRegex(word)}`);
    const any = fields.map((f) => `${message}.${f}.matches(${pattern})`).join(" || ");
    return fields.length > 1 ? `(${any})` : any;
  };
  return words.map(clause).join(" && ");
}
