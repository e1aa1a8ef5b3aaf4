//! Prints a captured Connect body readably: every frame, its message decoded with the
//! generated types, the end-stream JSON, and any `aiserver.v1.ErrorDetails` decoded.
//!
//! ```text
//! cargo run -p cursor-proto --example dump -- [--as TYPE] [--unary] FILE
//! ```
//!
//! FILE holds the raw body bytes or their hex (whitespace ignored). Frames are split with
//! `cursor-connect-frame` (gzip frames are inflated). Messages are read as
//! `AgentServerMessage` unless `--as` names another type (`--as client` for a Run request
//! body); fields at their default value are left out of the listing. `--unary` reads FILE as
//! one bare message (unary `application/proto` bodies have no envelope). TYPE is one of the
//! names printed by `--help`.

use std::error::Error;
use std::fmt::Debug;

use bytes::BytesMut;
use cursor_connect_frame::{Decoder, Direction, EndStream, Frame, compression_for};
use cursor_proto::agent::v1 as agent;
use cursor_proto::aiserver::v1 as ai;
use cursor_proto::{checkpoint, error_details};
use prost::Message;

/// Largest input accepted: captures are small, and this bounds the read.
const MAX_INPUT: u64 = 64 << 20;

/// Message types `--as` accepts, with a one-line description each.
const TYPES: &[(&str, &str)] = &[
    (
        "server",
        "agent.v1.AgentServerMessage (Run / RunSSE responses)",
    ),
    (
        "client",
        "agent.v1.AgentClientMessage (Run requests, BidiAppend payloads)",
    ),
    (
        "chat-request",
        "aiserver.v1.StreamUnifiedChatRequestWithTools",
    ),
    (
        "chat-response",
        "aiserver.v1.StreamUnifiedChatResponseWithTools",
    ),
    ("error-details", "aiserver.v1.ErrorDetails"),
    ("bidi-append", "aiserver.v1.BidiAppendRequest"),
    (
        "bidi-request-id",
        "aiserver.v1.BidiRequestId (RunSSE request)",
    ),
    (
        "available-models-request",
        "aiserver.v1.AvailableModelsRequest",
    ),
    (
        "available-models-response",
        "aiserver.v1.AvailableModelsResponse",
    ),
    ("usable-models-response", "agent.v1.GetUsableModelsResponse"),
    (
        "server-config-response",
        "aiserver.v1.GetServerConfigResponse",
    ),
    ("checkpoint", "agent.v1.ConversationStateStructure"),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("dump: {e}");
        std::process::exit(1);
    }
}

struct Args {
    path: String,
    kind: Option<String>,
    unary: bool,
}

fn usage() -> String {
    let mut s = String::from("usage: dump [--as TYPE] [--unary] FILE\nTYPE:\n");
    for (name, what) in TYPES {
        s.push_str(&format!("  {name:<26} {what}\n"));
    }
    s
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut path = None;
    let mut kind = None;
    let mut unary = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--as" => kind = Some(it.next().ok_or("--as needs a TYPE")?),
            "--unary" => unary = true,
            "-h" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            _ if path.is_none() => path = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}\n{}", usage()).into()),
        }
    }
    if let Some(k) = &kind
        && !TYPES.iter().any(|(name, _)| name == k)
    {
        return Err(format!("unknown TYPE {k:?}\n{}", usage()).into());
    }
    let path = path.ok_or_else(usage)?;
    Ok(Args { path, kind, unary })
}

/// The file's bytes: hex text is decoded, anything else is taken as binary.
fn read_input(path: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_INPUT {
        return Err(format!("{path} is {len} bytes; the limit is {MAX_INPUT}").into());
    }
    let raw = std::fs::read(path)?;
    let text: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !text.is_empty() && text.len().is_multiple_of(2) && text.iter().all(u8::is_ascii_hexdigit) {
        let hex = std::str::from_utf8(&text)?;
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()?;
        return Ok(bytes);
    }
    Ok(raw)
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let input = read_input(&args.path)?;
    if args.unary {
        let kind = args.kind.as_deref().unwrap_or("client");
        println!("unary body, {} bytes, as {kind}", input.len());
        return print_message(kind, &input);
    }

    // Split every frame first, so the message type can follow from the presence of an
    // end-stream frame. Response direction accepts request flags too.
    let mut decoder = Decoder::new(Direction::Response).compression(compression_for("gzip"));
    let mut buf = BytesMut::from(&input[..]);
    let mut frames: Vec<Frame> = Vec::new();
    let trailing_note = loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let kind = args.kind.as_deref().unwrap_or("server");
    println!(
        "{} bytes, {} frames, messages as {kind}",
        input.len(),
        frames.len()
    );
    if args.kind.is_none() && !frames.iter().any(|f| f.flags.is_end_stream()) {
        println!("(no end-stream frame: for a request body use --as client)");
    }

    for (i, frame) in frames.iter().enumerate() {
        let flags = frame.flags;
        print!(
            "\n#{i} flags=0x{:02x} len={}",
            flags.bits(),
            frame.payload.len()
        );
        if flags.is_compressed() {
            print!(" (gzip)");
        }
        if flags.is_end_stream() {
            println!(" end-stream");
            print_end_stream(&frame.payload);
        } else {
            println!();
            if let Err(e) = print_message(kind, &frame.payload) {
                println!("  cannot decode as {kind}: {e}");
            }
        }
    }
    if frames.is_empty() && trailing_note.is_some() {
        println!("(no frames: for a bare unary message use --unary)");
    }
    if let Some(e) = trailing_note {
        // Expected for request bodies (no end-stream) and cut captures; not a failure of the tool.
        println!("\nnote after the last frame: {e}");
    }
    Ok(())
}

fn show<M: Message + Default + Debug>(bytes: &[u8]) -> Result<M, prost::DecodeError> {
    let msg = M::decode(bytes)?;
    println!("{}", compact(&format!("{msg:#?}")));
    Ok(msg)
}

/// `{:#?}` output without the lines of fields left at their default value.
fn compact(debug: &str) -> String {
    const DEFAULTS: &[&str] = &[
        ": None,", ": [],", ": {},", ": \"\",", ": 0,", ": false,", ": b\"\",",
    ];
    debug
        .lines()
        .filter(|line| !DEFAULTS.iter().any(|d| line.trim_end().ends_with(d)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_message(kind: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    match kind {
        "server" => {
            let msg: agent::AgentServerMessage = show(bytes)?;
            if let Some(cp) = msg.checkpoint() {
                println!("checkpoint ({} bytes) decoded:", cp.len());
                match checkpoint::decode(cp) {
                    Ok(state) => println!("{}", compact(&format!("{state:#?}"))),
                    Err(e) => println!("  not a ConversationStateStructure: {e}"),
                }
            }
        }
        "client" => drop(show::<agent::AgentClientMessage>(bytes)?),
        "chat-request" => drop(show::<ai::StreamUnifiedChatRequestWithTools>(bytes)?),
        "chat-response" => drop(show::<ai::StreamUnifiedChatResponseWithTools>(bytes)?),
        "error-details" => print_error_details(bytes),
        "bidi-append" => {
            let msg: ai::BidiAppendRequest = show(bytes)?;
            if let Ok(inner) = decode_hex(&msg.data) {
                println!("data (hex) as AgentClientMessage:");
                drop(show::<agent::AgentClientMessage>(&inner)?);
            }
        }
        "bidi-request-id" => drop(show::<ai::BidiRequestId>(bytes)?),
        "available-models-request" => drop(show::<ai::AvailableModelsRequest>(bytes)?),
        "available-models-response" => drop(show::<ai::AvailableModelsResponse>(bytes)?),
        "usable-models-response" => drop(show::<agent::GetUsableModelsResponse>(bytes)?),
        "server-config-response" => drop(show::<ai::GetServerConfigResponse>(bytes)?),
        "checkpoint" => drop(show::<agent::ConversationStateStructure>(bytes)?),
        other => return Err(format!("unknown TYPE {other:?}").into()),
    }
    Ok(())
}

fn decode_hex(text: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("not hex".into());
    }
    Ok((0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?)
}

fn print_end_stream(payload: &[u8]) {
    println!("  json: {}", String::from_utf8_lossy(payload));
    let end = match EndStream::parse(payload) {
        Ok(end) => end,
        Err(e) => {
            println!("  not valid end-stream JSON: {e}");
            return;
        }
    };
    for (name, value) in end.metadata.iter() {
        println!("  metadata {name}: {value}");
    }
    let Some(err) = end.error else {
        println!("  status: ok");
        return;
    };
    println!("  error: {err}");
    for detail in err.details() {
        println!(
            "  detail type={} ({} bytes)",
            detail.type_name(),
            detail.value().len()
        );
        if error_details::is_error_details_type(detail.type_name()) {
            print_error_details(detail.value());
        }
    }
}

fn print_error_details(bytes: &[u8]) {
    match error_details::decode(bytes) {
        Ok(d) => {
            let name = d.error_name().unwrap_or("(unknown to this schema)");
            println!("  ErrorDetails.error = {} {name}", d.error);
            println!("{}", compact(&format!("{d:#?}")));
        }
        Err(e) => println!("  not an ErrorDetails: {e}"),
    }
}
