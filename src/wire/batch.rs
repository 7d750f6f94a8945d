//! A batch of frame bodies taken from a stream at once.
//!
//! A connection that carries a stream of small messages reads hundreds of frames per
//! `read`. Handing each body over in a buffer of its own cost an allocation per frame,
//! sized for the whole body, and freed only after the batch was delivered: hundreds of
//! live blocks at a time, which puts the allocator on its slow paths (a sixth of a
//! receiving node's CPU per message in `perf`, `bench_tcp` one way). A [`FrameBatch`]
//! keeps the bodies where they arrived, one buffer for the whole read, and the node
//! decodes each from there: a message's allocation is then its payload's alone.
//!
//! The batches' buffers are kept for the next batches when they are dropped (a few per
//! thread: one turn of a node may hold a batch per read): a fresh buffer of a read's
//! size per batch would be a large allocation per read, and glibc's `malloc` answers
//! every large request by first consolidating its bins of small free blocks, the very
//! blocks the messages' payloads reuse (that was a tenth of the receiver's
//! instructions under `callgrind`).

use std::cell::RefCell;

/// The largest buffer kept for a next batch: a read's worth, and a little more.
const SPARE_BYTES_MAX: usize = 256 * 1024;

/// How many buffers a thread keeps.
const SPARES_MAX: usize = 4;

thread_local! {
    /// Buffers of batches dropped on this thread, empty, for the next ones.
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `bytes`: a spare one if there is one.
pub(super) fn buffer_for(bytes: usize) -> Vec<u8> {
    let mut buffer = SPARES
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    buffer.reserve(bytes);
    buffer
}

/// Complete frame bodies from one stream, in order, kept in one buffer as they came
/// off the wire (each behind its 4-byte big-endian length prefix).
///
/// Only [`FrameReader::next_frames`](super::FrameReader::next_frames) makes one: every
/// body it holds is complete and within the reader's limit.
///
/// ```
/// use hyperion::wire::{FrameReader, FrameWriter};
/// let mut writer = FrameWriter::new();
/// writer.push(b"one").unwrap();
/// writer.push(b"").unwrap();
/// writer.push(b"three").unwrap();
/// let mut wire = Vec::new();
/// writer.write_to(&mut wire).unwrap();
/// let mut reader = FrameReader::new();
/// reader.push(&wire[..wire.len() - 1]); // the last frame is not complete yet
/// let batch = reader.next_frames().unwrap().unwrap();
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.bodies().collect::<Vec<_>>(), [&b"one"[..], b""]);
/// reader.push(&wire[wire.len() - 1..]);
/// let rest = reader.next_frames().unwrap().unwrap();
/// assert_eq!(rest.bodies().collect::<Vec<_>>(), [&b"three"[..]]);
/// assert_eq!(reader.next_frames(), Ok(None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBatch {
    framed: Vec<u8>,
    count: usize,
}

impl FrameBatch {
    /// A batch of the `count` complete frames `framed` holds exactly (the reader's
    /// word for it).
    pub(super) fn new(framed: Vec<u8>, count: usize) -> FrameBatch {
        FrameBatch { framed, count }
    }

    /// How many bodies the batch holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no body.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bodies, in the order they arrived.
    pub fn bodies(&self) -> Bodies<'_> {
        Bodies { rest: &self.framed }
    }
}

impl Drop for FrameBatch {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.framed);
        if buffer.capacity() == 0 || buffer.capacity() > SPARE_BYTES_MAX {
            return;
        }
        buffer.clear();
        // A thread being torn down keeps nothing: the buffer is freed.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARES_MAX {
                spares.push(buffer);
            }
        });
    }
}

/// The bodies of a [`FrameBatch`], in order.
#[derive(Clone, Debug)]
pub struct Bodies<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Bodies<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (prefix, rest) = self
            .rest
            .split_first_chunk::<{ super::LENGTH_PREFIX_BYTES }>()?;
        let length = u32::from_be_bytes(*prefix) as usize;
        // The reader checked every frame complete; `get` keeps a short one from
        // panicking all the same.
        let body = rest.get(..length)?;
        self.rest = &rest[length..];
        Some(body)
    }
}
