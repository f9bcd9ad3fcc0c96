//! The one error type of every parser in this crate.

use std::fmt;

/// Why a header value was rejected.
///
/// Every parser in the crate returns this type, so that a caller can report *which* header,
/// *which* field and *what* rule was broken without matching on per-format error types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    header: &'static str,
    field: &'static str,
    reason: Reason,
}

/// The rule a rejected value broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The value (or field) is empty.
    Empty,
    /// The field has the wrong number of characters.
    Length {
        /// What the format allows, in words (`"32"`, `"16 or 32"`).
        expected: &'static str,
        /// How many characters the field had.
        found: usize,
    },
    /// A character outside the field's character set.
    InvalidCharacter {
        /// The offending character.
        found: char,
    },
    /// Hexadecimal digits must be lowercase in this format.
    UppercaseHex,
    /// An identifier made only of zeros, which every format reserves as invalid.
    AllZero,
    /// The `traceparent` version `ff`, which the specification forbids.
    ForbiddenVersion,
    /// A delimiter is missing or in the wrong place.
    Delimiter {
        /// The delimiter that was expected.
        expected: char,
    },
    /// The wrong number of delimited fields.
    FieldCount {
        /// What the format allows, in words.
        expected: &'static str,
        /// How many fields the value had.
        found: usize,
    },
    /// Characters after the end of a fixed-length value.
    TrailingData,
    /// A list with more members than the format allows.
    TooManyMembers {
        /// The limit.
        max: usize,
        /// How many members the list had.
        found: usize,
    },
    /// A value longer than the format allows.
    TooLong {
        /// The limit, in bytes.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// A list key that appears more than once.
    DuplicateKey(String),
    /// A header that may appear once appeared several times.
    DuplicateHeader,
    /// A field that the format requires is absent.
    Missing,
    /// Any other violation, described in words.
    Invalid(&'static str),
}

impl ParseError {
    pub(crate) fn new(header: &'static str, field: &'static str, reason: Reason) -> Self {
        ParseError {
            header,
            field,
            reason,
        }
    }

    /// The header (or format) whose value was rejected, e.g. `"traceparent"`.
    pub fn header(&self) -> &'static str {
        self.header
    }

    /// The field inside the value, e.g. `"trace-id"`; empty when the whole value is at fault.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The rule that was broken.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("is empty"),
            Reason::Length { expected, found } => {
                write!(f, "has {found} characters, expected {expected}")
            }
            Reason::InvalidCharacter { found } => {
                write!(f, "contains the character {found:?}, which is not allowed")
            }
            Reason::UppercaseHex => {
                f.write_str("contains uppercase hex digits (must be lowercase)")
            }
            Reason::AllZero => f.write_str("is all zeros, which is an invalid identifier"),
            Reason::ForbiddenVersion => f.write_str("is version ff, which is forbidden"),
            Reason::Delimiter { expected } => write!(f, "misses the delimiter {expected:?}"),
            Reason::FieldCount { expected, found } => {
                write!(f, "has {found} fields, expected {expected}")
            }
            Reason::TrailingData => f.write_str("has data after the last field"),
            Reason::TooManyMembers { max, found } => {
                write!(f, "has {found} members, more than the maximum of {max}")
            }
            Reason::TooLong { max, found } => {
                write!(f, "is {found} bytes long, more than the maximum of {max}")
            }
            Reason::DuplicateKey(key) => write!(f, "has the key {key:?} more than once"),
            Reason::DuplicateHeader => f.write_str("appears more than once"),
            Reason::Missing => f.write_str("is missing"),
            Reason::Invalid(what) => f.write_str(what),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.header, self.reason)
        } else {
            write!(f, "{}: {} {}", self.header, self.field, self.reason)
        }
    }
}

impl std::error::Error for ParseError {}
