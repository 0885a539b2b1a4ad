// Unit tests for the streaming multipart parser: parts split across arbitrary chunk boundaries.
import { expect, test } from "bun:test";
import { boundaryOf, MultipartError, parseMultipart } from "./multipart.ts";

async function collect(body: Uint8Array, boundary: string, chunk: number) {
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < body.byteLength; i += chunk) c.enqueue(body.slice(i, i + chunk));
      c.close();
    },
  });
  const parts: { name?: string; filename?: string; data: string }[] = [];
  for await (const p of parseMultipart(stream, boundary)) {
    let data = "";
    if (p.name !== "skipped") for await (const c of p.body) data += new TextDecoder().decode(c);
    parts.push({ name: p.name, filename: p.filename, data });
  }
  return parts;
}

test("real FormData encodings parse identically at every chunk size", async () => {
  const fd = new FormData();
  fd.append("file", new Blob(["first\r\n--not-a-boundary\r\n"]), "/tmp/a b\".txt");
  fd.append("skipped", "ignored value");
  fd.append("file", new Blob([""]), "empty.txt");
  const req = new Request("http://x/", { method: "POST", body: fd });
  const boundary = boundaryOf(req.headers.get("content-type")!)!;
  const body = new Uint8Array(await req.arrayBuffer());
  for (const chunk of [1, 2, 3, 7, 64, 100_000]) {
    const parts = await collect(body, boundary, chunk);
    expect(parts).toEqual([
      { name: "file", filename: '/tmp/a b".txt', data: "first\r\n--not-a-boundary\r\n" },
      { name: "skipped", filename: undefined, data: "" },
      { name: "file", filename: "empty.txt", data: "" },
    ]);
  }
});

test("truncated bodies are errors, not hangs", async () => {
  const body = new TextEncoder().encode('--b\r\ncontent-disposition: form-data; name="file"; filename="x"\r\n\r\nabc');
  await expect(collect(body, "b", 4)).rejects.toBeInstanceOf(MultipartError);
  await expect(collect(new TextEncoder().encode("no boundary here"), "b", 4)).rejects.toBeInstanceOf(MultipartError);
});
