//! Request bodies: typed decoding with errors that name the field, and the "string or list"
//! shape every API uses for content.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};

use super::error::ApiError;

/// Decodes a JSON request body into `T`; a malformed body or a field of the wrong type or value
/// is refused with an error naming the field (`messages[1].role: unknown variant ...`).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::bad_request(format!("request body is not valid JSON: {inner}"))
        } else {
            ApiError::invalid_field(path, strip_position(&inner.to_string()))
        }
    })
}

/// serde_json's message without its trailing ` at line 1 column 42`.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(at) => msg[..at].to_owned(),
        None => msg.to_owned(),
    }
}

/// A value that is a string or a list of `T` (message content, system prompts, tool results);
/// `null` reads as [`TextOr::Empty`]. Decoded by hand rather than as an untagged enum, so an
/// error inside the list keeps its path (`messages[0].content[1].type: ...`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TextOr<T> {
    /// `null` (or absent, with `#[serde(default)]`).
    #[default]
    Empty,
    /// A plain string.
    Text(String),
    /// A list of parts.
    List(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TextOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TextOr::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TextOr::Empty)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(TextOr::List(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        content: TextOr<Part>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Part {
        Text { text: String },
    }

    #[test]
    fn string_list_or_null_and_errors_name_the_field() {
        let b: Body = decode_body(br#"{"content": "hi"}"#).unwrap();
        assert_eq!(b.content, TextOr::Text("hi".into()));
        let b: Body = decode_body(br#"{"content": null}"#).unwrap();
        assert_eq!(b.content, TextOr::Empty);
        let b: Body = decode_body(br#"{"content": [{"type": "text", "text": "a"}]}"#).unwrap();
        assert_eq!(
            b.content,
            TextOr::List(vec![Part::Text { text: "a".into() }])
        );
        let e = decode_body::<Body>(
            br#"{"content": [{"type": "text", "text": "a"}, {"type": "audio"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("content[1].type: unknown variant `audio`"),
            "{}",
            e.message
        );
        let e = decode_body::<Body>(br#"{"content": 5}"#).unwrap_err();
        assert_eq!(
            e.message,
            "content: invalid type: integer `5`, expected a string or an array"
        );
        let e = decode_body::<Body>(b"{not json").unwrap_err();
        assert!(
            e.message.starts_with("request body is not valid JSON"),
            "{}",
            e.message
        );
    }
}
