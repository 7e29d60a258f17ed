/**
 * A list's text search, said to the gateway as well: once typing stops for a moment the query
 * becomes the subscription's CEL `filter` (each change re-subscribes, so not on every
 * keystroke), and the gateway sends only rows the search can show. Should the gateway refuse
 * the expression, the filter is dropped and its words are kept for the panel to show: the
 * search goes on, on the page alone.
 */
import { useCallback, useEffect, useState } from "react";
import type { SubscribeRequest } from "../gen/streamweaver/v1/stream_pb";

/** How long typing must stop before the search goes to the gateway. */
export const SERVER_SEARCH_DELAY_MS = 600;

export interface ServerSearch {
  /** The CEL filter for the request ("" for none). */
  readonly filter: string;
  /** The gateway's words when it refused the search as a filter. */
  readonly refused: string | undefined;
  /** For `useStream`: the gateway refused `request`. */
  readonly onRefused: (message: string, request: SubscribeRequest) => void;
}

export function useServerSearch(
  query: string,
  toFilter: (query: string) => string,
  delayMs = SERVER_SEARCH_DELAY_MS,
): ServerSearch {
  const [settled, setSettled] = useState(query);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(query), delayMs);
    return () => clearTimeout(timer);
  }, [query, delayMs]);
  const wanted = toFilter(settled);
  const [refusal, setRefusal] = useState<{ filter: string; message: string }>();
  const onRefused = useCallback((message: string, request: SubscribeRequest) => {
    if (request.filter) setRefusal({ filter: request.filter, message });
  }, []);
  const refused = refusal?.filter === wanted ? refusal.message : undefined;
  return { filter: refused === undefined ? wanted : "", refused, onRefused };
}
