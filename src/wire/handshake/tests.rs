//! The handshake state machine's tests: every exchange, every refusal.

use std::net::SocketAddr;

use super::*;

fn id(port: u16, incarnation: u64) -> NodeId {
    NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation,
    }
}

fn cookie() -> Cookie {
    Cookie::new("sesame").unwrap()
}

fn pair(initiator_cookie: &str, acceptor_cookie: &str) -> (Handshake, Handshake) {
    (
        Handshake::initiate(
            id(1000, 1),
            Cookie::new(initiator_cookie).unwrap(),
            Nonce([0x11; 32]),
        ),
        Handshake::accept(
            id(2000, 2),
            Cookie::new(acceptor_cookie).unwrap(),
            Nonce([0x22; 32]),
        ),
    )
}

/// Runs hellos and the initiator's proof; returns the acceptor's answer to the proof.
fn up_to_proof(i: &mut Handshake, a: &mut Handshake) -> Result<Step, HandshakeError> {
    let i_hello = i.hello().to_vec();
    let a_hello = a.hello().to_vec();
    assert!(matches!(
        a.receive(&i_hello),
        Ok(Step::Hello { reply: None, .. })
    ));
    let Ok(Step::Hello {
        peer,
        reply: Some(proof),
    }) = i.receive(&a_hello)
    else {
        panic!("the initiator accepts the acceptor's hello");
    };
    assert_eq!(peer, id(2000, 2));
    a.receive(&proof)
}

#[test]
fn the_right_cookie_completes_with_each_verdict() {
    for verdict in [Verdict::Accept, Verdict::Decline, Verdict::Alive] {
        let (mut i, mut a) = pair("sesame", "sesame");
        assert_eq!(
            up_to_proof(&mut i, &mut a),
            Ok(Step::Proven { peer: id(1000, 1) })
        );
        let message = a.decide(verdict).unwrap();
        assert_eq!(
            i.receive(&message),
            Ok(Step::Verdict {
                peer: id(2000, 2),
                verdict
            })
        );
        if verdict == Verdict::Alive {
            let replace = i.replace().unwrap();
            assert_eq!(a.receive(&replace), Ok(Step::Replace { peer: id(1000, 1) }));
        }
        assert!(i.is_done() && a.is_done());
    }
}

#[test]
fn the_acceptor_refuses_an_initiator_with_the_wrong_cookie() {
    let (mut i, mut a) = pair("guess", "sesame");
    assert_eq!(
        up_to_proof(&mut i, &mut a),
        Err(HandshakeError::WrongCookie {
            claimed: id(1000, 1)
        })
    );
    // Nothing more is accepted from it, and it gets no verdict.
    assert!(a.decide(Verdict::Accept).is_err());
}

#[test]
fn the_initiator_refuses_a_verdict_made_with_the_wrong_cookie() {
    // A forged acceptor: it skips checking the proof and answers with its own cookie.
    let (mut i, _) = pair("sesame", "sesame");
    let mut forged = Handshake::accept(id(2000, 2), Cookie::new("guess").unwrap(), Nonce([3; 32]));
    forged.receive(i.hello()).unwrap();
    let Ok(Step::Hello {
        reply: Some(proof), ..
    }) = i.receive(forged.hello())
    else {
        panic!()
    };
    assert!(matches!(
        forged.receive(&proof),
        Err(HandshakeError::WrongCookie { .. })
    ));
    let fake_verdict = Proof {
        kind: ProofKind::Accept,
        mac: [0; MAC_BYTES],
    }
    .encode();
    assert_eq!(
        i.receive(&fake_verdict),
        Err(HandshakeError::WrongCookie {
            claimed: id(2000, 2)
        })
    );
}

#[test]
fn a_version_mismatch_names_both_versions() {
    let (mut i, _) = pair("sesame", "sesame");
    let hello = Hello {
        version: 7,
        role: Role::Acceptor,
        node: id(2000, 2),
        nonce: Nonce([5; 32]),

        build: BuildId::fixed(),
    };
    let err = i.receive(&hello.encode()).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: 7
        }
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {PROTOCOL_VERSION}")) && text.contains("version 7"),
        "{text}"
    );
}

#[test]
fn a_future_version_with_another_layout_is_still_named() {
    let mut bytes = MAGIC.to_vec();
    let future = PROTOCOL_VERSION + 1;
    bytes.extend_from_slice(&future.to_be_bytes());
    bytes.extend_from_slice(b"whatever the next version says next");
    assert_eq!(
        Hello::decode(&bytes),
        Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: future
        })
    );
}

#[test]
fn wrong_magic_and_garbage_are_refused() {
    let (mut i, mut a) = pair("sesame", "sesame");
    assert!(matches!(
        a.receive(b"GET / HTTP/1.1\r\n"),
        Err(HandshakeError::BadMagic { .. })
    ));
    assert!(matches!(
        i.receive(b""),
        Err(HandshakeError::BadMagic { .. })
    ));
    let mut truncated = i.hello().to_vec();
    truncated.pop();
    assert!(matches!(
        Hello::decode(&truncated),
        Err(HandshakeError::Malformed(_))
    ));
    let mut trailing = a.hello().to_vec();
    trailing.push(0);
    assert!(matches!(
        Hello::decode(&trailing),
        Err(HandshakeError::Malformed(_))
    ));
}

#[test]
fn a_reflected_hello_is_refused() {
    let (mut i, mut a) = pair("sesame", "sesame");
    // The acceptor's own hello sent back to it: same role, same id, same nonce.
    let own = a.hello().to_vec();
    assert!(matches!(a.receive(&own), Err(HandshakeError::Reflected(_))));
    // An initiator hello claiming the receiver's id.
    let claiming_self = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Acceptor,
        node: id(1000, 1),
        nonce: Nonce([9; 32]),

        build: BuildId::fixed(),
    };
    assert!(matches!(
        i.receive(&claiming_self.encode()),
        Err(HandshakeError::Reflected(_))
    ));
}

#[test]
fn a_proof_recorded_on_one_connection_is_refused_on_another() {
    let (mut i, mut a) = pair("sesame", "sesame");
    a.receive(i.hello()).unwrap();
    let Ok(Step::Hello {
        reply: Some(recorded),
        ..
    }) = i.receive(a.hello())
    else {
        panic!("the initiator accepts the acceptor's hello");
    };
    // An eavesdropper replays the initiator's hello and proof to a new connection,
    // where the acceptor chose a fresh nonce.
    let mut a2 = Handshake::accept(
        id(2000, 2),
        Cookie::new("sesame").unwrap(),
        Nonce([0x33; 32]),
    );
    a2.receive(i.hello()).unwrap();
    assert_eq!(
        a2.receive(&recorded),
        Err(HandshakeError::WrongCookie {
            claimed: id(1000, 1)
        })
    );
}

#[test]
fn an_acceptor_verdict_is_not_a_valid_initiator_proof() {
    // Reflection across roles: a MAC the acceptor made cannot pass as the initiator's.
    let (mut i, mut a) = pair("sesame", "sesame");
    up_to_proof(&mut i, &mut a).unwrap();
    let verdict = Proof::decode(&a.decide(Verdict::Accept).unwrap()).unwrap();
    let relabelled = Proof {
        kind: ProofKind::Initiator,
        mac: verdict.mac,
    };
    let (mut i2, mut a2) = pair("sesame", "sesame");
    a2.receive(i2.hello()).unwrap();
    i2.receive(a2.hello()).unwrap();
    assert!(matches!(
        a2.receive(&relabelled.encode()),
        Err(HandshakeError::WrongCookie { .. })
    ));
}

#[test]
fn messages_out_of_order_are_refused() {
    let (mut i, mut a) = pair("sesame", "sesame");
    let proof = Proof {
        kind: ProofKind::Initiator,
        mac: [0; MAC_BYTES],
    };
    // A proof where a hello is expected does not parse as a hello.
    assert!(a.receive(&proof.encode()).is_err());
    assert!(i.replace().is_err());
    let (mut i, mut a) = pair("sesame", "sesame");
    a.receive(i.hello()).unwrap();
    i.receive(a.hello()).unwrap();
    let second_hello = i.hello().to_vec();
    assert!(matches!(
        a.receive(&second_hello),
        Err(HandshakeError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_every_message_is_a_typed_error() {
    let (mut i, mut a) = pair("sesame", "sesame");
    let hello = i.hello().to_vec();
    for cut in 0..hello.len() {
        assert!(Hello::decode(&hello[..cut]).is_err());
    }
    let proof = {
        a.receive(&hello).unwrap();
        match i.receive(a.hello()) {
            Ok(Step::Hello {
                reply: Some(proof), ..
            }) => proof,
            other => panic!("{other:?}"),
        }
    };
    for cut in 0..proof.len() {
        assert!(Proof::decode(&proof[..cut]).is_err());
    }
}

#[test]
fn builds_that_are_not_compatible_refuse_each_other_at_the_hello() {
    let i = Handshake::initiate(id(1000, 1), cookie(), Nonce([1; 32]))
        .with_build(BuildId::named("aaaa"));
    let a =
        Handshake::accept(id(2000, 2), cookie(), Nonce([2; 32])).with_build(BuildId::named("bbbb"));
    // Each side refuses the other's hello, naming both builds.
    let (mut i, mut a) = (i, a);
    let (i_hello, a_hello) = (i.hello().to_vec(), a.hello().to_vec());
    for (err, ours, theirs) in [
        (a.receive(&i_hello).unwrap_err(), "bbbb", "aaaa"),
        (i.receive(&a_hello).unwrap_err(), "aaaa", "bbbb"),
    ] {
        let HandshakeError::BuildMismatch {
            ours: mine,
            theirs: peer,
            ..
        } = &err
        else {
            panic!("not a build mismatch: {err}");
        };
        assert_eq!((mine.hash.as_str(), peer.hash.as_str()), (ours, theirs));
        let text = err.to_string();
        assert!(text.contains(&format!("this node: build {ours}")), "{text}");
        assert!(
            text.contains(&format!("the peer: build {theirs}")),
            "{text}"
        );
    }
}

#[test]
fn builds_declaring_one_protocol_version_complete_the_handshake() {
    let mut i = Handshake::initiate(id(1000, 1), cookie(), Nonce([1; 32]))
        .with_build(BuildId::named("aaaa").with_protocol(4));
    let mut a = Handshake::accept(id(2000, 2), cookie(), Nonce([2; 32]))
        .with_build(BuildId::named("bbbb").with_protocol(4));
    assert!(a.receive(i.hello()).is_ok());
    let Ok(Step::Hello {
        reply: Some(proof), ..
    }) = i.receive(a.hello())
    else {
        panic!("the initiator refused a build of the same protocol version");
    };
    assert!(matches!(a.receive(&proof), Ok(Step::Proven { .. })));
}

#[test]
fn a_long_build_name_is_compared_in_its_wire_form() {
    let long = BuildId::named(&"z".repeat(300));
    let i = Handshake::initiate(id(1000, 1), cookie(), Nonce([1; 32])).with_build(long.clone());
    let mut a = Handshake::accept(id(2000, 2), cookie(), Nonce([2; 32])).with_build(long);
    assert!(a.receive(i.hello()).is_ok());
}
