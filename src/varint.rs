//! bincode 2's variable-length integers (its standard configuration), the one copy of
//! the codec for the hand-written fast paths that must write and read exactly bincode's
//! bytes (the data frame in `wire`).
//!
//! A value up to 250 is one byte; larger values are a marker byte (251, 252, 253 for a
//! `u16`, `u32`, `u64`) followed by the value little-endian. A reader of a narrow type
//! refuses a wider marker, as bincode does, even when the value would fit.

/// The largest value written as itself, in one byte.
pub(crate) const SINGLE_BYTE_MAX: u8 = 250;
/// The marker of a `u16` in the two bytes that follow.
const U16_BYTE: u8 = 251;
/// The marker of a `u32` in the four bytes that follow.
const U32_BYTE: u8 = 252;
/// The marker of a `u64` in the eight bytes that follow.
const U64_BYTE: u8 = 253;

/// The most bytes one varint takes (a marker and a `u64`).
pub(crate) const VARINT_BYTES_MAX: usize = 9;

/// Appends `value` in the shortest form, as bincode writes it.
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, value: u64) {
    if value <= u64::from(SINGLE_BYTE_MAX) {
        out.push(value as u8);
    } else if let Ok(value) = u16::try_from(value) {
        out.push(U16_BYTE);
        out.extend_from_slice(&value.to_le_bytes());
    } else if let Ok(value) = u32::try_from(value) {
        out.push(U32_BYTE);
        out.extend_from_slice(&value.to_le_bytes());
    } else {
        out.push(U64_BYTE);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Writes `value` in the shortest form at the start of `out` and returns the bytes
/// written: for codecs that build a header on the stack and append it in one copy
/// (a `Vec::push` per byte checks the capacity each time; the data frame's eight
/// varints per message were a hot spot in `perf`). Every copy has a fixed size, so
/// none becomes a call to `memcpy`.
#[inline(always)]
pub(crate) fn write(out: &mut [u8; VARINT_BYTES_MAX], value: u64) -> usize {
    if value <= u64::from(SINGLE_BYTE_MAX) {
        out[0] = value as u8;
        1
    } else if let Ok(value) = u16::try_from(value) {
        out[0] = U16_BYTE;
        out[1..3].copy_from_slice(&value.to_le_bytes());
        3
    } else if let Ok(value) = u32::try_from(value) {
        out[0] = U32_BYTE;
        out[1..5].copy_from_slice(&value.to_le_bytes());
        5
    } else {
        out[0] = U64_BYTE;
        out[1..9].copy_from_slice(&value.to_le_bytes());
        9
    }
}

/// Reads a `u64` from the front of `bytes`: the value and the bytes after it, or `None`
/// if they do not start with a whole varint.
#[inline]
pub(crate) fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&marker, rest) = bytes.split_first()?;
    match marker {
        U64_BYTE => {
            let (value, rest) = rest.split_first_chunk::<8>()?;
            Some((u64::from_le_bytes(*value), rest))
        }
        _ => split_u32_with(marker, rest).map(|(value, rest)| (u64::from(value), rest)),
    }
}

/// Reads a `u32` from the front of `bytes` (a `u64` marker is refused).
#[inline]
pub(crate) fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (&marker, rest) = bytes.split_first()?;
    split_u32_with(marker, rest)
}

/// Reads a `u16` from the front of `bytes` (wider markers are refused).
#[inline]
pub(crate) fn split_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (&marker, rest) = bytes.split_first()?;
    split_u16_with(marker, rest)
}

#[inline]
fn split_u32_with(marker: u8, rest: &[u8]) -> Option<(u32, &[u8])> {
    match marker {
        U32_BYTE => {
            let (value, rest) = rest.split_first_chunk::<4>()?;
            Some((u32::from_le_bytes(*value), rest))
        }
        _ => split_u16_with(marker, rest).map(|(value, rest)| (u32::from(value), rest)),
    }
}

#[inline]
fn split_u16_with(marker: u8, rest: &[u8]) -> Option<(u16, &[u8])> {
    match marker {
        byte @ 0..=SINGLE_BYTE_MAX => Some((u16::from(byte), rest)),
        U16_BYTE => {
            let (value, rest) = rest.split_first_chunk::<2>()?;
            Some((u16::from_le_bytes(*value), rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bincode_bytes<T: bincode::Encode>(value: T) -> Vec<u8> {
        bincode::encode_to_vec(value, bincode::config::standard()).unwrap()
    }

    /// Every boundary of every width: our bytes are bincode's, and read back.
    #[test]
    fn writes_and_reads_what_bincode_writes_at_every_boundary() {
        let values = [
            0,
            1,
            250,
            251,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        for value in values {
            let mut ours = Vec::new();
            put(&mut ours, value);
            assert_eq!(ours, bincode_bytes(value), "{value}");
            let mut array = [0xAA; VARINT_BYTES_MAX];
            let len = write(&mut array, value);
            assert_eq!(&array[..len], &ours[..], "{value}");
            assert!(ours.len() <= VARINT_BYTES_MAX);
            assert_eq!(split_u64(&ours), Some((value, &[][..])), "{value}");
            if let Ok(narrow) = u32::try_from(value) {
                assert_eq!(split_u32(&ours), Some((narrow, &[][..])), "{value}");
            }
            if let Ok(narrow) = u16::try_from(value) {
                assert_eq!(split_u16(&ours), Some((narrow, &[][..])), "{value}");
            }
        }
    }

    #[test]
    fn truncated_and_too_wide_varints_are_refused() {
        assert_eq!(split_u64(&[]), None);
        assert_eq!(split_u64(&[253, 1, 2, 3]), None);
        assert_eq!(split_u16(&[252, 1, 0, 0, 0]), None);
        assert_eq!(split_u32(&[253, 1, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(split_u64(&[254]), None);
        // A non-canonical form is bincode's too: 5 as a u16.
        assert_eq!(split_u64(&[251, 5, 0, 9]), Some((5, &[9][..])));
    }
}
