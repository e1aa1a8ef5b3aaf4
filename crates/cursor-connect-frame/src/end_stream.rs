//! EndStream and Connect error JSON: reading (lenient, as the conformance suite requires of
//! clients) and writing (as servers must).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::code::Code;
use crate::connect_error::{ConnectError, ErrorDetail};
use crate::error::FrameError;
use crate::metadata::Metadata;

/// The end-stream message of a streaming response: the final status and trailers.
#[derive(Clone, Debug, Default)]
pub struct EndStream {
    /// The RPC's error; `None` means success.
    pub error: Option<ConnectError>,
    /// Trailing metadata.
    pub metadata: Metadata,
}

impl EndStream {
    /// A successful end-stream with no trailers (`{}` on the wire).
    pub fn ok() -> Self {
        Self::default()
    }

    /// Parses an end-stream payload (already decompressed).
    ///
    /// Follows the conformance suite's client rules: `{"error": null}` is success; an error
    /// with a null, missing or unrecognised code is [`Code::Unknown`]; a missing message is
    /// empty; details keep `type` and the raw `value` (padded or unpadded base64) and ignore
    /// `debug` (kept as text, see [`ErrorDetail::debug`]); unknown keys are ignored. A detail
    /// whose `value` is not base64 keeps an empty value; one with no `type`, `value` or `debug`
    /// is skipped. Neither fails the whole error. The error, when present, is a wire error
    /// ([`ConnectError::is_wire`]) and carries the trailers as its metadata too.
    ///
    /// Errors: invalid JSON ([`FrameError::EndStreamJson`]), or a top level, `error` or
    /// `metadata` of the wrong JSON type ([`FrameError::EndStreamShape`]).
    pub fn parse(payload: &[u8]) -> Result<Self, FrameError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| FrameError::EndStreamJson {
                line: e.line(),
                column: e.column(),
            })?;
        let Value::Object(obj) = value else {
            return Err(FrameError::EndStreamShape {
                reason: "not a JSON object",
            });
        };
        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => Metadata::new(),
            Some(Value::Object(m)) => parse_metadata(m)?,
            Some(_) => {
                return Err(FrameError::EndStreamShape {
                    reason: "metadata is not an object",
                });
            }
        };
        let error = match obj.get("error") {
            None | Some(Value::Null) => None,
            Some(Value::Object(e)) => Some(parse_error_object(e).with_metadata(metadata.clone())),
            Some(_) => {
                return Err(FrameError::EndStreamShape {
                    reason: "error is not an object",
                });
            }
        };
        Ok(Self { error, metadata })
    }

    /// Serialises as end-stream JSON: `{}` for success without trailers, otherwise `error`
    /// and/or `metadata` members.
    pub fn to_json(&self) -> Vec<u8> {
        let mut obj = Map::new();
        if let Some(e) = &self.error {
            obj.insert("error".into(), error_to_value(e));
        }
        if !self.metadata.is_empty() {
            let mut m = Map::new();
            for (k, vs) in self.metadata.entries() {
                m.insert(
                    k.to_owned(),
                    Value::Array(vs.iter().cloned().map(Value::String).collect()),
                );
            }
            obj.insert("metadata".into(), Value::Object(m));
        }
        serde_json::to_vec(&Value::Object(obj)).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// `Ok(trailers)` on success, the error otherwise.
    pub fn into_result(self) -> Result<Metadata, ConnectError> {
        match self.error {
            None => Ok(self.metadata),
            Some(e) => Err(e),
        }
    }
}

fn parse_metadata(m: &Map<String, Value>) -> Result<Metadata, FrameError> {
    // A JSON object has no reliable order (serde_json sorts keys, case-sensitively). Sorting by
    // the lowercase name makes the result independent of key case, so that writing the
    // metadata back (lowercased) and reading it again gives an equal map. Found by the
    // `end_stream_json` fuzz target.
    let mut entries: Vec<(String, &Value)> =
        m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut md = Metadata::new();
    for (k, v) in entries {
        match v {
            Value::Array(vs) => {
                for v in vs {
                    match v {
                        Value::String(s) => md.append(&*k, s.as_str()),
                        _ => {
                            return Err(FrameError::EndStreamShape {
                                reason: "metadata value is not a string",
                            });
                        }
                    }
                }
            }
            // Not what the spec says, but unambiguous; connect-es accepts it too.
            Value::String(s) => md.append(&*k, s.as_str()),
            _ => {
                return Err(FrameError::EndStreamShape {
                    reason: "metadata values are not an array of strings",
                });
            }
        }
    }
    Ok(md)
}

/// Decodes a detail value: standard base64, padded or not (URL-safe tolerated too).
fn decode_b64(s: &str) -> Option<Bytes> {
    [&STANDARD_NO_PAD, &STANDARD, &URL_SAFE_NO_PAD, &URL_SAFE]
        .into_iter()
        .find_map(|engine| engine.decode(s).ok())
        .map(Bytes::from)
}

/// Parses an error object leniently (code defaults to `unknown`).
fn parse_error_object(e: &Map<String, Value>) -> ConnectError {
    let code = match e.get("code") {
        Some(Value::String(s)) => Code::from_wire(s),
        _ => Code::Unknown,
    };
    let message = match e.get("message") {
        Some(Value::String(s)) => s.as_str(),
        _ => "",
    };
    let mut err = ConnectError::remote(code, message);
    if let Some(Value::Array(details)) = e.get("details") {
        for d in details {
            let Value::Object(d) = d else { continue };
            let type_name = match d.get("type") {
                Some(Value::String(t)) => t.as_str(),
                _ => "",
            };
            // A `value` that is not base64 becomes empty bytes: the rest of the detail (type,
            // debug) and the error itself are still worth having.
            let value = match d.get("value") {
                Some(Value::String(v)) => decode_b64(v).unwrap_or_default(),
                _ => Bytes::new(),
            };
            let debug = d
                .get("debug")
                .filter(|v| !v.is_null())
                .map(Value::to_string);
            if type_name.is_empty() && !d.contains_key("value") && debug.is_none() {
                // Nothing usable at all (e.g. `{}` or only unknown keys).
                continue;
            }
            let mut detail = ErrorDetail::new(type_name, value);
            if let Some(debug) = debug {
                detail = detail.with_debug(debug);
            }
            err = err.with_detail(detail);
        }
    }
    err
}

/// Parses a unary error body. `None` unless the body is a JSON object; otherwise the error and
/// whether its `code` was one of the 16 names (if not, the caller substitutes the HTTP-status
/// code but keeps the message and details, as conformance `error/null-code` requires).
pub(crate) fn parse_unary_error(body: &[u8]) -> Option<(ConnectError, bool)> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let valid = matches!(obj.get("code"), Some(Value::String(s)) if s.parse::<Code>().is_ok());
    Some((parse_error_object(&obj), valid))
}

pub(crate) fn error_to_value(e: &ConnectError) -> Value {
    let mut obj = Map::new();
    obj.insert("code".into(), Value::String(e.code().as_str().into()));
    if !e.message().is_empty() {
        obj.insert("message".into(), Value::String(e.message().into()));
    }
    if !e.details().is_empty() {
        let details = e
            .details()
            .iter()
            .map(|d| {
                let mut o = Map::new();
                o.insert("type".into(), Value::String(d.type_name().into()));
                o.insert(
                    "value".into(),
                    Value::String(STANDARD_NO_PAD.encode(d.value())),
                );
                if let Some(debug) = d.debug() {
                    let v = serde_json::from_str(debug)
                        .unwrap_or_else(|_| Value::String(debug.to_owned()));
                    o.insert("debug".into(), v);
                }
                Value::Object(o)
            })
            .collect();
        obj.insert("details".into(), Value::Array(details));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_forms() {
        for json in [
            &b"{}"[..],
            br#"{"error":null}"#,
            br#"{"metadata":{}}"#,
            br#"{"x":1}"#,
        ] {
            let e = EndStream::parse(json).unwrap();
            assert!(e.error.is_none(), "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn error_with_details_and_metadata_round_trips() {
        let json = br#"{"error":{"code":"resource_exhausted","message":"slow down",
            "details":[{"type":"a.B","value":"CAE","debug":{"x":1}},{"type":"c.D","value":"CAE="}]},
            "metadata":{"X-Id":["1","2"]}}"#;
        let end = EndStream::parse(json).unwrap();
        let err = end.error.clone().unwrap();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.message(), "slow down");
        assert!(err.is_wire());
        assert_eq!(err.details().len(), 2);
        assert_eq!(&err.details()[0].value()[..], b"\x08\x01");
        assert_eq!(err.details()[1].value(), err.details()[0].value());
        assert_eq!(err.metadata().get_all("x-id"), ["1", "2"]);
        assert_eq!(end.metadata.get("x-id"), Some("1"));

        let again = EndStream::parse(&end.to_json()).unwrap();
        let e2 = again.error.unwrap();
        assert_eq!(e2.code(), err.code());
        assert_eq!(e2.details(), err.details());
        assert_eq!(again.metadata, end.metadata);
        assert!(
            String::from_utf8(end.to_json())
                .unwrap()
                .contains(r#""value":"CAE""#)
        );
    }

    #[test]
    fn bad_shapes() {
        assert!(matches!(
            EndStream::parse(b"{"),
            Err(FrameError::EndStreamJson { .. })
        ));
        assert!(matches!(
            EndStream::parse(b"[]"),
            Err(FrameError::EndStreamShape { .. })
        ));
        assert!(matches!(
            EndStream::parse(br#"{"error":"x"}"#),
            Err(FrameError::EndStreamShape { .. })
        ));
        assert!(matches!(
            EndStream::parse(br#"{"metadata":{"a":[1]}}"#),
            Err(FrameError::EndStreamShape { .. })
        ));
    }

    #[test]
    fn detail_leniency_keeps_debug_and_bad_values() {
        let json = br#"{"error":{"code":"internal","details":[
            {"type":"a.B","value":"!!not base64!!","debug":{"error":"E"}},
            {"debug":{"error":"ONLY_DEBUG"}},
            {"frob":1},
            {"type":"c.D","debug":null},
            7]}}"#;
        let err = EndStream::parse(json).unwrap().error.unwrap();
        let d = err.details();
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!((d[0].type_name(), d[0].value().len()), ("a.B", 0));
        assert_eq!(d[0].debug(), Some(r#"{"error":"E"}"#));
        assert_eq!(
            (d[1].type_name(), d[1].debug()),
            ("", Some(r#"{"error":"ONLY_DEBUG"}"#))
        );
        assert_eq!((d[2].type_name(), d[2].debug()), ("c.D", None));

        // Written back with its debug; non-JSON debug text is written as a JSON string.
        let e = ConnectError::new(Code::Internal, "x")
            .with_detail(ErrorDetail::new("t", Bytes::new()).with_debug("plain words"));
        let text = String::from_utf8(e.to_json()).unwrap();
        assert!(text.contains(r#""debug":"plain words""#), "{text}");
    }

    #[test]
    fn metadata_order_survives_a_round_trip_whatever_the_key_case() {
        // Regression (fuzz/end_stream_json): "Zeta" sorts before "alpha" case-sensitively, so
        // the order used to flip once the names were written back lowercase.
        let json = br#"{"metadata":{"Zeta":["1"],"alpha":["2"],"ZETA":["3"],"Beta":"4"}}"#;
        let end = EndStream::parse(json).unwrap();
        assert_eq!(
            end.metadata.iter().collect::<Vec<_>>(),
            [("alpha", "2"), ("beta", "4"), ("zeta", "3"), ("zeta", "1")]
        );
        let again = EndStream::parse(&end.to_json()).unwrap();
        assert_eq!(again.metadata, end.metadata);
    }

    #[test]
    fn ok_serialises_as_empty_object() {
        assert_eq!(EndStream::ok().to_json(), b"{}");
        assert!(EndStream::ok().into_result().unwrap().is_empty());
    }
}
