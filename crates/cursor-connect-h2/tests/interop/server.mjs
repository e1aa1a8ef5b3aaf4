// A connect-node h2c server for cursor-connect-h2's interop test. The service is described
// with a hand-built FileDescriptorProto (no protoc, no codegen):
//
//   package interop.v1;
//   message Msg { string text = 1; int32 n = 2; }
//   service InteropService {
//     rpc Unary(Msg) returns (Msg);
//     rpc ServerStream(Msg) returns (stream Msg);
//     rpc Bidi(stream Msg) returns (stream Msg);
//   }
//
// It prints "PORT=<n>" once listening on 127.0.0.1 and exits when stdin closes.
import http2 from "node:http2";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";

const TYPE_INT32 = 5;
const TYPE_STRING = 9;
const LABEL_OPTIONAL = 1;
const MSG = ".interop.v1.Msg";

const file = create(FileDescriptorProtoSchema, {
  name: "interop/v1/interop.proto",
  package: "interop.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "Msg",
      field: [
        { name: "text", number: 1, type: TYPE_STRING, label: LABEL_OPTIONAL, jsonName: "text" },
        { name: "n", number: 2, type: TYPE_INT32, label: LABEL_OPTIONAL, jsonName: "n" },
      ],
    },
  ],
  service: [
    {
      name: "InteropService",
      method: [
        { name: "Unary", inputType: MSG, outputType: MSG },
        { name: "ServerStream", inputType: MSG, outputType: MSG, serverStreaming: true },
        { name: "Bidi", inputType: MSG, outputType: MSG, clientStreaming: true, serverStreaming: true },
      ],
    },
  ],
});
const service = createFileRegistry(file, () => undefined).getService("interop.v1.InteropService");

// Report which request encoding the server saw, so the test can prove negotiation.
function noteEncoding(ctx, header) {
  ctx.responseHeader.set("x-request-encoding", ctx.requestHeader.get(header) ?? "identity");
}

const routes = (router) =>
  router.service(service, {
    async unary(req, ctx) {
      noteEncoding(ctx, "content-encoding");
      if (req.text === "fail") {
        throw new ConnectError("boom", Code.Unavailable);
      }
      return { text: `unary:${req.text}`, n: req.n };
    },
    async *serverStream(req, ctx) {
      noteEncoding(ctx, "connect-content-encoding");
      for (let i = 0; i < req.n; i++) {
        yield { text: `${req.text}-${i}`, n: i };
      }
      if (req.text === "fail-after-2") {
        throw new ConnectError("quota gone", Code.ResourceExhausted);
      }
    },
    async *bidi(reqs, ctx) {
      noteEncoding(ctx, "connect-content-encoding");
      for await (const r of reqs) {
        yield { text: r.text, n: r.n };
      }
    },
  });

const server = http2.createServer(
  connectNodeAdapter({
    routes,
    acceptCompression: [compressionGzip],
    compressMinBytes: 64,
    readMaxBytes: 16 << 20,
    writeMaxBytes: 16 << 20,
  }),
);
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT=${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
