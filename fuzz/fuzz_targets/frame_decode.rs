//! Feeds arbitrary bytes to the frame body decoder: it must refuse them with a decode
//! error or decode a frame that re-encodes to bytes decoding to the same frame; never
//! panic, never allocate beyond the frame size limit.
#![no_main]

use hyperion::wire::{
    decode_frame, decode_frame_limited, encode_frame, encode_frame_limited, WireError,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_frame(data) {
        Ok(frame) => {
            let bytes = encode_frame(&frame).expect("a decoded frame encodes");
            assert_eq!(decode_frame(&bytes), Ok(frame.clone()));
            // One limit on both sides: under a limit one byte short, both refuse it.
            if let Some(limit) = bytes.len().checked_sub(1) {
                let too_long = WireError::FrameTooLong {
                    length: bytes.len() as u64,
                    limit,
                };
                assert_eq!(encode_frame_limited(&frame, limit), Err(too_long.clone()));
                assert_eq!(decode_frame_limited(&bytes, limit), Err(too_long));
            }
        }
        Err(err @ WireError::Encode(_)) => panic!("a decode reported an encode error: {err}"),
        Err(_) => {}
    }
});
