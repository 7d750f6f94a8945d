//! Feeds arbitrary bytes to the handshake: the hello and proof decoders, and both sides
//! of a whole exchange run on a framed byte stream as a connection runs it.
//!
//! Input: a mode byte, then the bytes. Mode % 4: 0 decodes a hello, 1 a proof, 2 runs the
//! acceptor, 3 the initiator; (mode / 4) % 3 picks the acceptor's verdict. The parties
//! are fixed (the seed corpus, written by `tests/wire_decoders.rs`, records real
//! exchanges between the same parties, so mutations start from authenticated runs).
//! Nothing may panic.
#![no_main]

use std::net::SocketAddr;

use hyperion::wire::handshake::{
    Cookie, Handshake, Hello, Nonce, Proof, Step, Verdict, HANDSHAKE_BYTES_MAX,
};
use hyperion::wire::FrameReader;
use hyperion::NodeId;
use libfuzzer_sys::fuzz_target;

fn node(port: u16, incarnation: u64) -> NodeId {
    NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation,
    }
}

fn run(mut handshake: Handshake, verdict: Verdict, stream: &[u8]) {
    let mut reader = FrameReader::with_limit(HANDSHAKE_BYTES_MAX);
    reader.push(stream);
    while let Ok(Some(body)) = reader.next_frame() {
        match handshake.receive(&body) {
            Ok(Step::Proven { .. }) => {
                handshake
                    .decide(verdict)
                    .expect("deciding right after Proven");
            }
            Ok(Step::Verdict {
                verdict: Verdict::Alive,
                ..
            }) => {
                handshake.replace().expect("replacing right after Alive");
            }
            Ok(_) => {}
            Err(err) => {
                assert!(!err.to_string().is_empty());
                assert!(handshake.receive(&body).is_err(), "a failure must stick");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, bytes)) = data.split_first() else {
        return;
    };
    let verdict = match (mode / 4) % 3 {
        0 => Verdict::Accept,
        1 => Verdict::Decline,
        _ => Verdict::Alive,
    };
    let cookie = Cookie::new("fuzz cookie").expect("a valid cookie");
    match mode % 4 {
        0 => {
            if let Ok(hello) = Hello::decode(bytes) {
                assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
            }
        }
        1 => {
            if let Ok(proof) = Proof::decode(bytes) {
                assert_eq!(proof.encode(), bytes);
            }
        }
        2 => run(
            Handshake::accept(node(2000, 2), cookie, Nonce([0x22; 32])),
            verdict,
            bytes,
        ),
        _ => run(
            Handshake::initiate(node(1000, 1), cookie, Nonce([0x11; 32])),
            verdict,
            bytes,
        ),
    }
});
