//! Everything that crosses the network, as bytes. Nothing else in hyperion touches raw
//! network bytes.
//!
//! - [`Frame`]: what nodes say to each other (data messages, control, keep-alives),
//!   encoded as a frame *body* with bincode 2 under a size limit;
//! - [`framing`]: how bodies travel on a byte stream (a 4-byte big-endian length prefix,
//!   checked against a limit before anything is allocated);
//! - [`handshake`]: the first exchange on every connection, which names both nodes and
//!   proves both hold the cluster's cookie without sending it;
//! - every decode returns a typed error ([`WireError`], [`HandshakeError`]), never
//!   panics, and never allocates more than the limit allows.

mod batch;
mod frame;
pub mod framing;
pub mod handshake;

pub use batch::{Bodies, FrameBatch};
pub(crate) use frame::FrameDecoder;
pub use frame::{
    decode_frame, decode_frame_limited, decode_frame_owned, encode_frame, encode_frame_into,
    encode_frame_limited, Control, Frame, WireError, FRAME_BYTES_MAX,
};
pub(crate) use frame::{encode_data_frame_with, LastDataHeader};
pub use framing::{write_frame, FrameReader, FrameWriter, LENGTH_PREFIX_BYTES};
pub use handshake::{Cookie, Handshake, HandshakeError};
