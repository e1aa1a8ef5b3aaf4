// A third-party Connect client (@connectrpc/connect-node) against cursor-mock.
// Types come from our proto/ at run time: the FileDescriptorSet that cursor-proto embeds
// (written to a file by the Rust test) becomes a registry, no code generation needed.
//
// usage: node run.mjs DESCRIPTOR_SET_FILE BASE_URL MODEL [TOOL_NAME]
// prints one JSON line: {"ok":true,...} or {"ok":false,"code":...}
import { readFileSync } from "node:fs";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [descriptorFile, baseUrl, model, toolName] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorFile)));
const service = registry.getService("agent.v1.AgentService");
const ClientMessage = registry.getMessage("agent.v1.AgentClientMessage");
const transport = createConnectTransport({ baseUrl, httpVersion: "2" });
const client = createClient(service, transport);

// A push-driven request stream: the client answers the server's KV and exec requests on it.
function channel() {
  const queue = [];
  let wake = null;
  let closed = false;
  return {
    push(value) { queue.push(value); if (wake) { wake(); wake = null; } },
    close() { closed = true; if (wake) { wake(); wake = null; } },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length) { yield queue.shift(); continue; }
        if (closed) return;
        await new Promise((resolve) => { wake = resolve; });
      }
    },
  };
}

const requests = channel();
const send = (message) => requests.push(create(ClientMessage, { message }));
const blobs = new Map();
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const tools = toolName ? [{ name: toolName, description: "a tool", providerIdentifier: "node", toolName }] : [];

send({
  case: "runRequest",
  value: {
    conversationState: new Uint8Array(0),
    conversationId: "node-conversation",
    modelDetails: { modelId: model, displayModelId: model, displayName: model },
    mcpTools: { mcpTools: tools },
    action: {
      action: {
        case: "userMessageAction",
        value: { userMessage: { text: "hello from node", messageId: "node-1", mode: 1 }, requestContext: {} },
      },
    },
  },
});

const result = { ok: true, text: "", thinking: "", checkpoints: 0, toolCalls: [], usage: null };
try {
  for await (const response of client.run(requests)) {
    const m = response.message;
    if (m.case === "interactionUpdate") {
      const u = m.value.message;
      if (u.case === "textDelta") result.text += u.value.text;
      else if (u.case === "thinkingDelta") result.thinking += u.value.text;
      else if (u.case === "turnEnded") {
        const t = u.value;
        result.usage = [t.inputTokens, t.outputTokens, t.cacheReadTokens, t.cacheWriteTokens, t.reasoningTokens].map(Number);
        requests.close();
      }
    } else if (m.case === "kvServerMessage") {
      const kv = m.value;
      if (kv.message.case === "getBlobArgs") {
        const data = blobs.get(hex(kv.message.value.blobId));
        send({ case: "kvClientMessage", value: { id: kv.id, message: { case: "getBlobResult", value: data ? { blobData: data } : {} } } });
      } else if (kv.message.case === "setBlobArgs") {
        blobs.set(hex(kv.message.value.blobId), kv.message.value.blobData);
        send({ case: "kvClientMessage", value: { id: kv.id, message: { case: "setBlobResult", value: {} } } });
      }
    } else if (m.case === "execServerMessage") {
      const exec = m.value;
      if (exec.message.case === "requestContextArgs") {
        send({ case: "execClientMessage", value: { id: exec.id, execId: exec.execId, message: { case: "requestContextResult", value: { result: { case: "success", value: { requestContext: {} } } } } } });
      } else if (exec.message.case === "mcpArgs") {
        const args = exec.message.value;
        result.toolCalls.push(args.name);
        const text = `node ran ${args.name}`;
        send({ case: "execClientMessage", value: { id: exec.id, execId: exec.execId, message: { case: "mcpResult", value: { result: { case: "success", value: { content: [{ content: { case: "text", value: { text } } }] } } } } } });
      } else {
        send({ case: "execClientControlMessage", value: { message: { case: "throw", value: { id: exec.id, error: "unsupported" } } } });
      }
    } else if (m.case === "conversationCheckpointUpdate") {
      result.checkpoints += 1;
    }
  }
} catch (e) {
  requests.close();
  const err = ConnectError.from(e);
  console.log(JSON.stringify({
    ok: false,
    code: Code[err.code],
    message: err.rawMessage,
    textBefore: result.text,
    details: err.details.map((d) => ({ type: d.type ?? d.desc?.typeName, value: Buffer.from(d.value ?? []).toString("base64") })),
  }));
  process.exit(0);
}
requests.close();
console.log(JSON.stringify(result));
