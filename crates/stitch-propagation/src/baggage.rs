//! The W3C `baggage` header: user-defined key/value pairs that travel with a request.
//!
//! `baggage: userId=alice,serverNode=DF%2028;region=eu;primary,isProduction=false`
//!
//! The rules enforced here:
//!
//! * A list of members separated by `,`; each member is `key = value` followed by optional
//!   properties `;key=value` or `;key`. Spaces and tabs around keys, values, `=`, `;` and `,`
//!   are optional whitespace.
//! * Keys (and property keys) are RFC 7230 `token`s.
//! * Values are made of `baggage-octet`s (printable ASCII except space, `"`, `,`, `;` and `\`)
//!   and are percent-encoded: this crate decodes them when parsing (invalid UTF-8 becomes
//!   U+FFFD, as the spec requires) and encodes everything outside `baggage-octet`, and `%`,
//!   when formatting. A value may contain `=`, and may be empty.
//! * Limits: the grammar allows at most 180 members ([`MAX_MEMBERS`]). The spec requires
//!   propagating everything up to 64 members and 8192 bytes and lets a platform drop whole
//!   members beyond that; this crate keeps up to 180 members and 8192 bytes
//!   ([`MAX_BYTES`]). (The older per-member limit of 4096 bytes was removed from the spec in
//!   2022 in favour of these lower bounds.)
//! * Several `baggage` headers are combined in order; the limits apply to the combination.
//! * Keys need not be unique; order is kept.
//!
//! The spec leaves the handling of a malformed baggage string to the implementation:
//! [`Baggage::parse`] rejects it whole, [`Baggage::parse_lenient`] (which extraction uses)
//! drops the offending members and keeps the rest.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, Reason};
use crate::ids::trim_ows;
use crate::percent;

/// The header name.
pub const BAGGAGE: &str = "baggage";
/// The most members the grammar allows (`list-member 0*179( "," list-member )`).
pub const MAX_MEMBERS: usize = 180;
/// The largest baggage string this crate accepts and propagates, in bytes.
pub const MAX_BYTES: usize = 8192;
/// The number of members every platform must propagate at least.
pub const MIN_PROPAGATED_MEMBERS: usize = 64;

const HEADER: &str = BAGGAGE;

/// One `;key` or `;key=value` property of a baggage member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaggageProperty {
    key: String,
    value: Option<String>,
}

/// One `key=value;properties` member of a baggage list. The value is kept decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    key: String,
    value: String,
    properties: Vec<BaggageProperty>,
}

/// A `baggage` list.
///
/// ```
/// use stitch_propagation::Baggage;
///
/// let bag: Baggage = "userId=Am%C3%A9lie,serverNode=DF%2028;region=eu,isProduction=false".parse()?;
/// assert_eq!(bag.get("userId"), Some("Amélie"));
/// assert_eq!(bag.get("serverNode"), Some("DF 28"));
/// assert_eq!(bag.member("serverNode").unwrap().properties()[0].value(), Some("eu"));
///
/// let mut bag = stitch_propagation::Baggage::new();
/// bag.insert("userId", "alice")?;
/// bag.insert("serverNode", "DF 28")?;
/// assert_eq!(bag.to_string(), "userId=alice,serverNode=DF%2028");
/// # Ok::<(), stitch_propagation::ParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Baggage {
    members: Vec<BaggageMember>,
}

impl BaggageProperty {
    /// A property; `value` is `None` for the `;key` form. The key must be a token.
    pub fn new(key: &str, value: Option<&str>) -> Result<Self, ParseError> {
        check_token(key, "property key")?;
        Ok(BaggageProperty {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The decoded value, `None` for the `;key` form.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl BaggageMember {
    /// A member with no properties. The key must be a token; the value is any text.
    pub fn new(key: &str, value: &str) -> Result<Self, ParseError> {
        check_token(key, "key")?;
        Ok(BaggageMember {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: Vec::new(),
        })
    }

    /// This member with one more property.
    pub fn with_property(mut self, property: BaggageProperty) -> Self {
        self.properties.push(property);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The decoded value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The properties, in order.
    pub fn properties(&self) -> &[BaggageProperty] {
        &self.properties
    }

    fn parse(raw: &str) -> Result<Self, ParseError> {
        let mut parts = raw.split(';');
        let first = parts.next().unwrap_or("");
        let Some((key, value)) = first.split_once('=') else {
            return Err(ParseError::new(
                HEADER,
                "list-member",
                Reason::Delimiter { expected: '=' },
            ));
        };
        let key = trim_ows(key);
        check_token(key, "key")?;
        let value = trim_ows(value);
        check_octets(value, "value")?;
        let mut member = BaggageMember {
            key: key.to_owned(),
            value: percent::decode(value),
            properties: Vec::new(),
        };
        for prop in parts {
            let (pkey, pvalue) = match prop.split_once('=') {
                Some((k, v)) => {
                    let v = trim_ows(v);
                    check_octets(v, "property value")?;
                    (trim_ows(k), Some(percent::decode(v)))
                }
                None => (trim_ows(prop), None),
            };
            check_token(pkey, "property key")?;
            member.properties.push(BaggageProperty {
                key: pkey.to_owned(),
                value: pvalue,
            });
        }
        Ok(member)
    }

    fn encoded_len(&self) -> usize {
        self.to_string().len()
    }
}

impl fmt::Display for BaggageMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, percent::encode(&self.value, is_octet))?;
        for p in &self.properties {
            match &p.value {
                Some(v) => write!(f, ";{}={}", p.key, percent::encode(v, is_octet))?,
                None => write!(f, ";{}", p.key)?,
            }
        }
        Ok(())
    }
}

impl Baggage {
    /// An empty list.
    pub const fn new() -> Self {
        Baggage {
            members: Vec::new(),
        }
    }

    /// Parses a baggage string, rejecting it whole if any member is malformed or a limit is
    /// exceeded. Blank members (from joined headers) are ignored.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        if value.len() > MAX_BYTES {
            return Err(ParseError::new(
                HEADER,
                "",
                Reason::TooLong {
                    max: MAX_BYTES,
                    found: value.len(),
                },
            ));
        }
        let mut members = Vec::new();
        for raw in value.split(',') {
            if trim_ows(raw).is_empty() {
                continue;
            }
            members.push(BaggageMember::parse(raw)?);
        }
        if members.len() > MAX_MEMBERS {
            return Err(ParseError::new(
                HEADER,
                "",
                Reason::TooManyMembers {
                    max: MAX_MEMBERS,
                    found: members.len(),
                },
            ));
        }
        Ok(Baggage { members })
    }

    /// Parses a baggage string, dropping malformed members and keeping whole members, in
    /// order, up to [`MAX_MEMBERS`] and [`MAX_BYTES`].
    pub fn parse_lenient(value: &str) -> Self {
        let mut bag = Baggage {
            members: value
                .split(',')
                .filter(|raw| !trim_ows(raw).is_empty())
                .filter_map(|raw| BaggageMember::parse(raw).ok())
                .collect(),
        };
        bag.truncate_to_limits(MAX_MEMBERS, MAX_BYTES);
        bag
    }

    /// Combines several header fields (in order) and parses them with [`Baggage::parse`].
    pub fn from_header_values<'a, I>(values: I) -> Result<Self, ParseError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        Self::parse(&values.into_iter().collect::<Vec<_>>().join(","))
    }

    /// Combines several header fields (in order) and parses them with
    /// [`Baggage::parse_lenient`].
    pub fn from_header_values_lenient<'a, I>(values: I) -> Self
    where
        I: IntoIterator<Item = &'a str>,
    {
        Self::parse_lenient(&values.into_iter().collect::<Vec<_>>().join(","))
    }

    /// The decoded value of the first member with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.member(key).map(BaggageMember::value)
    }

    /// The first member with `key`.
    pub fn member(&self, key: &str) -> Option<&BaggageMember> {
        self.members.iter().find(|m| m.key == key)
    }

    /// Sets `key` to `value` (without properties): an existing member keeps its place and
    /// loses its duplicates, a new one goes last. The key must be a token.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        self.insert_member(BaggageMember::new(key, value)?);
        Ok(())
    }

    /// Sets a whole member, replacing any member with the same key (see [`Baggage::insert`]).
    pub fn insert_member(&mut self, member: BaggageMember) {
        match self.members.iter().position(|m| m.key == member.key) {
            Some(i) => {
                let key = member.key.clone();
                self.members[i] = member;
                let mut seen = false;
                self.members.retain(|m| {
                    if m.key != key {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.members.push(member),
        }
    }

    /// Appends a member even if its key is already present (keys need not be unique).
    pub fn push(&mut self, member: BaggageMember) {
        self.members.push(member);
    }

    /// Removes every member with `key`, returning the first one's value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let first = self.get(key).map(str::to_owned);
        self.members.retain(|m| m.key != key);
        first
    }

    /// The members, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &BaggageMember> + ExactSizeIterator {
        self.members.iter()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member (then no header should be sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Drops whole members from the end until there are at most `max_members` and the header
    /// value is at most `max_bytes` long.
    pub fn truncate_to_limits(&mut self, max_members: usize, max_bytes: usize) {
        let mut len = 0usize;
        let mut keep = 0usize;
        for (i, m) in self.members.iter().enumerate() {
            let add = m.encoded_len() + usize::from(i > 0);
            if i >= max_members || len + add > max_bytes {
                break;
            }
            len += add;
            keep = i + 1;
        }
        self.members.truncate(keep);
    }
}

impl fmt::Display for Baggage {
    /// The header value, values percent-encoded, without optional whitespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl FromStr for Baggage {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Baggage::parse(s)
    }
}

impl<'a> IntoIterator for &'a Baggage {
    type Item = &'a BaggageMember;
    type IntoIter = std::slice::Iter<'a, BaggageMember>;
    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn check_token(s: &str, field: &'static str) -> Result<(), ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(HEADER, field, Reason::Empty));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii() || !is_tchar(*c as u8)) {
        return Err(ParseError::new(
            HEADER,
            field,
            Reason::InvalidCharacter { found: c },
        ));
    }
    Ok(())
}

fn check_octets(s: &str, field: &'static str) -> Result<(), ParseError> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii() || !is_octet(*c as u8)) {
        return Err(ParseError::new(
            HEADER,
            field,
            Reason::InvalidCharacter { found: c },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> Baggage {
        Baggage::parse(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    #[test]
    fn the_spec_example_with_properties_and_whitespace_has_three_members() {
        let bag = ok(
            "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
        );
        assert_eq!(bag.len(), 3);
        let m1 = bag.member("key1").unwrap();
        assert_eq!(m1.value(), "value1");
        assert_eq!(m1.properties().len(), 2);
        assert_eq!(m1.properties()[0].key(), "property1");
        assert_eq!(m1.properties()[0].value(), None);
        assert_eq!(bag.get("key2"), Some("value2"));
        let m3 = bag.member("key3").unwrap();
        assert_eq!(m3.properties()[0].key(), "propertyKey");
        assert_eq!(m3.properties()[0].value(), Some("propertyValue"));
    }

    #[test]
    fn the_spec_example_single_header_decodes_its_values() {
        let bag = ok("userId=alice,serverNode=DF%2028,isProduction=false");
        assert_eq!(bag.get("userId"), Some("alice"));
        assert_eq!(bag.get("serverNode"), Some("DF 28"));
        assert_eq!(bag.get("isProduction"), Some("false"));
        assert_eq!(
            bag.to_string(),
            "userId=alice,serverNode=DF%2028,isProduction=false"
        );
    }

    #[test]
    fn the_spec_example_with_a_non_ascii_value_round_trips() {
        let bag = ok("userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false");
        assert_eq!(bag.get("userId"), Some("Amélie"));
        assert_eq!(
            bag.to_string(),
            "userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"
        );
    }

    #[test]
    fn the_spec_example_split_into_multiple_headers_is_combined() {
        let bag =
            Baggage::from_header_values(["userId=alice", "serverNode=DF%2028,isProduction=false"])
                .unwrap();
        assert_eq!(bag.len(), 3);
        let bag = Baggage::from_header_values([
            "userId =   alice",
            "serverNode = DF%2028, isProduction = false",
        ])
        .unwrap();
        assert_eq!(bag.get("userId"), Some("alice"));
        assert_eq!(bag.get("isProduction"), Some("false"));
    }

    #[test]
    fn a_value_may_contain_equal_signs() {
        assert_eq!(
            ok("SomeKey=SomeValue=equals").get("SomeKey"),
            Some("SomeValue=equals")
        );
    }

    #[test]
    fn reserved_characters_are_percent_encoded_and_decoded() {
        let raw = "\t \"';=asdf!@#$%^&*()";
        let mut bag = Baggage::new();
        bag.insert("SomeKey", raw).unwrap();
        let header = bag.to_string();
        assert_eq!(header, "SomeKey=%09%20%22'%3B=asdf!@#$%25^&*()");
        assert_eq!(ok(&header).get("SomeKey"), Some(raw));
        // What another implementation that encodes more characters sends decodes the same.
        assert_eq!(
            ok("SomeKey=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29").get("SomeKey"),
            Some(raw)
        );
    }

    #[test]
    fn properties_with_the_same_name_are_all_kept_in_order() {
        let bag = ok("SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue");
        let props = bag.member("SomeKey").unwrap().properties();
        assert_eq!(props.len(), 3);
        assert_eq!(props[2].value(), Some("AnotherPropValue"));
    }

    #[test]
    fn property_values_are_percent_decoded() {
        let bag = ok("k=v;p=a%20b");
        assert_eq!(
            bag.member("k").unwrap().properties()[0].value(),
            Some("a b")
        );
        assert_eq!(bag.to_string(), "k=v;p=a%20b");
    }

    #[test]
    fn invalid_utf8_after_decoding_becomes_the_replacement_character() {
        assert_eq!(ok("k=%C3%28").get("k"), Some("\u{fffd}("));
    }

    #[test]
    fn an_empty_value_is_allowed_by_the_grammar() {
        assert_eq!(ok("k=").get("k"), Some(""));
    }

    #[test]
    fn malformed_members_reject_the_whole_string_in_strict_mode() {
        for v in [
            "novalue",
            "=v",
            "k y=v",
            "k=v w",
            "k=\"v\"",
            "k=v;",
            "k=v;=x",
            "k\u{e9}=v",
            "k=v\\",
        ] {
            assert!(Baggage::parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn lenient_parsing_drops_only_the_malformed_members() {
        let bag = Baggage::parse_lenient("a=1,bad member,b=2;p,c=\"x\",d=4");
        assert_eq!(
            bag.iter().map(BaggageMember::key).collect::<Vec<_>>(),
            vec!["a", "b", "d"]
        );
    }

    #[test]
    fn blank_members_are_ignored() {
        assert_eq!(ok("a=1,, \t ,b=2,").len(), 2);
        assert!(ok("").is_empty());
    }

    #[test]
    fn more_than_180_members_are_rejected_in_strict_mode_and_cut_in_lenient_mode() {
        let v: Vec<String> = (0..181).map(|i| format!("k{i}=1")).collect();
        assert!(Baggage::parse(&v[..180].join(",")).is_ok());
        assert_eq!(
            Baggage::parse(&v.join(",")).unwrap_err().reason(),
            &Reason::TooManyMembers {
                max: 180,
                found: 181
            }
        );
        assert_eq!(Baggage::parse_lenient(&v.join(",")).len(), 180);
    }

    #[test]
    fn a_string_over_8192_bytes_is_rejected_or_cut_to_whole_members() {
        let member = format!("k={}", "v".repeat(998));
        let v = [member.as_str(); 9].join(",");
        assert!(v.len() > MAX_BYTES);
        assert!(Baggage::parse(&v).is_err());
        let bag = Baggage::parse_lenient(&v);
        assert_eq!(bag.len(), 8);
        assert!(bag.to_string().len() <= MAX_BYTES);
    }

    #[test]
    fn sixty_four_members_in_8192_bytes_are_always_kept() {
        let v: Vec<String> = (0..64)
            .map(|i| format!("key{i:03}={}", "x".repeat(118)))
            .collect();
        let joined = v.join(",");
        assert!(joined.len() <= MAX_BYTES);
        assert_eq!(
            Baggage::parse_lenient(&joined).len(),
            MIN_PROPAGATED_MEMBERS
        );
    }

    #[test]
    fn inserting_an_existing_key_replaces_it_in_place_and_removes_duplicates() {
        let mut bag = ok("a=1,b=2,a=3");
        bag.insert("a", "9").unwrap();
        assert_eq!(bag.to_string(), "a=9,b=2");
        assert!(bag.insert("not a token", "x").is_err());
        assert_eq!(bag.remove("b").as_deref(), Some("2"));
    }
}
