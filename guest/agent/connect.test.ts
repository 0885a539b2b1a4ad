// Unit tests for the Connect envelope codec and stream responses (e2b-protocol.md §3.1).
import { expect, test } from "bun:test";
import { ConnectError, decodeSingleEnvelope, encodeEnvelope, streamResponse } from "./connect.ts";

test("envelope round trip and rejection of malformed frames", () => {
  const env = encodeEnvelope(0, { a: 1 });
  expect([...env.subarray(0, 5)]).toEqual([0, 0, 0, 0, 7]);
  expect(decodeSingleEnvelope(env)).toEqual({ a: 1 });
  const bad = (b: number[]) => {
    try {
      decodeSingleEnvelope(new Uint8Array(b));
    } catch (e) {
      return (e as ConnectError).code;
    }
    return "accepted";
  };
  expect(bad([0, 0, 0])).toBe("invalid_argument");
  expect(bad([1, 0, 0, 0, 2, 123, 125])).toBe("invalid_argument");
  expect(bad([0, 0, 0, 0, 9, 123, 125])).toBe("invalid_argument");
  expect(bad([0, 0, 0, 0, 2, 91, 93])).toBe("invalid_argument");
});

test("a stream ends with exactly one end-stream envelope, errors included", async () => {
  const res = streamResponse((sink) => {
    sink.send({ x: 1 });
    sink.end(new ConnectError("not_found", "gone"));
    sink.end();
    sink.send({ y: 2 });
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/connect+json");
  const b = new Uint8Array(await res.arrayBuffer());
  const first = encodeEnvelope(0, { x: 1 });
  expect([...b.subarray(0, first.byteLength)]).toEqual([...first]);
  expect(b[first.byteLength]).toBe(2);
  expect(JSON.parse(new TextDecoder().decode(b.subarray(first.byteLength + 5)))).toEqual({ error: { code: "not_found", message: "gone" }, metadata: {} });
});
