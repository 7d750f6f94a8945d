//! Feeds arbitrary bytes to the message envelope's decoders: none may panic, and none
//! may allocate beyond the message size limit.
#![no_main]

use hyperion::message::{Fingerprint, Message};
use hyperion::ProcessId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut as_string = Message::from_encoded(Fingerprint::of::<String>(), data.to_vec());
    let _ = as_string.peek::<String>();
    let mut as_pid = Message::from_encoded(Fingerprint::of::<ProcessId>(), data.to_vec());
    let _ = as_pid.peek::<ProcessId>();
    let mut as_vec = Message::from_encoded(Fingerprint::of::<Vec<(u64, String)>>(), data.to_vec());
    let _ = as_vec.peek::<Vec<(u64, String)>>();
});
