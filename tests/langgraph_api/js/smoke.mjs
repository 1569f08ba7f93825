// Smoke test of MAI's LangGraph API with the official JS SDK: create a thread, stream a run
// with values + messages-tuple, pause on a tool approval and resume it with a Command, and
// manage a user-created assistant.
// Run by tests/langgraph_api/test_sdk_e2e.py with MAI_URL and MAI_API_KEY set.
import { Client } from "@langchain/langgraph-sdk";

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const client = new Client({ apiUrl: process.env.MAI_URL, apiKey: process.env.MAI_API_KEY });

const thread = await client.threads.create({ metadata: { from: "js" } });
const parts = [];
for await (const part of client.runs.stream(thread.thread_id, "assistant", {
  input: { messages: [{ role: "user", content: "Hi from JS" }] },
  streamMode: ["values", "messages-tuple"],
})) {
  parts.push(part);
}
const events = parts.map((p) => p.event);
check(events[0] === "metadata", `first event ${events[0]}`);
check(events.includes("messages"), `no messages event in ${events}`);
const values = parts.filter((p) => p.event === "values").at(-1).data;
check(values.messages.at(-1).content === process.env.MAI_REPLY, "unexpected final answer");

const mail = await client.threads.create();
const paused = await client.runs.wait(mail.thread_id, "assistant", {
  input: { messages: [{ role: "user", content: "Please email Ada the minutes" }] },
});
check(paused.__interrupt__?.length === 1, `no interrupt: ${JSON.stringify(paused)}`);
const resumed = await client.runs.wait(mail.thread_id, "assistant", {
  command: { resume: { decisions: [{ type: "approve" }] } },
});
check(resumed.messages.at(-1).content === process.env.MAI_SENT, "the resume did not finish");
const state = await client.threads.getState(thread.thread_id);
check(state.values.messages.length === 2, "thread state");

// A user-created assistant: create, run, a new version, back to the first, delete.
const bot = await client.assistants.create({
  graphId: "assistant",
  name: "JS bot",
  metadata: { from: "js" },
  context: { llm_params: { temperature: 0.5 } },
});
check(bot.version === 1 && bot.graph_id === "assistant", `created ${JSON.stringify(bot)}`);
const found = await client.assistants.search({ metadata: { from: "js" } });
check(found.length === 1 && found[0].assistant_id === bot.assistant_id, "search by metadata");
const answered = await client.runs.wait(null, bot.assistant_id, {
  input: { messages: [{ role: "user", content: "Which temperature?" }] },
});
check(answered.messages.at(-1).content === "temperature=0.5", "the assistant's context");
const second = await client.assistants.update(bot.assistant_id, { name: "JS bot 2" });
check(second.version === 2, `update made version ${second.version}`);
const versions = await client.assistants.getVersions(bot.assistant_id);
check(versions.map((v) => v.version).join() === "2,1", "versions");
const first = await client.assistants.setLatest(bot.assistant_id, 1);
check(first.name === "JS bot", "setLatest");
await client.assistants.delete(bot.assistant_id);
let gone = false;
try {
  await client.assistants.get(bot.assistant_id);
} catch (error) {
  gone = error.status === 404;
}
check(gone, "deleted assistant still found");
console.log("OK");
