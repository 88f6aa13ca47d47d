// openai_client.mjs PORT FIXTURES — the official OpenAI Node.js client against `llavaguard
// serve`: moderations.create with an image data URL, chat.completions.create in the shape of
// LlavaGuard's SGLang examples (image_url part + policy text; temperature, top_p, max_tokens),
// non-streaming and streaming. Exits non-zero when a result is not well-formed.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";

const require = createRequire(process.env.LG_NODE_MODULES + "/");
const OpenAI = require("openai");
const [port, fixtures] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: process.env.LG_TOKEN || "none" });
const img = fs.readFileSync(path.join(fixtures, "images", "p05_rgb_tiny_50x37.png"));
const url = "data:image/png;base64," + img.toString("base64");
const policy = fs.readFileSync(path.join(fixtures, "reference", "prompt_text.txt"), "utf8");

const mod = await client.moderations.create({
  model: "omni-moderation-latest",
  input: [{ type: "image_url", image_url: { url } }],
});
assert.equal(mod.results.length, 1);
const r = mod.results[0];
assert.equal(typeof r.flagged, "boolean");
for (const k of ["sexual", "violence", "self-harm", "hate", "sexual_content", "self_harm"]) {
  assert.equal(typeof r.categories[k], "boolean", k);
  assert.ok(r.category_scores[k] >= 0 && r.category_scores[k] <= 1, k);
}
assert.deepEqual(r.category_applied_input_types.sexual, ["image"]);
console.log("moderations.create:", JSON.stringify({ id: mod.id, flagged: r.flagged, sexual: r.category_scores.sexual }));

const messages = [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: policy }] }];
const chat = await client.chat.completions.create({
  model: "llava-ov-tiny", messages, temperature: 0.2, top_p: 0.95, max_tokens: 60,
});
const verdict = JSON.parse(chat.choices[0].message.content);
assert.ok(["Safe", "Unsafe"].includes(verdict.rating));
assert.equal(typeof verdict.category, "string");
assert.equal(typeof verdict.rationale, "string");
assert.equal(chat.choices[0].finish_reason, "stop");
assert.ok(chat.usage.prompt_tokens > 0);
console.log("chat.completions.create:", verdict.rating, verdict.category);

const stream = await client.chat.completions.create({ model: "llava-ov-tiny", messages, stream: true, max_tokens: 60 });
let text = "";
let chunks = 0;
for await (const c of stream) {
  text += c.choices[0]?.delta?.content || "";
  chunks++;
}
assert.ok(chunks > 2);
assert.ok(["Safe", "Unsafe"].includes(JSON.parse(text).rating));
console.log("stream:", chunks, "chunks");

// an error comes back as the client's typed error with the status
await assert.rejects(client.moderations.create({ input: "only text" }), (e) => e.status === 400);
console.log("openai client checks: ok");
