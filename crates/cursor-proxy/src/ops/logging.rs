//! Logging with secrets scrubbed: a writer that replaces every registered secret, and any
//! `Bearer` credential, before a line leaves the process. Code never logs secrets on purpose;
//! this is the second line of defence.

use std::io::{self, Write};
use std::sync::{Arc, RwLock};

use tracing_subscriber::fmt::MakeWriter;

/// The replacement text.
pub const REDACTED: &str = "[redacted]";

/// The set of strings that must never be written.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    /// An empty redactor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret (values shorter than 4 bytes are ignored: they would mangle ordinary text).
    pub fn add(&self, secret: &str) {
        if secret.len() >= 4 {
            let mut s = self.secrets.write().unwrap_or_else(|e| e.into_inner());
            if !s.iter().any(|x| x == secret) {
                s.push(secret.to_owned());
                // Longest first, so a secret containing another is replaced whole.
                s.sort_by_key(|x| std::cmp::Reverse(x.len()));
            }
        }
    }

    /// `text` with every secret and bearer credential replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        scrub_bearer(&out)
    }

    /// A `MakeWriter` that scrubs before writing to `inner`.
    pub fn writer<M>(&self, inner: M) -> RedactingMakeWriter<M> {
        RedactingMakeWriter {
            redactor: self.clone(),
            inner,
        }
    }
}

fn scrub_bearer(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Bearer ") {
        out.push_str(&rest[..at + 7]);
        let tail = &rest[at + 7..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// See [`Redactor::writer`].
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter<M> {
    redactor: Redactor,
    inner: M,
}

/// One buffered log record; scrubbed and written when dropped.
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    redactor: Redactor,
    buf: Vec<u8>,
    inner: W,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let text = self.redactor.scrub(&String::from_utf8_lossy(&self.buf));
            self.buf.clear();
            self.inner.write_all(text.as_bytes())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            redactor: self.redactor.clone(),
            buf: Vec::new(),
            inner: self.inner.make_writer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets_and_bearer_tokens() {
        let r = Redactor::new();
        r.add("tok-secret-123");
        r.add("abc");
        let s = r.scrub("token=tok-secret-123 header=\"Bearer eyJhbGciOi.x.y\" abc");
        assert_eq!(s, "token=[redacted] header=\"Bearer [redacted]\" abc");
        let mut sink = Vec::new();
        {
            let mut w = RedactingWriter {
                redactor: r.clone(),
                buf: Vec::new(),
                inner: &mut sink,
            };
            w.write_all(b"leak tok-secret-123\n").unwrap();
        }
        assert_eq!(sink, b"leak [redacted]\n");
    }
}
