//! Everything that crosses the network, as bytes. Nothing else in hyperion touches raw
//! network bytes.
//!
//! - [`Frame`]: what nodes say to each other (data messages, control, keep-alives),
//!   encoded as a frame *body* with bincode 2 under a size limit;
//! - every decode returns a typed [`WireError`], never panics, and never allocates more
//!   than the limit allows.

mod frame;

pub use frame::{decode_frame, encode_frame, Control, Frame, WireError, FRAME_BYTES_MAX};
