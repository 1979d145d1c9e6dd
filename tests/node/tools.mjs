// The official OpenAI Node SDK against the relay: a tool call (whole and through the stream helper) and a
// structured output. Run by tests/test_node_sdk.py: `node tools.mjs <relay base URL> <key>`; prints JSON.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const model = "gpt-4o-mini";
const messages = [{ role: "user", content: "Weather in Paris?" }];
const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
      },
    },
  },
];

const calls = (message) => (message.tool_calls ?? []).map((c) => [c.function.name, JSON.parse(c.function.arguments)]);

const whole = await client.chat.completions.create({ model, messages, tools, tool_choice: "required" });
const stream = client.chat.completions.stream({ model, messages, tools });
const streamed = await stream.finalChatCompletion();
const structured = await client.chat.completions.create({
  model,
  messages,
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "weather",
      strict: true,
      schema: {
        type: "object",
        properties: { city: { type: "string" }, celsius: { type: "integer" } },
        required: ["city", "celsius"],
        additionalProperties: false,
      },
    },
  },
});

console.log(
  JSON.stringify({
    whole: { finish: whole.choices[0].finish_reason, content: whole.choices[0].message.content, calls: calls(whole.choices[0].message) },
    streamed: {
      finish: streamed.choices[0].finish_reason,
      content: streamed.choices[0].message.content,
      calls: calls(streamed.choices[0].message),
    },
    structured: JSON.parse(structured.choices[0].message.content),
  }),
);
