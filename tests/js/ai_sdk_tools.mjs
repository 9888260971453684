// AI SDK Core as a client of this server's OpenAI-compatible /v1: `streamText` with
// `@ai-sdk/openai-compatible`'s chat model, a tool with `execute`, and `stopWhen: stepCountIs(n)`,
// so the SDK runs the loop itself (call → execute → send the result → final text) against
// POST /v1/chat/completions. `node ai_sdk_tools.mjs '<json>'` prints one JSON line: each step's
// finish reason, calls and results, the tool's own runs, and the final text. Driven by
// tests/test_openai_tools.py (which starts the server and checks the database).
//
// args: base (the server's URL), prompt, toolChoice?, steps? (default 3), headers?

import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const args = JSON.parse(process.argv[2]);
const provider = createOpenAICompatible({
  name: "chatproject",
  baseURL: `${args.base}/v1`,
  apiKey: "unused",
  headers: args.headers ?? {},
  includeUsage: true,
});

const ran = [];
const tools = {
  weather: tool({
    description: "The weather in a city.",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      ran.push(city);
      return `sunny in ${city}`;
    },
  }),
};

const out = { ran };
try {
  const result = streamText({
    model: provider.chatModel(args.model ?? "gpt-test"),
    prompt: args.prompt,
    tools,
    toolChoice: args.toolChoice,
    stopWhen: stepCountIs(args.steps ?? 3),
    maxRetries: 0,
  });
  const deltas = [];
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "text-delta") deltas.push(part.text);
  }
  out.deltas = deltas;
  out.text = await result.text;
  out.steps = (await result.steps).map((step) => ({
    finishReason: step.finishReason,
    text: step.text,
    toolCalls: step.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
    toolResults: step.toolResults.map((r) => ({ id: r.toolCallId, output: r.output })),
  }));
} catch (error) {
  out.thrown = error?.message ?? String(error);
}
console.log(JSON.stringify(out));
