//! Protobuf wire-format primitives, enough to write the OTLP messages keel sends.
//!
//! Every field number keel writes is below 16, so a field's key is one byte. Writers follow
//! proto3's rules as `prost` applies them: a scalar field holding its default (empty string or
//! bytes, zero) is left out, except inside a `oneof`, where the caller writes it regardless.

/// Wire type of varints (ints, bools, enums).
pub const VARINT: u8 = 0;
/// Wire type of 8-byte little-endian values (`fixed64`, `double`).
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited values (strings, bytes, messages).
pub const LEN: u8 = 2;

/// The encoded length of `v` as a varint (1 to 10 bytes).
pub const fn varint_len(v: u64) -> usize {
    // Bits needed (at least 1), seven per byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes taken by a length-delimited field (key, length, then `len` bytes).
pub const fn len_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Bytes taken by a string or bytes field, nothing when it is empty.
pub const fn bytes_field_len(len: usize) -> usize {
    if len == 0 { 0 } else { len_field_len(len) }
}

/// Bytes taken by a varint field, nothing when it is zero.
pub const fn varint_field_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

/// Bytes taken by a `fixed64` field, nothing when it is zero.
pub const fn fixed64_field_len(v: u64) -> usize {
    if v == 0 { 0 } else { 9 }
}

pub fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn key(buf: &mut Vec<u8>, field: u8, wire_type: u8) {
    debug_assert!(field < 16, "field {field} needs a longer key");
    buf.push((field << 3) | wire_type);
}

/// The key and length of a length-delimited field whose `len` bytes the caller writes next.
pub fn len_prefix(buf: &mut Vec<u8>, field: u8, len: usize) {
    key(buf, field, LEN);
    varint(buf, len as u64);
}

/// A string or bytes field, always written (as a `oneof` member is).
pub fn bytes_always(buf: &mut Vec<u8>, field: u8, data: &[u8]) {
    len_prefix(buf, field, data.len());
    buf.extend_from_slice(data);
}

/// A string or bytes field, left out when empty.
pub fn bytes(buf: &mut Vec<u8>, field: u8, data: &[u8]) {
    if !data.is_empty() {
        bytes_always(buf, field, data);
    }
}

/// A `fixed64` or `double` field (its raw bits), always written.
pub fn fixed64_always(buf: &mut Vec<u8>, field: u8, bits: u64) {
    key(buf, field, FIXED64);
    buf.extend_from_slice(&bits.to_le_bytes());
}

/// A `fixed64` field, left out when zero.
pub fn fixed64(buf: &mut Vec<u8>, field: u8, v: u64) {
    if v != 0 {
        fixed64_always(buf, field, v);
    }
}

/// A varint field (an `int64` as its two's complement bits), always written.
pub fn varint_field_always(buf: &mut Vec<u8>, field: u8, v: u64) {
    key(buf, field, VARINT);
    varint(buf, v);
}

/// A varint field, left out when zero.
pub fn varint_field(buf: &mut Vec<u8>, field: u8, v: u64) {
    if v != 0 {
        varint_field_always(buf, field, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_prost() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..64).map(|s| 1u64 << s))
        {
            let mut ours = Vec::new();
            varint(&mut ours, v);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(varint_len(v), prost::encoding::encoded_len_varint(v), "{v}");
        }
    }

    #[test]
    fn defaults_are_left_out_unless_always() {
        let mut buf = Vec::new();
        bytes(&mut buf, 1, b"");
        fixed64(&mut buf, 7, 0);
        varint_field(&mut buf, 6, 0);
        assert!(buf.is_empty());
        bytes_always(&mut buf, 1, b"");
        varint_field_always(&mut buf, 3, 0);
        fixed64_always(&mut buf, 4, 0);
        assert_eq!(buf, [0x0a, 0, 0x18, 0, 0x21, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes_field_len(0), 0);
        assert_eq!(bytes_field_len(200), 1 + 2 + 200);
    }
}
