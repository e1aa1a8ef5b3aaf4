//! Ordered, case-insensitive string multimap for headers and trailers.

/// Metadata (headers or trailers) as an ordered multimap of lowercase names to string values.
///
/// Names are compared ASCII-case-insensitively and stored lowercase; the order of first
/// insertion is kept (and used when writing JSON). `-bin` values are kept as the base64 text
/// that was received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Vec<String>)>,
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.position(name)?;
        self.entries[i].1.first().map(String::as_str)
    }

    /// All values of `name` (empty if absent).
    pub fn get_all(&self, name: &str) -> &[String] {
        match self.position(name) {
            Some(i) => &self.entries[i].1,
            None => &[],
        }
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Replaces all values of `name` with `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Some(i) => self.entries[i].1 = vec![value],
            None => self.entries.push((name.to_ascii_lowercase(), vec![value])),
        }
    }

    /// Adds `value` after the existing values of `name`.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Some(i) => self.entries[i].1.push(value),
            None => self.entries.push((name.to_ascii_lowercase(), vec![value])),
        }
    }

    /// Removes `name`, returning its values.
    pub fn remove(&mut self, name: &str) -> Vec<String> {
        match self.position(name) {
            Some(i) => self.entries.remove(i).1,
            None => Vec::new(),
        }
    }

    /// Every `(name, value)` pair, names in insertion order, values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())))
    }

    /// Every name with all its values.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[String])> + '_ {
        self.entries
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.as_slice()))
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds every header with a UTF-8 value; `trailer-` prefixes are stripped (the unary
    /// trailer convention).
    pub fn extend_from_headers(&mut self, headers: &http::HeaderMap) {
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            let name = name.as_str();
            let name = name.strip_prefix("trailer-").unwrap_or(name);
            self.append(name, value);
        }
    }

    /// Builds metadata from headers (see [`Metadata::extend_from_headers`]).
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let mut m = Self::new();
        m.extend_from_headers(headers);
        m
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.append(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multimap_semantics() {
        let mut m = Metadata::new();
        assert!(m.is_empty());
        m.append("X-A", "1");
        m.append("x-a", "2");
        m.insert("b", "3");
        assert_eq!(m.get("X-a"), Some("1"));
        assert_eq!(m.get_all("x-a"), ["1", "2"]);
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            [("x-a", "1"), ("x-a", "2"), ("b", "3")]
        );
        m.insert("X-A", "9");
        assert_eq!(m.get_all("x-a"), ["9"]);
        assert_eq!(m.remove("B"), ["3"]);
        assert_eq!(m.len(), 1);
        assert!(m.get_all("nope").is_empty());
    }

    #[test]
    fn from_headers_strips_trailer_prefix() {
        let mut h = http::HeaderMap::new();
        h.insert("trailer-x-id", "7".parse().unwrap());
        h.append("set-cookie", "a".parse().unwrap());
        h.append("set-cookie", "b".parse().unwrap());
        let m = Metadata::from_headers(&h);
        assert_eq!(m.get("x-id"), Some("7"));
        assert_eq!(m.get_all("set-cookie"), ["a", "b"]);
    }
}
