/**
 * WebSocket frames ↔ messages, in the proto3 JSON mapping and nothing hand-written: a request is
 * `toJsonString(SubscribeRequestSchema, …)`, each response frame is parsed by
 * `fromJsonString(SubscribeResponseSchema, …)`. A frame that does not parse becomes a value,
 * never an exception that could reach React.
 */
import { create, fromJson, fromJsonString, toJsonString, type JsonValue } from "@bufbuild/protobuf";
import {
  SubscribeRequestSchema,
  SubscribeResponseSchema,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";

/**
 * The WebSocket subprotocol in which the gateway sends each frame as a JSON array of the
 * responses ready at that moment: far fewer frames for the browser at thousands of events/s.
 */
export const BATCH_PROTOCOL = "streamweaver.v1.batch";

/** The `code` of the StreamError the client makes up for a frame it could not read. */
export const MALFORMED_FRAME_CODE = "CLIENT_MALFORMED_FRAME";

export type ParsedFrame =
  | { ok: true; response: SubscribeResponse }
  | { ok: false; error: string };

/** Encodes a request as the text frame the gateway's `/ws` endpoint expects. */
export function encodeRequest(request: SubscribeRequest): string {
  return toJsonString(SubscribeRequestSchema, request);
}

/** Decodes one text frame; unknown fields are ignored so the server may add fields. */
export function parseFrame(text: string): ParsedFrame {
  try {
    const response = fromJsonString(SubscribeResponseSchema, text, { ignoreUnknownFields: true });
    if (response.kind.case === undefined) {
      return { ok: false, error: "frame holds no event, gap, heartbeat or error" };
    }
    return { ok: true, response };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** A StreamError response standing for a frame the client could not read. */
export function malformedFrameResponse(error: string): SubscribeResponse {
  return create(SubscribeResponseSchema, {
    kind: {
      case: "error",
      value: { code: MALFORMED_FRAME_CODE, message: `unreadable frame: ${error}` },
    },
  });
}

/** Parses a frame, turning a bad one into a client-side StreamError response. */
export function frameToResponse(text: string): SubscribeResponse {
  const parsed = parseFrame(text);
  return parsed.ok ? parsed.response : malformedFrameResponse(parsed.error);
}

/** One response from an already-parsed JSON value, or a StreamError standing for it. */
function valueToResponse(value: JsonValue): SubscribeResponse {
  try {
    const response = fromJson(SubscribeResponseSchema, value, { ignoreUnknownFields: true });
    return response.kind.case === undefined
      ? malformedFrameResponse("frame holds no event, gap, heartbeat or error")
      : response;
  } catch (err) {
    return malformedFrameResponse(err instanceof Error ? err.message : String(err));
  }
}

/** Parses a batched frame (a JSON array of responses); a lone object is taken too. */
export function batchFrameToResponses(text: string): SubscribeResponse[] {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (err) {
    return [malformedFrameResponse(err instanceof Error ? err.message : String(err))];
  }
  return Array.isArray(value) ? value.map(valueToResponse) : [valueToResponse(value)];
}
