// Drives a running autoglm with the official openai npm client. The test script starts
// mockllm and autoglm and passes the gateway's address in AUTOGLM_URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.AUTOGLM_URL;
if (!baseURL) throw new Error("AUTOGLM_URL is not set");
const model = process.env.AUTOGLM_MODEL ?? "glm-4-flash";
const client = new OpenAI({ baseURL, apiKey: process.env.AUTOGLM_KEY ?? "unused", maxRetries: 0 });

test("chat completion", async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Say something." }],
    max_tokens: 8,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(r.usage.completion_tokens > 0);
});

test("streamed chat completion with usage", async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "Tell a story." }],
    max_tokens: 12,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) text += c.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.ok(text.trim().length > 0);
  assert.ok(usage && usage.completion_tokens > 0, "no usage chunk");
});

test("embeddings", async () => {
  const r = await client.embeddings.create({ model, input: ["first", "second"] });
  assert.equal(r.data.length, 2);
  assert.ok(r.data[0].embedding.length > 0);
});

test("models", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `models: ${ids}`);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
});

test("unknown model is a 404 NotFoundError with OpenAI's error shape", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, "model_not_found");
      assert.ok(err.headers.get("x-trace-id"));
      return true;
    },
  );
});

test("streams a story from the bundled demo model", async () => {
  const stream = await client.chat.completions.create({
    model: "stories260k",
    messages: [{ role: "user", content: "Once upon a time" }],
    temperature: 0,
    max_tokens: 40,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) text += c.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(text.startsWith(", there was a little girl named Lily."), `story: ${text}`);
  assert.equal(usage.prompt_tokens, 5);
  assert.equal(usage.completion_tokens, 40);
});
