//! Feeds an arbitrary byte stream, cut into chunks, to the length-prefix reader.
//!
//! Input: one byte for the chunk length (0 means 1), one byte choosing the frame limit,
//! then the stream. The reader must never panic nor return a frame over its limit, must
//! keep refusing once it refused, and must yield the same frames (and the same refusal)
//! whether the stream arrives in chunks or at once, and whether they are taken one at
//! a time or in batches.
#![no_main]

use hyperion::wire::{FrameReader, WireError, FRAME_BYTES_MAX};
use libfuzzer_sys::fuzz_target;

/// The frames the reader yields for `pieces`, and whether it ended refusing the stream.
fn read_all<'a>(limit: usize, pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, bool) {
    let mut reader = FrameReader::with_limit(limit);
    let mut frames = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= limit, "a frame over the limit");
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(WireError::FrameTooLong {
                    length,
                    limit: refused_at,
                }) => {
                    assert!(length > refused_at as u64);
                    assert!(reader.next_frame().is_err(), "a refusal must stick");
                    return (frames, true);
                }
                Err(err) => panic!("the reader returned {err}"),
            }
        }
    }
    (frames, false)
}

/// [`read_all`], taking every complete frame at once (`next_frames`).
fn read_all_batched<'a>(
    limit: usize,
    pieces: impl Iterator<Item = &'a [u8]>,
) -> (Vec<Vec<u8>>, bool) {
    let mut reader = FrameReader::with_limit(limit);
    let mut frames = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next_frames() {
                Ok(Some(batch)) => {
                    assert!(!batch.is_empty(), "an empty batch");
                    assert_eq!(batch.bodies().count(), batch.len());
                    for body in batch.bodies() {
                        assert!(body.len() <= limit, "a frame over the limit");
                        frames.push(body.to_vec());
                    }
                }
                Ok(None) => break,
                Err(WireError::FrameTooLong { .. }) => {
                    assert!(reader.next_frames().is_err(), "a refusal must stick");
                    return (frames, true);
                }
                Err(err) => panic!("the reader returned {err}"),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let [chunk, limit, stream @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let limit = match limit % 4 {
        0 => 0,
        1 => 16,
        2 => 4096,
        _ => FRAME_BYTES_MAX,
    };
    let chunked = read_all(limit, stream.chunks(chunk));
    let whole = read_all(limit, std::iter::once(stream));
    assert_eq!(chunked, whole, "chunking changed what was read");
    let batched = read_all_batched(limit, stream.chunks(chunk));
    assert_eq!(batched, whole, "batches changed what was read");
});
