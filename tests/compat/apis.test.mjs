// Drives a running autoglm's Responses and Messages APIs with the clients people use:
// openai (responses, files and batches), @anthropic-ai/sdk (messages), the Vercel AI SDK's openai(model) provider
// (which speaks the Responses API) and LangChain's ChatOpenAI with useResponsesApi. The test
// script starts mockllm (with tool calls on) and autoglm and passes the gateway's address.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, stepCountIs } from "ai";
import { z } from "zod";
import { ChatOpenAI } from "@langchain/openai";

const baseURL = process.env.AUTOGLM_URL; // ends in /v1
if (!baseURL) throw new Error("AUTOGLM_URL is not set");
const root = baseURL.replace(/\/v1\/?$/, "");
const apiKey = process.env.AUTOGLM_KEY ?? "unused";
const model = process.env.AUTOGLM_MODEL ?? "glm-4-flash";
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: root, apiKey, maxRetries: 0 });

const weatherTool = {
  type: "function",
  name: "get_weather",
  description: "Current weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
};

// --- openai: Responses API ---------------------------------------------------------------

test("openai responses.create", async () => {
  const r = await client.responses.create({ model, input: "Say something.", instructions: "Be brief." });
  assert.equal(r.object, "response");
  assert.equal(r.status, "completed");
  assert.ok(r.output_text.trim().length > 0, "no output_text");
  assert.ok(r.usage.output_tokens > 0 && r.usage.input_tokens > 0);
  assert.ok(r._request_id, "no request id");
});

test("openai responses.create streamed", async () => {
  const stream = await client.responses.create({ model, input: "Tell a story.", stream: true });
  const types = [];
  let text = "";
  let done = null;
  let seq = -1;
  for await (const ev of stream) {
    assert.equal(ev.sequence_number, seq + 1);
    seq = ev.sequence_number;
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") done = ev.response;
  }
  assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
  assert.equal(types.at(-1), "response.completed");
  assert.ok(text.trim().length > 0);
  assert.equal(done.output[0].content[0].text, text);
  assert.ok(done.usage.output_tokens > 0);
});

test("openai responses.stream helper", async () => {
  const stream = client.responses.stream({ model, input: "Tell a story." });
  let text = "";
  stream.on("response.output_text.delta", (ev) => (text += ev.delta));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, text);
});

test("openai responses tool round trip with previous_response_id", async () => {
  const first = await client.responses.create({ model, input: "What is the weather in Paris?", tools: [weatherTool] });
  const call = first.output.find((o) => o.type === "function_call");
  assert.ok(call, `no function call in ${JSON.stringify(first.output)}`);
  assert.equal(call.name, "get_weather");
  assert.deepEqual(JSON.parse(call.arguments), { city: "mock" });
  const second = await client.responses.create({
    model,
    previous_response_id: first.id,
    tools: [weatherTool],
    input: [{ type: "function_call_output", call_id: call.call_id, output: JSON.stringify({ temperature: 18 }) }],
  });
  assert.equal(second.previous_response_id, first.id);
  assert.ok(second.output_text.length > 0, "no answer after the tool result");
  // The conversation is stored: retrieve, list its input items, delete.
  const got = await client.responses.retrieve(second.id);
  assert.equal(got.id, second.id);
  const items = [];
  for await (const it of client.responses.inputItems.list(second.id)) items.push(it);
  assert.equal(items.length, 1);
  assert.equal(items[0].type, "function_call_output");
  await client.responses.delete(second.id);
  await assert.rejects(client.responses.retrieve(second.id), (err) => err instanceof OpenAI.NotFoundError);
});

test("openai: an unknown route is a NotFoundError with OpenAI's message", async () => {
  await assert.rejects(client.post("/no-such-route", { body: {} }), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}`);
    assert.equal(err.status, 404);
    assert.match(err.message, /Invalid URL \(POST \/v1\/no-such-route\)/);
    assert.equal(err.type, "invalid_request_error");
    assert.ok(err.requestID, "no request id");
    return true;
  });
});

// --- @anthropic-ai/sdk: Messages API -------------------------------------------------------

test("anthropic messages.create", async () => {
  const m = await anthropic.messages.create({
    model,
    max_tokens: 64,
    system: "Be brief.",
    messages: [{ role: "user", content: "Hello" }],
  });
  assert.equal(m.type, "message");
  assert.equal(m.role, "assistant");
  assert.equal(m.stop_reason, "end_turn");
  assert.equal(m.content[0].type, "text");
  assert.ok(m.content[0].text.length > 0);
  assert.ok(m.usage.output_tokens > 0);
  assert.ok(m._request_id, "no request id");
});

test("anthropic messages.stream", async () => {
  const stream = anthropic.messages.stream({ model, max_tokens: 64, messages: [{ role: "user", content: "Tell a story." }] });
  let text = "";
  stream.on("text", (t) => (text += t));
  const final = await stream.finalMessage();
  assert.ok(text.length > 0);
  assert.equal(final.content[0].text, text);
  assert.equal(final.stop_reason, "end_turn");
  assert.ok(final.usage.output_tokens > 0);
});

test("anthropic tools round trip", async () => {
  const tools = [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const first = await anthropic.messages.create({ model, max_tokens: 64, tools, messages });
  assert.equal(first.stop_reason, "tool_use");
  const use = first.content.find((b) => b.type === "tool_use");
  assert.deepEqual(use.input, { city: "mock" });
  messages.push({ role: "assistant", content: first.content });
  messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C" }] });
  const second = await anthropic.messages.create({ model, max_tokens: 64, tools, messages });
  assert.equal(second.stop_reason, "end_turn");
  assert.ok(second.content[0].text.length > 0);
  // A streamed tool call arrives as input_json_delta and assembles into the same input.
  const stream = anthropic.messages.stream({ model, max_tokens: 64, tools, messages: messages.slice(0, 1) });
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.find((b) => b.type === "tool_use").input, { city: "mock" });
});

test("anthropic count_tokens and errors", async () => {
  const n = await anthropic.messages.countTokens({ model, messages: [{ role: "user", content: "Hello there" }] });
  assert.ok(n.input_tokens > 0);
  await assert.rejects(
    anthropic.messages.create({ model: "no-such-model", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError, `got ${err?.constructor?.name}`);
      assert.equal(err.error.type, "error");
      assert.equal(err.error.error.type, "not_found_error");
      return true;
    },
  );
});

// --- Vercel AI SDK: openai(model) speaks the Responses API ---------------------------------

const vercel = createOpenAI({ baseURL, apiKey });

test("ai-sdk generateText", async () => {
  const r = await generateText({ model: vercel(model), prompt: "Say something.", maxRetries: 0 });
  assert.ok(r.text.length > 0);
  assert.ok(r.usage.outputTokens > 0);
  assert.equal(r.finishReason, "stop");
});

test("ai-sdk streamText", async () => {
  const r = streamText({ model: vercel(model), prompt: "Tell a story.", maxRetries: 0 });
  let text = "";
  for await (const t of r.textStream) text += t;
  assert.ok(text.length > 0);
  assert.equal(await r.text, text);
});

test("ai-sdk multi-turn: earlier answers come back as item references", async () => {
  const first = await generateText({ model: vercel(model), prompt: "Say something.", maxRetries: 0 });
  const messages = [{ role: "user", content: "Say something." }, ...first.response.messages, { role: "user", content: "And again." }];
  const second = await generateText({ model: vercel(model), messages, maxRetries: 0 });
  assert.ok(second.text.length > 0);
});

test("ai-sdk tools", async () => {
  let called = null;
  const r = await generateText({
    model: vercel(model),
    prompt: "What is the weather in Paris?",
    maxRetries: 0,
    tools: {
      weather: tool({
        description: "Weather of a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          called = city;
          return { city, temperature: 18 };
        },
      }),
    },
    stopWhen: stepCountIs(3),
  });
  assert.equal(called, "mock");
  assert.equal(r.steps.length, 2);
  assert.equal(r.steps[0].finishReason, "tool-calls");
  assert.ok(r.text.length > 0);
});

// --- LangChain: ChatOpenAI with useResponsesApi ---------------------------------------------

test("langchain ChatOpenAI useResponsesApi", async () => {
  const chat = new ChatOpenAI({ model, apiKey, useResponsesApi: true, maxRetries: 0, configuration: { baseURL } });
  const msg = await chat.invoke("Say something.");
  assert.ok(typeof msg.text === "string" && msg.text.length > 0, `content: ${JSON.stringify(msg.content)}`);
  let streamed = "";
  for await (const chunk of await chat.stream("Tell a story.")) streamed += chunk.text;
  assert.ok(streamed.length > 0);
});

// --- the local engine answers through the same translations ---------------------------------

test("local model through the Responses and Messages APIs", async () => {
  const r = await client.responses.create({ model: "stories260k", input: "Once upon a time", temperature: 0, max_output_tokens: 24 });
  assert.match(r.output_text, /Lily/);
  assert.equal(r.status, "incomplete");
  assert.equal(r.incomplete_details.reason, "max_output_tokens");
  const stream = anthropic.messages.stream({ model: "stories260k", max_tokens: 24, temperature: 0, messages: [{ role: "user", content: "Once upon a time" }] });
  const m = await stream.finalMessage();
  assert.match(m.content[0].text, /Lily/);
  assert.equal(m.stop_reason, "max_tokens");
  assert.equal(m.usage.output_tokens, 24);
});

// --- openai: Files and Batch API ---------------------------------------------------------

test("openai batches end to end", async () => {
  const lines = ["a", "b", "c"].map((id) => JSON.stringify({
    custom_id: id, method: "POST", url: "/v1/chat/completions",
    body: { model, messages: [{ role: "user", content: `Batch line ${id}` }], max_tokens: 5 },
  }));
  lines.push(JSON.stringify({ custom_id: "bad", method: "POST", url: "/v1/chat/completions",
    body: { model: "no-such-model", messages: [{ role: "user", content: "x" }] } }));
  const file = await client.files.create({ file: await toFile(Buffer.from(lines.join("\n") + "\n"), "in.jsonl"), purpose: "batch" });
  assert.equal(file.object, "file");
  assert.equal(file.purpose, "batch");
  assert.ok(file.id.startsWith("file-"));
  const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { job: "compat" } });
  assert.equal(created.object, "batch");
  assert.equal(created.request_counts.total, 4);
  let b = created;
  for (let i = 0; i < 600 && b.status !== "completed"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    b = await client.batches.retrieve(created.id);
  }
  assert.equal(b.status, "completed");
  assert.deepEqual(b.request_counts, { total: 4, completed: 3, failed: 1 });
  assert.equal(b.metadata.job, "compat");
  const out = (await (await client.files.content(b.output_file_id)).text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(out.map((r) => r.custom_id).sort(), ["a", "b", "c"]);
  for (const r of out) {
    assert.equal(r.response.status_code, 200);
    assert.equal(r.response.body.object, "chat.completion");
    assert.equal(r.error, null);
  }
  const errs = (await (await client.files.content(b.error_file_id)).text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(errs.length, 1);
  assert.equal(errs[0].custom_id, "bad");
  assert.equal(errs[0].response.status_code, 404);
  const page = await client.batches.list({ limit: 5 });
  assert.ok(page.data.some((x) => x.id === b.id));
  await assert.rejects(client.batches.cancel(b.id), (e) => e.status === 409);
  const del = await client.files.delete(file.id);
  assert.equal(del.deleted, true);
});
