use super::*;

#[test]
fn compact_varints_round_trip_at_the_edges() {
    for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
        let mut out = CompactOut::new();
        out.i64(v);
        let bytes = out.into_bytes();
        assert_eq!(CompactIn::new(&bytes).i64().unwrap(), v);
    }
    for v in [0i32, -1, i32::MAX, i32::MIN] {
        let mut out = CompactOut::new();
        out.i32(v);
        let bytes = out.into_bytes();
        assert_eq!(CompactIn::new(&bytes).i32().unwrap(), v);
    }
}

#[test]
fn the_spec_example_varint_decodes() {
    // 50399 as an unsigned varint is DF 89 03.
    let mut c = Cursor {
        buf: &[0xdf, 0x89, 0x03],
        pos: 0,
    };
    assert_eq!(c.varint(5).unwrap(), 50399);
}

#[test]
fn overlong_varints_and_lengths_are_errors() {
    let bytes = [0xff; 11];
    assert!(matches!(
        CompactIn::new(&bytes).i64(),
        Err(ThriftError::Varint { .. })
    ));
    // A binary of 1000 bytes with 2 left.
    let mut out = CompactOut::new();
    out.varint(1000);
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(b"ab");
    assert!(matches!(
        CompactIn::new(&bytes).binary(),
        Err(ThriftError::Length { len: 1000, .. })
    ));
    assert!(matches!(
        BinaryIn::new(&[0xff, 0xff, 0xff, 0xff]).binary(),
        Err(ThriftError::Length { len: -1, .. })
    ));
}

#[test]
fn deep_nesting_is_refused() {
    // A struct whose field 1 is a struct whose field 1 is a struct...
    let mut bytes = Vec::new();
    for _ in 0..100 {
        bytes.extend_from_slice(&[12, 0, 1]);
    }
    let mut input = BinaryIn::new(&bytes);
    assert_eq!(input.skip(TType::Struct, 0), Err(ThriftError::TooDeep));
}

#[test]
fn compact_field_ids_use_deltas_and_long_form() {
    let mut out = CompactOut::new();
    out.struct_begin();
    out.field(TType::I32, 1);
    out.i32(7);
    out.bool_field(20, true);
    out.field(TType::I64, 3);
    out.i64(-2);
    out.struct_end();
    let bytes = out.into_bytes();
    let mut input = CompactIn::new(&bytes);
    input.struct_begin().unwrap();
    assert_eq!(input.field_begin().unwrap(), Some((TType::I32, 1)));
    assert_eq!(input.i32().unwrap(), 7);
    assert_eq!(input.field_begin().unwrap(), Some((TType::Bool, 20)));
    assert!(input.bool().unwrap());
    assert_eq!(input.field_begin().unwrap(), Some((TType::I64, 3)));
    assert_eq!(input.i64().unwrap(), -2);
    assert_eq!(input.field_begin().unwrap(), None);
}
