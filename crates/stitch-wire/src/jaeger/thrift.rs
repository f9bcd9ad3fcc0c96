//! The two Thrift protocols Jaeger speaks, compact and binary, written from the Apache Thrift
//! protocol specifications: a reader and a writer for each behind one pair of traits, so the
//! Jaeger structures are read and written once for both.
//!
//! The readers never panic and never allocate more than the input can justify: every length and
//! element count is checked against the bytes that are left before anything is reserved,
//! nesting (which only unknown fields can bring) is limited to [`MAX_DEPTH`], and varints longer
//! than their type allows are errors.

use std::fmt;

/// How deeply containers and structs may nest, counting from the outermost struct.
pub const MAX_DEPTH: usize = 32;

/// A Thrift value type (the protocol-independent meaning of a type code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Double,
    /// Strings and binary.
    Binary,
    List,
    Set,
    Map,
    Struct,
    Uuid,
}

impl fmt::Display for TType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TType::Bool => "bool",
            TType::I8 => "i8",
            TType::I16 => "i16",
            TType::I32 => "i32",
            TType::I64 => "i64",
            TType::Double => "double",
            TType::Binary => "binary",
            TType::List => "list",
            TType::Set => "set",
            TType::Map => "map",
            TType::Struct => "struct",
            TType::Uuid => "uuid",
        })
    }
}

/// Thrift message types.
pub const MESSAGE_CALL: u8 = 1;
pub const MESSAGE_ONEWAY: u8 = 4;

/// Why bytes are not the Thrift structure that was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ThriftError {
    #[error("input ends at byte {at} in the middle of a value")]
    Eof { at: usize },
    #[error("varint at byte {at} is longer than its type allows")]
    Varint { at: usize },
    #[error("unknown thrift type code {code} at byte {at}")]
    UnknownType { code: u8, at: usize },
    #[error("length {len} at byte {at} is negative or larger than the {left} bytes left")]
    Length { len: i64, at: usize, left: usize },
    #[error("values nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0}")]
    Message(String),
}

pub type Result<T> = std::result::Result<T, ThriftError>;

/// Reading values, whatever the protocol.
pub trait Input<'a> {
    /// A message header: method name, message type and sequence id.
    fn message_begin(&mut self) -> Result<(String, u8, i32)>;
    fn struct_begin(&mut self) -> Result<()>;
    fn struct_end(&mut self);
    /// The next field's type and id, or `None` at the end of the struct.
    fn field_begin(&mut self) -> Result<Option<(TType, i16)>>;
    fn bool(&mut self) -> Result<bool>;
    fn i8(&mut self) -> Result<i8>;
    fn i16(&mut self) -> Result<i16>;
    fn i32(&mut self) -> Result<i32>;
    fn i64(&mut self) -> Result<i64>;
    fn double(&mut self) -> Result<f64>;
    fn binary(&mut self) -> Result<&'a [u8]>;
    /// Element type and count of a list or set. The count is at most the bytes left.
    fn list_begin(&mut self) -> Result<(TType, usize)>;
    /// Key type, value type and count of a map. The count is at most the bytes left.
    fn map_begin(&mut self) -> Result<(TType, TType, usize)>;
    fn uuid(&mut self) -> Result<&'a [u8]>;
    /// Bytes not read yet.
    fn remaining(&self) -> usize;

    /// A string; bytes that are not UTF-8 are replaced, never rejected.
    fn string(&mut self) -> Result<String> {
        Ok(String::from_utf8_lossy(self.binary()?).into_owned())
    }

    /// Reads and discards a value of type `t`, `depth` levels deep.
    fn skip(&mut self, t: TType, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        match t {
            TType::Bool => self.bool().map(drop),
            TType::I8 => self.i8().map(drop),
            TType::I16 => self.i16().map(drop),
            TType::I32 => self.i32().map(drop),
            TType::I64 => self.i64().map(drop),
            TType::Double => self.double().map(drop),
            TType::Binary => self.binary().map(drop),
            TType::Uuid => self.uuid().map(drop),
            TType::List | TType::Set => {
                let (elem, n) = self.list_begin()?;
                for _ in 0..n {
                    self.skip(elem, depth + 1)?;
                }
                Ok(())
            }
            TType::Map => {
                let (k, v, n) = self.map_begin()?;
                for _ in 0..n {
                    self.skip(k, depth + 1)?;
                    self.skip(v, depth + 1)?;
                }
                Ok(())
            }
            TType::Struct => {
                self.struct_begin()?;
                while let Some((ft, _)) = self.field_begin()? {
                    self.skip(ft, depth + 1)?;
                }
                self.struct_end();
                Ok(())
            }
        }
    }
}

/// Writing values, whatever the protocol.
pub trait Output {
    fn message_begin(&mut self, name: &str, message_type: u8, seq_id: i32);
    fn struct_begin(&mut self);
    /// Writes the stop field.
    fn struct_end(&mut self);
    /// The header of a field that is not a bool.
    fn field(&mut self, t: TType, id: i16);
    /// A whole bool field.
    fn bool_field(&mut self, id: i16, value: bool);
    /// A bool element of a container.
    fn bool(&mut self, value: bool);
    fn i32(&mut self, value: i32);
    fn i64(&mut self, value: i64);
    fn double(&mut self, value: f64);
    fn binary(&mut self, value: &[u8]);
    fn list_begin(&mut self, elem: TType, len: usize);
    fn into_bytes(self) -> Vec<u8>;
}

/// Bytes with a read position.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(ThriftError::Eof { at: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ThriftError::Eof { at: self.buf.len() })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A length or count, checked against the bytes left.
    fn bounded(&self, len: i64, at: usize) -> Result<usize> {
        let left = self.left();
        match usize::try_from(len) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(ThriftError::Length { len, at, left }),
        }
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes.
    fn varint(&mut self, max_bytes: usize) -> Result<u64> {
        let at = self.pos;
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ThriftError::Varint { at })
    }
}

/// The binary protocol reader (big-endian, fixed-width integers).
pub struct BinaryIn<'a> {
    cur: Cursor<'a>,
    depth: usize,
}

impl<'a> BinaryIn<'a> {
    pub fn new(buf: &'a [u8]) -> BinaryIn<'a> {
        BinaryIn {
            cur: Cursor { buf, pos: 0 },
            depth: 0,
        }
    }
}

fn binary_ttype(code: u8, at: usize) -> Result<TType> {
    {
        Ok(match code {
            2 => TType::Bool,
            3 => TType::I8,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::Binary,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            16 => TType::Uuid,
            _ => return Err(ThriftError::UnknownType { code, at }),
        })
    }
}

fn binary_code(t: TType) -> u8 {
    match t {
        TType::Bool => 2,
        TType::I8 => 3,
        TType::Double => 4,
        TType::I16 => 6,
        TType::I32 => 8,
        TType::I64 => 10,
        TType::Binary => 11,
        TType::Struct => 12,
        TType::Map => 13,
        TType::Set => 14,
        TType::List => 15,
        TType::Uuid => 16,
    }
}

/// The strict binary message header: version 1 in the high half of the first word.
const BINARY_VERSION_1: u32 = 0x8001_0000;

impl<'a> Input<'a> for BinaryIn<'a> {
    fn message_begin(&mut self) -> Result<(String, u8, i32)> {
        let first = self.i32()?;
        if first < 0 {
            let word = first as u32;
            if word & 0xffff_0000 != BINARY_VERSION_1 {
                return Err(ThriftError::Message(format!(
                    "bad binary protocol version {:#010x}",
                    word & 0xffff_0000
                )));
            }
            let message_type = (word & 0xff) as u8;
            let name = self.string()?;
            let seq = self.i32()?;
            Ok((name, message_type, seq))
        } else {
            // The old, non-strict header: the name comes first.
            let at = self.cur.pos;
            let len = self.cur.bounded(i64::from(first), at)?;
            let name = String::from_utf8_lossy(self.cur.take(len)?).into_owned();
            let message_type = self.cur.byte()?;
            let seq = self.i32()?;
            Ok((name, message_type, seq))
        }
    }

    fn struct_begin(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        Ok(())
    }

    fn struct_end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn field_begin(&mut self) -> Result<Option<(TType, i16)>> {
        let at = self.cur.pos;
        let code = self.cur.byte()?;
        if code == 0 {
            return Ok(None);
        }
        let t = binary_ttype(code, at)?;
        let id = self.i16()?;
        Ok(Some((t, id)))
    }

    fn bool(&mut self) -> Result<bool> {
        Ok(self.cur.byte()? != 0)
    }

    fn i8(&mut self) -> Result<i8> {
        Ok(self.cur.byte()? as i8)
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.cur.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.cur.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.cur.array()?))
    }

    fn double(&mut self) -> Result<f64> {
        Ok(f64::from_be_bytes(self.cur.array()?))
    }

    fn binary(&mut self) -> Result<&'a [u8]> {
        let at = self.cur.pos;
        let len = self.i32()?;
        let len = self.cur.bounded(i64::from(len), at)?;
        self.cur.take(len)
    }

    fn list_begin(&mut self) -> Result<(TType, usize)> {
        let at = self.cur.pos;
        let elem = binary_ttype(self.cur.byte()?, at)?;
        let n = self.i32()?;
        Ok((elem, self.cur.bounded(i64::from(n), at)?))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, usize)> {
        let at = self.cur.pos;
        let k = binary_ttype(self.cur.byte()?, at)?;
        let v = binary_ttype(self.cur.byte()?, at + 1)?;
        let n = self.i32()?;
        Ok((k, v, self.cur.bounded(i64::from(n), at)?))
    }

    fn uuid(&mut self) -> Result<&'a [u8]> {
        self.cur.take(16)
    }

    fn remaining(&self) -> usize {
        self.cur.left()
    }
}

/// The compact protocol reader (zigzag varints, field id deltas, bools in field headers).
pub struct CompactIn<'a> {
    cur: Cursor<'a>,
    /// The last field id of each struct being read, innermost last.
    last_ids: Vec<i16>,
    /// The value of a bool field, which the compact protocol carries in the field header.
    pending_bool: Option<bool>,
}

/// The compact protocol's id in the first byte of a message.
const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 1;

impl<'a> CompactIn<'a> {
    pub fn new(buf: &'a [u8]) -> CompactIn<'a> {
        CompactIn {
            cur: Cursor { buf, pos: 0 },
            last_ids: Vec::new(),
            pending_bool: None,
        }
    }

    /// Element types (of lists, sets and maps). Bool elements are written as 2 by the
    /// specification and as 1 by some implementations; both are accepted.
    fn elem_type(&self, code: u8, at: usize) -> Result<TType> {
        match code {
            1 | 2 => Ok(TType::Bool),
            _ => self.field_type(code, at),
        }
    }

    fn field_type(&self, code: u8, at: usize) -> Result<TType> {
        Ok(match code {
            3 => TType::I8,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::Binary,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            13 => TType::Uuid,
            _ => return Err(ThriftError::UnknownType { code, at }),
        })
    }

    fn zigzag32(&mut self) -> Result<i32> {
        let at = self.cur.pos;
        let v = self.cur.varint(5)?;
        let v = u32::try_from(v).map_err(|_| ThriftError::Varint { at })?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    fn zigzag64(&mut self) -> Result<i64> {
        let at = self.cur.pos;
        let v = self.cur.varint(10)?;
        // The tenth byte may only hold the 64th bit.
        if self.cur.pos - at == 10 && self.cur.buf[self.cur.pos - 1] > 1 {
            return Err(ThriftError::Varint { at });
        }
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn length(&mut self) -> Result<usize> {
        let at = self.cur.pos;
        let v = self.cur.varint(5)?;
        let v = i32::try_from(v).map_err(|_| ThriftError::Varint { at })?;
        self.cur.bounded(i64::from(v), at)
    }
}

impl<'a> Input<'a> for CompactIn<'a> {
    fn message_begin(&mut self) -> Result<(String, u8, i32)> {
        let protocol = self.cur.byte()?;
        if protocol != COMPACT_PROTOCOL_ID {
            return Err(ThriftError::Message(format!(
                "not a compact protocol message: protocol id {protocol:#04x}, expected 0x82"
            )));
        }
        let b = self.cur.byte()?;
        let version = b & 0x1f;
        if version != COMPACT_VERSION {
            return Err(ThriftError::Message(format!(
                "unsupported compact protocol version {version}"
            )));
        }
        let message_type = b >> 5;
        let at = self.cur.pos;
        let seq = self.cur.varint(5)?;
        let seq = u32::try_from(seq).map_err(|_| ThriftError::Varint { at })? as i32;
        let name = self.string()?;
        Ok((name, message_type, seq))
    }

    fn struct_begin(&mut self) -> Result<()> {
        if self.last_ids.len() >= MAX_DEPTH {
            return Err(ThriftError::TooDeep);
        }
        self.last_ids.push(0);
        Ok(())
    }

    fn struct_end(&mut self) {
        self.last_ids.pop();
    }

    fn field_begin(&mut self) -> Result<Option<(TType, i16)>> {
        let at = self.cur.pos;
        let b = self.cur.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let delta = b >> 4;
        let code = b & 0x0f;
        let t = match code {
            1 | 2 => {
                self.pending_bool = Some(code == 1);
                TType::Bool
            }
            _ => self.field_type(code, at)?,
        };
        let last = self.last_ids.last().copied().unwrap_or(0);
        let id = if delta == 0 {
            let wide = self.zigzag32()?;
            i16::try_from(wide)
                .map_err(|_| ThriftError::Message(format!("field id {wide} out of range")))?
        } else {
            last.wrapping_add(i16::from(delta))
        };
        if let Some(slot) = self.last_ids.last_mut() {
            *slot = id;
        }
        Ok(Some((t, id)))
    }

    fn bool(&mut self) -> Result<bool> {
        if let Some(v) = self.pending_bool.take() {
            return Ok(v);
        }
        Ok(self.cur.byte()? == 1)
    }

    fn i8(&mut self) -> Result<i8> {
        Ok(self.cur.byte()? as i8)
    }

    fn i16(&mut self) -> Result<i16> {
        let v = self.zigzag32()?;
        i16::try_from(v).map_err(|_| ThriftError::Message(format!("i16 value {v} out of range")))
    }

    fn i32(&mut self) -> Result<i32> {
        self.zigzag32()
    }

    fn i64(&mut self) -> Result<i64> {
        self.zigzag64()
    }

    fn double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.cur.array()?))
    }

    fn binary(&mut self) -> Result<&'a [u8]> {
        let len = self.length()?;
        self.cur.take(len)
    }

    fn list_begin(&mut self) -> Result<(TType, usize)> {
        let at = self.cur.pos;
        let b = self.cur.byte()?;
        let elem = self.elem_type(b & 0x0f, at)?;
        let short = usize::from(b >> 4);
        let n = if short == 15 {
            self.length()?
        } else {
            self.cur.bounded(short as i64, at)?
        };
        Ok((elem, n))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, usize)> {
        let n = self.length()?;
        if n == 0 {
            return Ok((TType::I8, TType::I8, 0));
        }
        let at = self.cur.pos;
        let b = self.cur.byte()?;
        Ok((
            self.elem_type(b >> 4, at)?,
            self.elem_type(b & 0x0f, at)?,
            n,
        ))
    }

    fn uuid(&mut self) -> Result<&'a [u8]> {
        self.cur.take(16)
    }

    fn remaining(&self) -> usize {
        self.cur.left()
    }
}

/// The binary protocol writer.
#[derive(Default)]
pub struct BinaryOut {
    buf: Vec<u8>,
}

impl BinaryOut {
    pub fn new() -> BinaryOut {
        BinaryOut::default()
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

impl Output for BinaryOut {
    fn message_begin(&mut self, name: &str, message_type: u8, seq_id: i32) {
        self.i32((BINARY_VERSION_1 | u32::from(message_type)) as i32);
        self.binary(name.as_bytes());
        self.i32(seq_id);
    }

    fn struct_begin(&mut self) {}

    fn struct_end(&mut self) {
        self.buf.push(0);
    }

    fn field(&mut self, t: TType, id: i16) {
        self.buf.push(binary_code(t));
        self.buf.extend_from_slice(&id.to_be_bytes());
    }

    fn bool_field(&mut self, id: i16, value: bool) {
        self.field(TType::Bool, id);
        self.bool(value);
    }

    fn bool(&mut self, value: bool) {
        self.buf.push(u8::from(value));
    }

    fn i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn double(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn binary(&mut self, value: &[u8]) {
        self.i32(len_i32(value.len()));
        self.buf.extend_from_slice(value);
    }

    fn list_begin(&mut self, elem: TType, len: usize) {
        self.buf.push(binary_code(elem));
        self.i32(len_i32(len));
    }

    fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The compact protocol writer.
#[derive(Default)]
pub struct CompactOut {
    buf: Vec<u8>,
    last_ids: Vec<i16>,
}

impl CompactOut {
    pub fn new() -> CompactOut {
        CompactOut::default()
    }

    fn varint(&mut self, mut v: u64) {
        loop {
            if v < 0x80 {
                self.buf.push(v as u8);
                return;
            }
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
    }

    fn field_code(&mut self, code: u8, id: i16) {
        let last = self.last_ids.last().copied().unwrap_or(0);
        let delta = i32::from(id) - i32::from(last);
        if (1..=15).contains(&delta) {
            self.buf.push(((delta as u8) << 4) | code);
        } else {
            self.buf.push(code);
            self.varint(u64::from(zigzag32(i32::from(id))));
        }
        if let Some(slot) = self.last_ids.last_mut() {
            *slot = id;
        }
    }
}

fn zigzag32(n: i32) -> u32 {
    ((n << 1) ^ (n >> 31)) as u32
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn compact_code(t: TType) -> u8 {
    match t {
        TType::Bool => 2,
        TType::I8 => 3,
        TType::I16 => 4,
        TType::I32 => 5,
        TType::I64 => 6,
        TType::Double => 7,
        TType::Binary => 8,
        TType::List => 9,
        TType::Set => 10,
        TType::Map => 11,
        TType::Struct => 12,
        TType::Uuid => 13,
    }
}

impl Output for CompactOut {
    fn message_begin(&mut self, name: &str, message_type: u8, seq_id: i32) {
        self.buf.push(COMPACT_PROTOCOL_ID);
        self.buf.push((message_type << 5) | COMPACT_VERSION);
        self.varint(u64::from(seq_id as u32));
        self.binary(name.as_bytes());
    }

    fn struct_begin(&mut self) {
        self.last_ids.push(0);
    }

    fn struct_end(&mut self) {
        self.buf.push(0);
        self.last_ids.pop();
    }

    fn field(&mut self, t: TType, id: i16) {
        self.field_code(compact_code(t), id);
    }

    fn bool_field(&mut self, id: i16, value: bool) {
        self.field_code(if value { 1 } else { 2 }, id);
    }

    fn bool(&mut self, value: bool) {
        self.buf.push(u8::from(value));
    }

    fn i32(&mut self, value: i32) {
        self.varint(u64::from(zigzag32(value)));
    }

    fn i64(&mut self, value: i64) {
        self.varint(zigzag64(value));
    }

    fn double(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn binary(&mut self, value: &[u8]) {
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    fn list_begin(&mut self, elem: TType, len: usize) {
        let code = compact_code(elem);
        if len < 15 {
            self.buf.push(((len as u8) << 4) | code);
        } else {
            self.buf.push(0xf0 | code);
            self.varint(len as u64);
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests;
