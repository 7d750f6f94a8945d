//! Feeds arbitrary bytes to the frame body decoder: it must refuse them with a decode
//! error or decode a frame that re-encodes to bytes decoding to the same frame; never
//! panic, never allocate beyond the frame size limit.
#![no_main]

use hyperion::wire::{decode_frame, encode_frame, WireError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_frame(data) {
        Ok(frame) => {
            let bytes = encode_frame(&frame).expect("a decoded frame encodes");
            assert_eq!(decode_frame(&bytes), Ok(frame));
        }
        Err(err @ WireError::Encode(_)) => panic!("a decode reported an encode error: {err}"),
        Err(_) => {}
    }
});
