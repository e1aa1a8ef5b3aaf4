// Runs one case of Cursor's own SDK (@cursor/sdk, a local agent) against cursor-mock and prints
// one JSON line with what the SDK returned. Usage: node run.mjs CASE_JSON
// Environment: CURSOR_BACKEND_URL (the mock's URL), NODE_EXTRA_CA_CERTS (its test CA, for https).
//
// CASE_JSON fields (all optional):
//   name     a label echoed in the report
//   model    the model id given to Agent.create (a mock model or scenario name; default
//            "composer-2.5")
//   prompts  the texts sent one send() after another on the same agent (default ["hello"])
//   tools    names of custom tools to define; each answers "sdk ran <name>" and is recorded
//   files    { relative path: text } written into the workspace before the agent starts
//   cwd      the workspace directory (default: a fresh temp dir, removed afterwards)
// Report: { case, sends: [{ status, result, error, usage, deltas, messages, thrown?,
//           streamThrown? }], toolCalls: [{ name, args }], unhandled: [...], thrown? }
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, JsonlLocalAgentStore } from "@cursor/sdk";

const spec = JSON.parse(process.argv[2] ?? "{}");
const workspace = spec.cwd ?? mkdtempSync(join(tmpdir(), "sdk-peer-ws-"));
const state = mkdtempSync(join(tmpdir(), "sdk-peer-state-"));
for (const [name, text] of Object.entries(spec.files ?? {})) {
  mkdirSync(join(workspace, name, ".."), { recursive: true });
  writeFileSync(join(workspace, name), text);
}

const describe = (error) =>
  error == null
    ? null
    : { name: error.constructor?.name, message: String(error.message ?? error), code: error.code };

const report = { case: spec.name, sends: [], unhandled: [] };
// Seed 003: an SDK once let a run's ConnectError escape as an unhandled rejection.
process.on("unhandledRejection", (error) => report.unhandled.push(describe(error)));
const toolCalls = [];
const customTools = {};
for (const name of spec.tools ?? []) {
  customTools[name] = {
    description: `a ${name} tool defined by the sdk-peer harness`,
    inputSchema: { type: "object", properties: { query: { type: "string" } } },
    execute: async (args) => {
      toolCalls.push({ name, args });
      return `sdk ran ${name}`;
    },
  };
}

try {
  const agent = await Agent.create({
    apiKey: "sdk-peer-key",
    model: { id: spec.model ?? "composer-2.5" },
    local: {
      cwd: workspace,
      store: new JsonlLocalAgentStore(state),
      customTools,
      enableAgentRetries: false,
    },
  });
  for (const text of spec.prompts ?? ["hello"]) {
    const deltas = [];
    const messages = [];
    const one = {};
    try {
      const run = await agent.send(text, {
        onDelta: ({ update }) => deltas.push(update.type),
      });
      try {
        for await (const message of run.stream()) messages.push(message.type);
      } catch (error) {
        one.streamThrown = describe(error);
      }
      const result = await run.wait();
      Object.assign(one, {
        status: result.status,
        result: result.result,
        error: result.error ?? null,
        usage: result.usage ?? null,
      });
    } catch (error) {
      one.thrown = describe(error);
    }
    one.deltas = deltas;
    one.messages = messages;
    report.sends.push(one);
  }
  agent.close();
  // Let late rejections surface before reporting.
  await new Promise((resolve) => setTimeout(resolve, 200));
} catch (error) {
  report.thrown = describe(error);
}
report.toolCalls = toolCalls;
rmSync(state, { recursive: true, force: true });
if (spec.cwd == null) rmSync(workspace, { recursive: true, force: true });
console.log(JSON.stringify(report));
process.exit(0);
