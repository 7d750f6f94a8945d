//! Every decoder of bytes from the network, fed random bytes and mutations of valid
//! encodings on the stable toolchain (the fuzz targets in `fuzz/` do the same, longer,
//! on nightly). None may panic; each refuses with its typed error.
//!
//! The ignored test `write_fuzz_seed_corpus` writes the fuzzers' seed corpus from the
//! same valid encodings: `cargo test --test wire_decoders -- --ignored`.

use std::net::SocketAddr;

use hyperion::closure::Closure;
use hyperion::message::{Fingerprint, Message};
use hyperion::wire::handshake::{
    Cookie, Handshake, HandshakeError, Hello, Nonce, Proof, Role, Step, Verdict,
    HANDSHAKE_BYTES_MAX, PROTOCOL_VERSION,
};
use hyperion::wire::{
    decode_frame, decode_frame_limited, encode_frame, encode_frame_limited, write_frame, Control,
    Frame, FrameReader, WireError, FRAME_BYTES_MAX,
};
use hyperion::{BuildId, DiedReason, NodeId, ProcessId};
use proptest::prelude::*;

fn node(port: u16, incarnation: u64) -> NodeId {
    NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation,
    }
}

fn pid(port: u16, local: u64) -> ProcessId {
    ProcessId {
        node: node(port, 7),
        local,
    }
}

/// A few valid frames of every shape, with contents from `seed`.
fn valid_frames(seed: u64, payload: &[u8]) -> Vec<Frame> {
    let (a, b) = (pid(4000, seed), pid(5000, seed.wrapping_mul(31)));
    vec![
        Frame::Data {
            to: a,
            from: b,
            fingerprint: Fingerprint(seed),
            payload: payload.to_vec(),
        },
        Frame::NamedData {
            name: format!("service-{seed}"),
            from: b,
            fingerprint: Fingerprint::of::<String>(),
            payload: payload.to_vec(),
        },
        Frame::Control(Control::Spawn {
            request: seed,
            reply_to: a,
            closure: Closure {
                label: "square".into(),
                environment: payload.to_vec(),
            },
        }),
        Frame::Control(Control::SpawnReply {
            request: seed,
            reply_to: a,
            result: Err("no such label".into()),
        }),
        Frame::Control(Control::WhereIsReply {
            request: seed,
            reply_to: a,
            pid: Some(b),
        }),
        Frame::Control(Control::LinkSignal {
            linker: a,
            pid: b,
            reason: DiedReason::Exception("boom".into()),
        }),
        Frame::KeepAlive,
    ]
}

/// The fixed parties of the handshake fuzz target (`fuzz/fuzz_targets/handshake_decode.rs`
/// uses the same, so that seeds recorded here authenticate there).
mod fixed {
    use super::*;

    pub fn cookie() -> Cookie {
        Cookie::new("fuzz cookie").unwrap()
    }
    pub fn initiator() -> NodeId {
        node(1000, 1)
    }
    pub fn acceptor() -> NodeId {
        node(2000, 2)
    }
    pub const INITIATOR_NONCE: Nonce = Nonce([0x11; 32]);
    pub const ACCEPTOR_NONCE: Nonce = Nonce([0x22; 32]);
}

fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        write_frame(&mut out, message, FRAME_BYTES_MAX).unwrap();
    }
    out
}

/// What each side of a real exchange between the fixed parties sends, for `verdict`:
/// (initiator's messages, acceptor's messages).
fn recorded_exchange(verdict: Verdict) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut i = Handshake::initiate(fixed::initiator(), fixed::cookie(), fixed::INITIATOR_NONCE);
    let mut a = Handshake::accept(fixed::acceptor(), fixed::cookie(), fixed::ACCEPTOR_NONCE);
    let mut from_i = vec![i.hello().to_vec()];
    let mut from_a = vec![a.hello().to_vec()];
    a.receive(&from_i[0]).unwrap();
    let Ok(Step::Hello {
        reply: Some(proof), ..
    }) = i.receive(&from_a[0])
    else {
        panic!("the fixed parties agree")
    };
    from_i.push(proof);
    a.receive(&from_i[1]).unwrap();
    from_a.push(a.decide(verdict).unwrap());
    i.receive(&from_a[1]).unwrap();
    if verdict == Verdict::Alive {
        from_i.push(i.replace().unwrap());
        a.receive(&from_i[2]).unwrap();
    }
    (from_i, from_a)
}

/// Runs one side of a handshake between the fixed parties on a byte stream, as a
/// connection would: framed messages, handshake limit, stop at the first error.
/// Returns the error that ended it, if one did.
fn run_exchange(role: Role, verdict: Verdict, stream: &[u8]) -> Option<HandshakeError> {
    let mut handshake = match role {
        Role::Acceptor => {
            Handshake::accept(fixed::acceptor(), fixed::cookie(), fixed::ACCEPTOR_NONCE)
        }
        Role::Initiator => {
            Handshake::initiate(fixed::initiator(), fixed::cookie(), fixed::INITIATOR_NONCE)
        }
    };
    let mut reader = FrameReader::with_limit(HANDSHAKE_BYTES_MAX);
    reader.push(stream);
    loop {
        let body = match reader.next_frame() {
            Ok(Some(body)) => body,
            Ok(None) => return None,
            Err(err) => return Some(HandshakeError::Framing(err)),
        };
        match handshake.receive(&body) {
            Ok(Step::Proven { .. }) => {
                handshake.decide(verdict).unwrap();
            }
            Ok(Step::Verdict {
                verdict: Verdict::Alive,
                ..
            }) => {
                handshake.replace().unwrap();
            }
            Ok(_) => {}
            Err(err) => return Some(err),
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte (index taken modulo the length).
    Flip(usize, u8),
    /// Keep only a prefix (length modulo the length + 1).
    Truncate(usize),
    /// Insert a byte.
    Insert(usize, u8),
    /// Overwrite up to nine bytes with 0xff: varint lengths and counts become huge.
    Saturate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip(at, xor)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<usize>().prop_map(Mutation::Saturate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match *mutation {
            Mutation::Flip(at, xor) if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= xor;
            }
            Mutation::Truncate(length) => bytes.truncate(length % (bytes.len() + 1)),
            Mutation::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Saturate(at) if !bytes.is_empty() => {
                let at = at % bytes.len();
                let end = (at + 9).min(bytes.len());
                bytes[at..end].fill(0xff);
            }
            _ => {}
        }
    }
    bytes
}

fn is_decode_error(err: &WireError) -> bool {
    matches!(
        err,
        WireError::Malformed(_) | WireError::FrameTooLong { .. }
    )
}

/// Decodes `bytes` as every message type a receive might ask for; none may panic.
fn peek_as_everything(bytes: &[u8]) {
    fn peek<T: hyperion::Serializable>(bytes: &[u8]) {
        let mut message = Message::from_encoded(Fingerprint::of::<T>(), bytes.to_vec());
        let _ = message.peek::<T>();
    }
    peek::<String>(bytes);
    peek::<u64>(bytes);
    peek::<ProcessId>(bytes);
    peek::<Vec<(u64, String)>>(bytes);
    peek::<Option<Vec<u8>>>(bytes);
    peek::<DiedReason>(bytes);
    peek::<Frame>(bytes);
    peek::<Closure>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// decode_frame refuses random bytes with a decode error (or decodes them), never
    /// panics.
    #[test]
    fn decode_frame_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(err) = decode_frame(&bytes) {
            prop_assert!(is_decode_error(&err), "{err:?}");
        }
    }

    /// A valid frame decodes to itself; any mutation of it decodes to some frame or is
    /// refused with a decode error.
    #[test]
    fn decode_frame_survives_mutations_of_valid_frames(
        seed in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        which in 0..7usize,
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let frame = valid_frames(seed, &payload).swap_remove(which);
        let bytes = encode_frame(&frame).unwrap();
        prop_assert_eq!(decode_frame(&bytes), Ok(frame));
        if let Err(err) = decode_frame(&mutate(bytes, &mutations)) {
            prop_assert!(is_decode_error(&err), "{err:?}");
        }
    }

    /// Under any limit, a frame is encoded and decoded alike: a frame no longer than
    /// the limit round-trips, a longer one is refused by both sides with
    /// `FrameTooLong` naming its length and the limit.
    #[test]
    fn encoder_and_decoder_apply_one_limit(
        seed in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        which in 0..7usize,
        slack in -3i64..3,
    ) {
        let frame = valid_frames(seed, &payload).swap_remove(which);
        let bytes = encode_frame(&frame).unwrap();
        let limit = (bytes.len() as i64 + slack).max(0) as usize;
        let too_long = WireError::FrameTooLong { length: bytes.len() as u64, limit };
        if bytes.len() <= limit {
            prop_assert_eq!(encode_frame_limited(&frame, limit), Ok(bytes.clone()));
            prop_assert_eq!(decode_frame_limited(&bytes, limit), Ok(frame));
        } else {
            prop_assert_eq!(encode_frame_limited(&frame, limit), Err(too_long.clone()));
            prop_assert_eq!(decode_frame_limited(&bytes, limit), Err(too_long));
        }
    }

    /// However a valid stream is cut into chunks, the reader yields exactly its frames,
    /// in order.
    #[test]
    fn frame_reader_reassembles_any_chunking(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        cuts in proptest::collection::vec(1..64usize, 1..16),
    ) {
        let stream = framed(&payloads);
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + cut).min(stream.len());
            reader.push(&stream[at..end]);
            at = end;
            while let Some(frame) = reader.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        prop_assert_eq!(frames, payloads);
        prop_assert_eq!(reader.buffered_len(), 0);
    }

    /// Taken in batches (`next_frames`), random chunks of a random stream give the
    /// frames, and the refusal, that taking them one at a time gives.
    #[test]
    fn frame_batches_hold_the_frames_one_at_a_time_would(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10),
        tail in proptest::collection::vec(any::<u8>(), 0..12),
        cut in 1..64usize,
        limit in prop_oneof![Just(0usize), Just(8), Just(32), Just(FRAME_BYTES_MAX)],
    ) {
        // Small frames (some over the smaller limits), then random bytes.
        let mut stream = framed(&payloads);
        stream.extend_from_slice(&tail);
        let mut one_at_a_time = FrameReader::with_limit(limit);
        let mut batched = FrameReader::with_limit(limit);
        let (mut singles, mut from_batches) = (Vec::new(), Vec::new());
        let (mut refused_single, mut refused_batch) = (None, None);
        for chunk in stream.chunks(cut) {
            one_at_a_time.push(chunk);
            batched.push(chunk);
            while refused_single.is_none() {
                match one_at_a_time.next_frame() {
                    Ok(Some(frame)) => singles.push(frame),
                    Ok(None) => break,
                    Err(err) => refused_single = Some(err),
                }
            }
            while refused_batch.is_none() {
                match batched.next_frames() {
                    Ok(Some(batch)) => {
                        prop_assert_eq!(batch.bodies().count(), batch.len());
                        from_batches.extend(batch.bodies().map(<[u8]>::to_vec));
                    }
                    Ok(None) => break,
                    Err(err) => refused_batch = Some(err),
                }
            }
        }
        prop_assert_eq!(from_batches, singles);
        prop_assert_eq!(refused_batch, refused_single);
        prop_assert_eq!(batched.buffered_len(), one_at_a_time.buffered_len());
    }

    /// Fed random chunks, the reader never yields a frame over its limit, never holds
    /// more than it was given, and once it refuses a length it keeps refusing.
    #[test]
    fn frame_reader_never_panics_on_random_chunks(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..20),
        limit in prop_oneof![Just(0usize), Just(1), Just(64), Just(FRAME_BYTES_MAX)],
    ) {
        let mut reader = FrameReader::with_limit(limit);
        let mut pushed = 0;
        let mut refused = false;
        for chunk in &chunks {
            reader.push(chunk);
            pushed += chunk.len();
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => {
                        prop_assert!(!refused);
                        prop_assert!(frame.len() <= limit);
                    }
                    Ok(None) => break,
                    Err(err) => {
                        prop_assert!(matches!(err, WireError::FrameTooLong { .. }), "{err:?}");
                        refused = true;
                        break;
                    }
                }
            }
            prop_assert!(reader.buffered_len() <= pushed);
        }
    }

    /// Hello and proof decoders refuse random bytes with a typed error, never panic.
    #[test]
    fn handshake_decoders_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(err) = Hello::decode(&bytes) {
            prop_assert!(!err.to_string().is_empty());
        }
        if let Err(err) = Proof::decode(&bytes) {
            prop_assert!(matches!(err, HandshakeError::Malformed(_)), "{err:?}");
        }
    }

    /// A recorded exchange replayed to the same party succeeds; any mutation of it is
    /// either still a valid exchange or refused with a typed error, never a panic.
    #[test]
    fn handshake_survives_mutations_of_a_real_exchange(
        verdict in prop_oneof![Just(Verdict::Accept), Just(Verdict::Decline), Just(Verdict::Alive)],
        acceptor_side in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (from_i, from_a) = recorded_exchange(verdict);
        let (role, incoming) = if acceptor_side {
            (Role::Acceptor, framed(&from_i))
        } else {
            (Role::Initiator, framed(&from_a))
        };
        prop_assert_eq!(run_exchange(role, verdict, &incoming), None);
        let mutated = mutate(incoming.clone(), &mutations);
        if let Some(err) = run_exchange(role, verdict, &mutated) {
            prop_assert!(!err.to_string().is_empty());
        }
    }

    /// A message body decoded as any type never panics, whatever the bytes.
    #[test]
    fn message_peek_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        peek_as_everything(&bytes);
    }

    /// Mutated encodings of real values decode as some value or are refused.
    #[test]
    fn message_peek_survives_mutations_of_valid_values(
        seed in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..32),
        which in 0..7usize,
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let frame = valid_frames(seed, &payload).swap_remove(which);
        let (fingerprint, bytes) = Message::new(frame.clone()).encode().unwrap();
        let mut intact = Message::from_encoded(fingerprint, bytes.clone());
        prop_assert_eq!(intact.peek::<Frame>(), Some(&frame));
        peek_as_everything(&mutate(bytes, &mutations));
    }
}

#[test]
fn a_huge_varint_length_in_a_frame_is_refused_without_allocating() {
    // NamedData (variant 2) whose name claims u64::MAX bytes.
    let mut bytes = vec![2, 0xff];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(decode_frame(&bytes), Err(WireError::Malformed(_))));
}

#[test]
fn a_hello_of_another_version_is_named_even_when_mutated_after_the_version() {
    let mut hello = Hello {
        version: PROTOCOL_VERSION + 3,
        role: Role::Initiator,
        node: node(1, 1),
        nonce: Nonce([0; 32]),

        build: BuildId::fixed(),
    }
    .encode();
    hello.truncate(14);
    assert_eq!(
        Hello::decode(&hello),
        Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION + 3
        })
    );
}

/// Writes the fuzz targets' seed corpus: valid encodings for each target, in
/// `fuzz/corpus/<target>/seed-<n>`. Run after a change of the wire format:
/// `cargo test --test wire_decoders -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore = "writes files under fuzz/corpus; run by hand after a wire format change"]
fn write_fuzz_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, seeds: Vec<Vec<u8>>| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n}")), seed).unwrap();
        }
    };
    let frames: Vec<Vec<u8>> = [0u64, 1, u64::MAX]
        .iter()
        .flat_map(|seed| valid_frames(*seed, &seed.to_le_bytes()))
        .map(|frame| encode_frame(&frame).unwrap())
        .collect();
    write("frame_decode", frames.clone());

    // framing: one byte for the chunk length, one for the limit, then the stream.
    let mut framing = Vec::new();
    for (n, chunk) in [1u8, 3, 64, 255].iter().enumerate() {
        let mut seed = vec![*chunk, n as u8];
        seed.extend(framed(&frames[n * 3..n * 3 + 3]));
        framing.push(seed);
    }
    framing.push(vec![7, 0, 0xff, 0xff, 0xff, 0xff]);
    write("framing", framing);

    // handshake_decode: a mode byte (0 hello, 1 proof, 2 acceptor, 3 initiator; the
    // verdict an acceptor gives is mode / 4), then the bytes.
    let mut handshake = Vec::new();
    for (index, verdict) in [Verdict::Accept, Verdict::Decline, Verdict::Alive]
        .into_iter()
        .enumerate()
    {
        let (from_i, from_a) = recorded_exchange(verdict);
        let mode = 4 * index as u8;
        handshake.push([vec![mode], from_i[0].clone()].concat());
        handshake.push([vec![mode + 1], from_a[1].clone()].concat());
        handshake.push([vec![mode + 2], framed(&from_i)].concat());
        handshake.push([vec![mode + 3], framed(&from_a)].concat());
    }
    write("handshake_decode", handshake);

    let messages: Vec<Vec<u8>> = valid_frames(5, b"payload")
        .into_iter()
        .map(|frame| Message::new(frame).encode().unwrap().1)
        .chain([
            Message::new("a string".to_string()).encode().unwrap().1,
            Message::new(vec![(1u64, "one".to_string())])
                .encode()
                .unwrap()
                .1,
            Message::new(pid(1, 2)).encode().unwrap().1,
        ])
        .collect();
    write("message_decode", messages);
}
