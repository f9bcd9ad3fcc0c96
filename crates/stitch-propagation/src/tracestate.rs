//! The W3C Trace Context `tracestate` header (Level 2).
//!
//! `tracestate` is a list of `key=value` members, the left-most being the vendor that wrote
//! `traceparent`: `tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE`.
//!
//! The rules enforced here:
//!
//! * **Keys** start with a lowercase letter or a digit and continue with up to 255 of
//!   `a-z 0-9 _ - * / @`. A *multi-tenant* key has the form `tenant@system`
//!   ([`split_tenant`] splits it); Level 2 folds it into the single key grammar above.
//! * **Values** are 1 to 256 printable ASCII characters (`0x20`–`0x7E`) except `,` and `=`,
//!   and do not end with a space. Leading spaces belong to the value.
//! * Spaces and tabs around members are optional whitespace; empty and blank members are
//!   ignored (they arise when several headers are joined).
//! * At most 32 members. A value breaking any rule invalidates the whole header.
//! * Several `tracestate` header fields are combined in order, as if joined by commas.
//! * Keys are unique. A sender must not repeat a key: [`TraceState::parse_strict`] rejects
//!   duplicates. A receiver may discard duplicates it did not generate:
//!   [`TraceState::parse`] keeps the first member of each key, which is what extraction uses.
//! * Adding or updating a member moves it to the front; when that makes 33 members, the
//!   right-most is dropped.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, Reason};
use crate::ids::trim_ows;

/// The header name.
pub const TRACESTATE: &str = "tracestate";
/// The most list members a `tracestate` may hold.
pub const MAX_MEMBERS: usize = 32;
/// The longest key.
pub const MAX_KEY_LEN: usize = 256;
/// The longest value.
pub const MAX_VALUE_LEN: usize = 256;
/// The combined length every vendor should propagate at least (the spec's "SHOULD propagate
/// at least 512 characters").
pub const MIN_PROPAGATED_LEN: usize = 512;

const HEADER: &str = TRACESTATE;

/// An ordered `tracestate` list, most recently updated member first.
///
/// ```
/// use stitch_propagation::TraceState;
///
/// let mut ts: TraceState = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".parse()?;
/// assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
///
/// // Updating a member moves it to the front, as the spec requires.
/// ts.insert("congo", "ucfJifl5GOE")?;
/// assert_eq!(ts.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
///
/// // Several header fields are combined in order.
/// let ts = TraceState::from_header_values(["a=1,b=2", "", "c=3"])?;
/// assert_eq!(ts.to_string(), "a=1,b=2,c=3");
/// # Ok::<(), stitch_propagation::ParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

impl TraceState {
    /// An empty list.
    pub const fn new() -> Self {
        TraceState {
            members: Vec::new(),
        }
    }

    /// Parses a value as a receiver does: grammar and limits enforced; of duplicate keys the
    /// first member is kept and the others are discarded.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        Self::parse_inner(value, false)
    }

    /// Parses a value as a sender must produce it: like [`TraceState::parse`], and duplicate
    /// keys are an error.
    pub fn parse_strict(value: &str) -> Result<Self, ParseError> {
        Self::parse_inner(value, true)
    }

    /// Combines several header fields (in order) and parses them with [`TraceState::parse`].
    pub fn from_header_values<'a, I>(values: I) -> Result<Self, ParseError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        Self::parse(&join_values(values))
    }

    /// Combines several header fields (in order) and parses them with
    /// [`TraceState::parse_strict`].
    pub fn from_header_values_strict<'a, I>(values: I) -> Result<Self, ParseError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        Self::parse_strict(&join_values(values))
    }

    fn parse_inner(value: &str, strict: bool) -> Result<Self, ParseError> {
        let mut members: Vec<(String, String)> = Vec::new();
        let mut count = 0usize;
        for raw in value.split(',') {
            let member = trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_MEMBERS {
                let found = value.split(',').filter(|m| !trim_ows(m).is_empty()).count();
                return Err(ParseError::new(
                    HEADER,
                    "",
                    Reason::TooManyMembers {
                        max: MAX_MEMBERS,
                        found,
                    },
                ));
            }
            let Some((key, val)) = member.split_once('=') else {
                return Err(ParseError::new(
                    HEADER,
                    "list-member",
                    Reason::Delimiter { expected: '=' },
                ));
            };
            check_key(key)?;
            check_value(val)?;
            if members.iter().any(|(k, _)| k == key) {
                if strict {
                    return Err(ParseError::new(
                        HEADER,
                        "key",
                        Reason::DuplicateKey(key.to_owned()),
                    ));
                }
                continue;
            }
            members.push((key.to_owned(), val.to_owned()));
        }
        Ok(TraceState { members })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds or updates `key`, moving it to the front. When the list would exceed 32 members,
    /// the right-most member is removed. Fails, leaving the list unchanged, if the key or value
    /// breaks the grammar.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        check_key(key)?;
        check_value(value)?;
        self.members.retain(|(k, _)| k != key);
        self.members.insert(0, (key.to_owned(), value.to_owned()));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(i).1)
    }

    /// The members, left to right.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the list has no member (then no header should be sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Shortens the list until its header value is at most `max_len` characters, by the spec's
    /// truncation rules: whole members only, members longer than 128 characters first (right to
    /// left), then from the right.
    pub fn truncate_to_len(&mut self, max_len: usize) {
        while self.header_len() > max_len {
            let long = self
                .members
                .iter()
                .rposition(|(k, v)| k.len() + 1 + v.len() > 128);
            match long {
                Some(i) => {
                    self.members.remove(i);
                }
                None => {
                    self.members.pop();
                }
            }
        }
    }

    fn header_len(&self) -> usize {
        let members: usize = self
            .members
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum();
        members + self.members.len().saturating_sub(1)
    }
}

fn join_values<'a, I>(values: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let mut joined = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(v);
    }
    joined
}

fn is_key_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

fn is_value_char(c: u8) -> bool {
    matches!(c, 0x20..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e)
}

fn check_key(key: &str) -> Result<(), ParseError> {
    let b = key.as_bytes();
    let Some(&first) = b.first() else {
        return Err(ParseError::new(HEADER, "key", Reason::Empty));
    };
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(ParseError::new(
            HEADER,
            "key",
            Reason::Invalid("must start with a lowercase letter or a digit"),
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !c.is_ascii() || !is_key_char(*c as u8))
    {
        return Err(ParseError::new(
            HEADER,
            "key",
            Reason::InvalidCharacter { found: c },
        ));
    }
    if b.len() > MAX_KEY_LEN {
        return Err(ParseError::new(
            HEADER,
            "key",
            Reason::TooLong {
                max: MAX_KEY_LEN,
                found: b.len(),
            },
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), ParseError> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Err(ParseError::new(HEADER, "value", Reason::Empty));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii() || !is_value_char(*c as u8))
    {
        return Err(ParseError::new(
            HEADER,
            "value",
            Reason::InvalidCharacter { found: c },
        ));
    }
    if b.last() == Some(&b' ') {
        return Err(ParseError::new(
            HEADER,
            "value",
            Reason::Invalid("must not end with a space"),
        ));
    }
    if b.len() > MAX_VALUE_LEN {
        return Err(ParseError::new(
            HEADER,
            "value",
            Reason::TooLong {
                max: MAX_VALUE_LEN,
                found: b.len(),
            },
        ));
    }
    Ok(())
}

/// Whether `key` is a valid `tracestate` key.
pub fn is_valid_key(key: &str) -> bool {
    check_key(key).is_ok()
}

/// Whether `value` is a valid `tracestate` value.
pub fn is_valid_value(value: &str) -> bool {
    check_value(value).is_ok()
}

/// Splits a multi-tenant key `tenant@system` at its first `@`; `None` for a simple key.
///
/// ```
/// assert_eq!(stitch_propagation::tracestate::split_tenant("t61@congo"), Some(("t61", "congo")));
/// assert_eq!(stitch_propagation::tracestate::split_tenant("congo"), None);
/// ```
pub fn split_tenant(key: &str) -> Option<(&str, &str)> {
    key.split_once('@')
}

impl fmt::Display for TraceState {
    /// The header value: members joined by `,` without optional whitespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl FromStr for TraceState {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceState::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> TraceState {
        TraceState::parse(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    #[test]
    fn the_spec_examples_parse_in_order() {
        let ts = ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert_eq!(
            ts.iter().collect::<Vec<_>>(),
            vec![("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]
        );
        assert_eq!(ok("congo=t61rcWkgMzE").len(), 1);
    }

    #[test]
    fn a_vendor_adds_its_member_to_the_left_as_in_the_spec_walkthrough() {
        let mut ts = ok("congo=t61rcWkgMzE");
        ts.insert("rojo", "00f067aa0ba902b7").unwrap();
        assert_eq!(ts.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        ts.insert("congo", "ucfJifl5GOE").unwrap();
        assert_eq!(ts.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
    }

    #[test]
    fn adding_a_33rd_member_drops_the_right_most() {
        let value: Vec<String> = (1..=32).map(|i| format!("k{i}=v")).collect();
        let mut ts = ok(&value.join(","));
        assert_eq!(ts.len(), 32);
        ts.insert("new", "1").unwrap();
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.get("new"), Some("1"));
        assert_eq!(ts.get("k32"), None);
        assert_eq!(ts.get("k1"), Some("v"));
    }

    #[test]
    fn thirty_two_members_are_valid_and_thirty_three_are_not() {
        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        assert_eq!(ok(&members[..32].join(",")).len(), 32);
        let err = TraceState::parse(&members.join(",")).unwrap_err();
        assert_eq!(err.reason(), &Reason::TooManyMembers { max: 32, found: 33 });
    }

    #[test]
    fn multiple_header_fields_are_combined_in_order() {
        let ts =
            TraceState::from_header_values(["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).unwrap();
        assert_eq!(ts.to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
    }

    #[test]
    fn the_member_limit_applies_to_the_combined_fields() {
        let a: Vec<String> = (1..=20).map(|i| format!("a{i}=1")).collect();
        let b: Vec<String> = (1..=13).map(|i| format!("b{i}=1")).collect();
        assert!(
            TraceState::from_header_values([a.join(",").as_str(), b.join(",").as_str()]).is_err()
        );
    }

    #[test]
    fn empty_and_blank_members_and_headers_are_ignored() {
        assert!(ok("").is_empty());
        assert!(ok(" \t ").is_empty());
        assert_eq!(ok(",foo=1,, \t ,bar=2,").to_string(), "foo=1,bar=2");
        assert_eq!(
            TraceState::from_header_values(["", "foo=1"])
                .unwrap()
                .get("foo"),
            Some("1")
        );
    }

    #[test]
    fn optional_whitespace_around_members_is_not_part_of_them() {
        let ts = ok("foo=1 \t , \t bar=2, \t baz=3");
        assert_eq!(ts.to_string(), "foo=1,bar=2,baz=3");
        assert_eq!(ok("\t foo=1 \t").get("foo"), Some("1"));
    }

    #[test]
    fn leading_spaces_of_a_value_are_kept() {
        assert_eq!(ok("foo=  1").get("foo"), Some("  1"));
    }

    #[test]
    fn every_allowed_key_and_value_character_is_accepted() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let tenant_key = format!("{key}@a-z0-9_-*/");
        let value: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        let ts = ok(&format!("{key}={value}"));
        assert_eq!(ts.get(key), Some(value.as_str()));
        let ts = ok(&format!("{tenant_key}={value}"));
        assert_eq!(ts.get(&tenant_key), Some(value.as_str()));
    }

    #[test]
    fn keys_with_illegal_characters_invalidate_the_header() {
        for v in [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "@foo=1,bar=2",
            "_foo=1",
            "fo\u{e9}=1",
        ] {
            assert!(TraceState::parse(v).is_err(), "{v}");
        }
    }

    #[test]
    fn keys_with_at_signs_follow_the_level_2_grammar() {
        for key in [
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "t61@congo",
            "0tenant@vendor",
        ] {
            assert_eq!(ok(&format!("{key}=1,bar=2")).get(key), Some("1"), "{key}");
        }
        assert_eq!(split_tenant("tenant@system"), Some(("tenant", "system")));
    }

    #[test]
    fn a_key_may_be_256_characters_but_not_257() {
        let key = "z".repeat(256);
        assert_eq!(ok(&format!("foo=1,{key}=1")).get(&key), Some("1"));
        assert!(TraceState::parse(&format!("foo=1,{}=1", "z".repeat(257))).is_err());
        let tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        assert!(TraceState::parse(&format!("{tenant}=1")).is_ok());
    }

    #[test]
    fn values_are_limited_to_256_characters() {
        assert!(TraceState::parse(&format!("foo={}", "x".repeat(256))).is_ok());
        assert!(TraceState::parse(&format!("foo={}", "x".repeat(257))).is_err());
    }

    #[test]
    fn values_with_illegal_characters_or_empty_values_invalidate_the_header() {
        for v in [
            "foo=bar=baz",
            "foo=,bar=3",
            "foo",
            "=1",
            "foo=\u{7f}",
            "foo=caf\u{e9}",
        ] {
            assert!(TraceState::parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn a_receiver_keeps_the_first_of_duplicate_keys() {
        let ts = ok("foo=1,bar=2,foo=3");
        assert_eq!(ts.to_string(), "foo=1,bar=2");
        let ts = TraceState::from_header_values(["foo=1", "foo=2"]).unwrap();
        assert_eq!(ts.get("foo"), Some("1"));
    }

    #[test]
    fn a_sender_must_not_repeat_a_key() {
        let err = TraceState::parse_strict("foo=1,foo=1").unwrap_err();
        assert_eq!(err.reason(), &Reason::DuplicateKey("foo".into()));
    }

    #[test]
    fn inserting_an_invalid_member_leaves_the_list_unchanged() {
        let mut ts = ok("a=1");
        assert!(ts.insert("B", "1").is_err());
        assert!(ts.insert("b", "x,y").is_err());
        assert_eq!(ts.to_string(), "a=1");
    }

    #[test]
    fn truncation_removes_long_members_first_then_from_the_right() {
        let long = "l".repeat(200);
        let mut ts = ok(&format!("a=1,big={long},b=2,c=3"));
        ts.truncate_to_len(11);
        assert_eq!(ts.to_string(), "a=1,b=2,c=3");
        ts.truncate_to_len(7);
        assert_eq!(ts.to_string(), "a=1,b=2");
        ts.truncate_to_len(0);
        assert!(ts.is_empty());
    }
}
