//! Where headers live: the [`Carrier`] trait and its implementations.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A set of headers that propagators read from and write to.
///
/// Header names are ASCII case-insensitive: `get_all("traceparent")` must find a header stored
/// as `TraceParent`. Propagators in this crate always write lowercase names, which suits
/// HTTP/2, gRPC metadata and case-sensitive transports alike.
///
/// Implementations are provided for `Vec<(String, String)>` (which keeps repeated headers and
/// their order), `BTreeMap<String, String>`, `HashMap<String, String>` and, with the `http`
/// feature, `http::HeaderMap`.
///
/// ```
/// use stitch_propagation::Carrier;
///
/// let mut headers: Vec<(String, String)> = vec![
///     ("TraceState".into(), "a=1".into()),
///     ("tracestate".into(), "b=2".into()),
/// ];
/// assert_eq!(headers.get_all("TRACESTATE"), vec!["a=1", "b=2"]);
/// headers.set("tracestate", "c=3");
/// assert_eq!(headers.get_all("tracestate"), vec!["c=3"]);
/// ```
pub trait Carrier {
    /// Every value of the header `name` (compared case-insensitively), in the order received.
    fn get_all(&self, name: &str) -> Vec<&str>;

    /// The names of all headers present (each name once or more, in any case).
    fn names(&self) -> Vec<&str>;

    /// Replaces every value of the header `name` with the single value `value`.
    fn set(&mut self, name: &str, value: &str);

    /// Removes every value of the header `name`.
    fn remove(&mut self, name: &str);

    /// The first value of the header `name`, if any.
    fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).into_iter().next()
    }
}

impl<C: Carrier + ?Sized> Carrier for &mut C {
    fn get_all(&self, name: &str) -> Vec<&str> {
        (**self).get_all(name)
    }
    fn names(&self) -> Vec<&str> {
        (**self).names()
    }
    fn set(&mut self, name: &str, value: &str) {
        (**self).set(name, value);
    }
    fn remove(&mut self, name: &str) {
        (**self).remove(name);
    }
}

impl Carrier for Vec<(String, String)> {
    fn get_all(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn set(&mut self, name: &str, value: &str) {
        Carrier::remove(self, name);
        self.push((name.to_ascii_lowercase(), value.to_owned()));
    }

    fn remove(&mut self, name: &str) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

impl Carrier for BTreeMap<String, String> {
    fn get_all(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }

    fn set(&mut self, name: &str, value: &str) {
        Carrier::remove(self, name);
        self.insert(name.to_ascii_lowercase(), value.to_owned());
    }

    fn remove(&mut self, name: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }
}

impl<S: BuildHasher> Carrier for HashMap<String, String, S> {
    fn get_all(&self, name: &str) -> Vec<&str> {
        if let Some(v) = self.get(name) {
            // Fast path for the common, already-lowercase key; other spellings may also exist.
            let mut out = vec![v.as_str()];
            out.extend(
                self.iter()
                    .filter(|(k, _)| k.as_str() != name && k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str()),
            );
            return out;
        }
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.keys().map(String::as_str).collect()
    }

    fn set(&mut self, name: &str, value: &str) {
        Carrier::remove(self, name);
        self.insert(name.to_ascii_lowercase(), value.to_owned());
    }

    fn remove(&mut self, name: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }
}

/// `http::HeaderMap` is case-insensitive by construction. Values that are not visible ASCII
/// (obs-text) are skipped when reading; [`Carrier::set`] ignores a name or value that is not
/// a valid header, which never happens for the values this crate's propagators produce.
#[cfg(feature = "http")]
impl Carrier for http::HeaderMap {
    fn get_all(&self, name: &str) -> Vec<&str> {
        http::HeaderMap::get_all(self, name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.keys().map(http::HeaderName::as_str).collect()
    }

    fn set(&mut self, name: &str, value: &str) {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) else {
            return;
        };
        self.insert(name, value);
    }

    fn remove(&mut self, name: &str) {
        http::HeaderMap::remove(self, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vec_carrier_finds_headers_whatever_their_case_and_keeps_their_order() {
        let headers: Vec<(String, String)> = vec![
            ("X-B3-TraceId".into(), "a".into()),
            ("x-b3-traceid".into(), "b".into()),
        ];
        assert_eq!(headers.get_all("x-B3-traceID"), vec!["a", "b"]);
        assert_eq!(headers.get("X-B3-TRACEID"), Some("a"));
    }

    #[test]
    fn setting_a_header_replaces_every_spelling_of_it() {
        let mut map = BTreeMap::new();
        map.insert("TraceParent".to_owned(), "old".to_owned());
        map.set("traceparent", "new");
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("traceparent").map(String::as_str), Some("new"));

        let mut hash: HashMap<String, String> = HashMap::new();
        hash.insert("B3".to_owned(), "0".to_owned());
        assert_eq!(Carrier::get(&hash, "b3"), Some("0"));
        hash.set("b3", "1");
        assert_eq!(Carrier::get_all(&hash, "B3"), vec!["1"]);
        Carrier::remove(&mut hash, "b3");
        assert!(hash.is_empty());
    }

    #[cfg(feature = "http")]
    #[test]
    fn a_header_map_is_a_carrier() {
        let mut map = http::HeaderMap::new();
        map.append("tracestate", http::HeaderValue::from_static("a=1"));
        map.append("TraceState", http::HeaderValue::from_static("b=2"));
        assert_eq!(Carrier::get_all(&map, "TRACESTATE"), vec!["a=1", "b=2"]);
        Carrier::set(&mut map, "tracestate", "c=3");
        assert_eq!(Carrier::get_all(&map, "tracestate"), vec!["c=3"]);
        assert_eq!(Carrier::names(&map), vec!["tracestate"]);
    }
}
