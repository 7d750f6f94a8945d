//! Length-prefixed framing of a byte stream.
//!
//! On a stream (a TCP connection), every frame body travels as a 4-byte length prefix,
//! an unsigned 32-bit integer in **big-endian** (network) byte order counting the body's
//! bytes, followed by the body itself. A zero-length body is allowed.
//!
//! [`FrameReader`] accumulates bytes as they come off a socket and yields complete
//! bodies. It checks each announced length against its limit *before* it allocates
//! anything for that frame, and then grows its buffer only as the body's bytes actually
//! arrive: a peer announcing a huge frame gets [`WireError::FrameTooLong`], and a peer
//! announcing a large one but sending little costs little.
//!
//! [`FrameWriter`] (or [`write_frame`] on a plain buffer) appends prefix and body to one
//! contiguous outgoing buffer, so that many small frames leave in one `write`.
//!
//! ```
//! use hyperion::wire::{FrameReader, FrameWriter};
//!
//! let mut writer = FrameWriter::new();
//! writer.push(b"hello").unwrap();
//! writer.push(b"").unwrap();
//! let mut wire = Vec::new();
//! writer.write_to(&mut wire).unwrap();
//!
//! let mut reader = FrameReader::new();
//! reader.push(&wire[..3]); // bytes arrive in any pieces
//! assert_eq!(reader.next_frame(), Ok(None));
//! reader.push(&wire[3..]);
//! assert_eq!(reader.next_frame(), Ok(Some(b"hello".to_vec())));
//! assert_eq!(reader.next_frame(), Ok(Some(Vec::new())));
//! assert_eq!(reader.next_frame(), Ok(None));
//! ```

use std::io::{self, Read, Write};

use super::batch::FrameBatch;
use super::frame::{WireError, FRAME_BYTES_MAX};

/// Bytes in a length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Bytes a [`FrameReader`] asks the socket for in one `read`, at least.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The largest limit a length prefix can express.
const PREFIX_LIMIT_MAX: usize = u32::MAX as usize;

/// Appends one frame (length prefix, then `body`) to `out`.
///
/// A body longer than `frame_bytes_max` (or than a 32-bit prefix can express) is
/// refused with [`WireError::FrameTooLong`] and nothing is appended: the peer would
/// refuse it anyway.
///
/// ```
/// use hyperion::wire::{write_frame, FRAME_BYTES_MAX};
/// let mut out = Vec::new();
/// write_frame(&mut out, b"abc", FRAME_BYTES_MAX).unwrap();
/// assert_eq!(out, [0, 0, 0, 3, b'a', b'b', b'c']);
/// ```
pub fn write_frame(
    out: &mut Vec<u8>,
    body: &[u8],
    frame_bytes_max: usize,
) -> Result<(), WireError> {
    let limit = frame_bytes_max.min(PREFIX_LIMIT_MAX);
    let length = u32::try_from(body.len())
        .ok()
        .filter(|length| *length as usize <= limit)
        .ok_or(WireError::FrameTooLong {
            length: body.len() as u64,
            limit,
        })?;
    out.reserve(LENGTH_PREFIX_BYTES + body.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Reassembles frame bodies from a byte stream.
///
/// Feed it bytes with [`push`](FrameReader::push) or let it read from a socket with
/// [`read_from`](FrameReader::read_from), then take complete bodies with
/// [`next_frame`](FrameReader::next_frame). Its buffer holds at most one incomplete
/// frame plus one read's worth of bytes beyond it.
///
/// After [`next_frame`](FrameReader::next_frame) returned an error the stream is out of
/// step and cannot be resynchronised: the caller drops the connection. Further calls
/// return the same error.
#[derive(Debug)]
pub struct FrameReader {
    /// `buffer[start..end]` holds the bytes received and not yet returned.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    frame_bytes_max: usize,
    failed: Option<WireError>,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader that refuses frames longer than [`FRAME_BYTES_MAX`].
    pub fn new() -> FrameReader {
        FrameReader::with_limit(FRAME_BYTES_MAX)
    }

    /// A reader that refuses frames longer than `frame_bytes_max`.
    ///
    /// ```
    /// use hyperion::wire::{FrameReader, WireError};
    /// let mut reader = FrameReader::with_limit(2);
    /// reader.push(&[0, 0, 0, 3]);
    /// assert!(matches!(reader.next_frame(), Err(WireError::FrameTooLong { length: 3, limit: 2 })));
    /// ```
    pub fn with_limit(frame_bytes_max: usize) -> FrameReader {
        FrameReader {
            buffer: Vec::new(),
            start: 0,
            end: 0,
            frame_bytes_max: frame_bytes_max.min(PREFIX_LIMIT_MAX),
            failed: None,
        }
    }

    /// The longest body this reader accepts.
    pub fn limit(&self) -> usize {
        self.frame_bytes_max
    }

    /// Changes the longest body accepted from the next frame on (a connection accepts
    /// only small frames until its handshake is done).
    pub fn set_limit(&mut self, frame_bytes_max: usize) {
        self.frame_bytes_max = frame_bytes_max.min(PREFIX_LIMIT_MAX);
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered_len(&self) -> usize {
        self.end - self.start
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Reads once from `source` into the buffer (at least [`READ_CHUNK_BYTES`] of room)
    /// and returns what `read` returned: `Ok(0)` is the end of the stream. `WouldBlock`
    /// and the other errors are the source's.
    pub fn read_from<R: Read + ?Sized>(&mut self, source: &mut R) -> io::Result<usize> {
        self.read_at_most(source, READ_CHUNK_BYTES)
    }

    /// Reads once from `source`, at most `bytes_max` bytes (at least one): for a
    /// connection that should send little, such as one in its handshake, whose buffer
    /// then stays small.
    pub fn read_at_most<R: Read + ?Sized>(
        &mut self,
        source: &mut R,
        bytes_max: usize,
    ) -> io::Result<usize> {
        let bytes_max = bytes_max.max(1);
        let read = source.read(&mut self.spare(bytes_max)[..bytes_max])?;
        self.end += read;
        Ok(read)
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let available = &self.buffer[self.start..self.end];
        let Some(prefix) = available.first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*prefix) as usize;
        if length > self.frame_bytes_max {
            let err = WireError::FrameTooLong {
                length: length as u64,
                limit: self.frame_bytes_max,
            };
            self.failed = Some(err.clone());
            return Err(err);
        }
        let Some(body) = available[LENGTH_PREFIX_BYTES..].get(..length) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.start += LENGTH_PREFIX_BYTES + length;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(body))
    }

    /// Every complete frame buffered, at once, in one buffer; `Ok(None)` if more bytes
    /// are needed for the first. Frames before one whose length is refused are returned
    /// first, and the error at the next call (as [`next_frame`](Self::next_frame)
    /// would, one frame at a time).
    pub fn next_frames(&mut self) -> Result<Option<FrameBatch>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let available = &self.buffer[self.start..self.end];
        let mut cut = 0;
        let mut count = 0;
        while let Some(prefix) = available[cut..].first_chunk::<LENGTH_PREFIX_BYTES>() {
            let length = u32::from_be_bytes(*prefix) as usize;
            if length > self.frame_bytes_max {
                if count > 0 {
                    break;
                }
                let err = WireError::FrameTooLong {
                    length: length as u64,
                    limit: self.frame_bytes_max,
                };
                self.failed = Some(err.clone());
                return Err(err);
            }
            let next = cut + LENGTH_PREFIX_BYTES + length;
            if next > available.len() {
                break;
            }
            cut = next;
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let mut framed = super::batch::buffer_for(cut);
        framed.extend_from_slice(&available[..cut]);
        let batch = FrameBatch::new(framed, count);
        self.start += cut;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(batch))
    }

    /// At least `wanted` bytes of writable room after the buffered bytes.
    ///
    /// Compacts first (the consumed prefix is reused), and grows only as far as needed,
    /// so the buffer stays within one incomplete frame plus one read.
    fn spare(&mut self, wanted: usize) -> &mut [u8] {
        if self.buffer.len() - self.end < wanted && self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let needed = self.end + wanted;
        if self.buffer.len() < needed {
            let grown = needed.max(self.buffer.len().saturating_mul(2));
            self.buffer.resize(grown, 0);
        }
        &mut self.buffer[self.end..]
    }
}

/// An outgoing buffer of frames for one stream.
///
/// [`push`](FrameWriter::push) appends a frame; [`write_to`](FrameWriter::write_to)
/// writes as much as the destination takes, in as few `write` calls as it can (one
/// call carries every frame queued so far), and keeps the rest for later.
///
/// Two buffers, so that queued bytes are never moved: the destination takes from the
/// front one while new frames go to the back one, and they trade places when the front
/// one is written out. (One buffer, compacted after a partial write, moved about one
/// byte for every byte written when a producer kept it full: a copy of every message
/// more, over megabytes that no longer fit a cache.)
#[derive(Debug)]
pub struct FrameWriter {
    /// Bytes being written: `front[written..]` is not written yet.
    front: Vec<u8>,
    written: usize,
    /// Frames queued after the front's, appended here.
    buffer: Vec<u8>,
    frame_bytes_max: usize,
}

impl Default for FrameWriter {
    fn default() -> Self {
        FrameWriter::new()
    }
}

impl FrameWriter {
    /// A writer that refuses bodies longer than [`FRAME_BYTES_MAX`].
    pub fn new() -> FrameWriter {
        FrameWriter::with_limit(FRAME_BYTES_MAX)
    }

    /// A writer that refuses bodies longer than `frame_bytes_max`.
    ///
    /// ```
    /// use hyperion::wire::{FrameWriter, WireError};
    /// let mut writer = FrameWriter::with_limit(2);
    /// assert!(matches!(writer.push(b"abc"), Err(WireError::FrameTooLong { .. })));
    /// assert!(writer.is_empty());
    /// ```
    pub fn with_limit(frame_bytes_max: usize) -> FrameWriter {
        FrameWriter {
            front: Vec::new(),
            written: 0,
            buffer: Vec::new(),
            frame_bytes_max,
        }
    }

    /// Queues one frame; see [`write_frame`] for the refusal.
    pub fn push(&mut self, body: &[u8]) -> Result<(), WireError> {
        write_frame(&mut self.buffer, body, self.frame_bytes_max)
    }

    /// Queues one frame whose body `write` appends to the outgoing buffer in place (no
    /// buffer of its own per frame); returns the body's length. If `write` fails, or
    /// the body is longer than the limit ([`WireError::FrameTooLong`]), nothing is
    /// queued and the error is returned.
    ///
    /// ```
    /// use hyperion::wire::{FrameReader, FrameWriter};
    /// let mut writer = FrameWriter::new();
    /// writer.push_with(|out| { out.extend_from_slice(b"hello"); Ok(()) }).unwrap();
    /// let mut wire = Vec::new();
    /// writer.write_to(&mut wire).unwrap();
    /// let mut reader = FrameReader::new();
    /// reader.push(&wire);
    /// assert_eq!(reader.next_frame(), Ok(Some(b"hello".to_vec())));
    /// ```
    #[inline]
    pub fn push_with<F>(&mut self, write: F) -> Result<usize, WireError>
    where
        F: FnOnce(&mut Vec<u8>) -> Result<(), WireError>,
    {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; LENGTH_PREFIX_BYTES]);
        let body_start = self.buffer.len();
        if let Err(err) = write(&mut self.buffer) {
            self.buffer.truncate(start);
            return Err(err);
        }
        let body_len = self.buffer.len() - body_start;
        let limit = self.frame_bytes_max.min(PREFIX_LIMIT_MAX);
        if body_len > limit {
            self.buffer.truncate(start);
            return Err(WireError::FrameTooLong {
                length: body_len as u64,
                limit,
            });
        }
        // Fits in the prefix: the limit is at most `u32::MAX`.
        let prefix = (body_len as u32).to_be_bytes();
        self.buffer[start..body_start].copy_from_slice(&prefix);
        Ok(body_len)
    }

    /// Queues bytes that are already framed (another writer's
    /// [`take_pending`](FrameWriter::take_pending)).
    pub fn push_framed(&mut self, framed: &[u8]) {
        self.buffer.extend_from_slice(framed);
    }

    /// Bytes queued and not yet written (prefixes included).
    pub fn pending_len(&self) -> usize {
        self.front.len() - self.written + self.buffer.len()
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.pending_len() == 0
    }

    /// Removes and returns the queued bytes not yet written.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let mut pending = std::mem::take(&mut self.front);
        pending.drain(..self.written);
        pending.append(&mut self.buffer);
        self.written = 0;
        pending
    }

    /// Writes queued bytes to `sink` until all are written or it would block.
    ///
    /// Returns the bytes written; `WouldBlock` is not an error here (the rest stays
    /// queued). A sink that accepts zero bytes is `WriteZero`; other errors are the
    /// sink's, and the stream is then broken.
    pub fn write_to<W: Write + ?Sized>(&mut self, sink: &mut W) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if self.written == self.front.len() {
                // The front is out: the queued frames come next, in the emptied
                // buffer's place (its allocation is kept for the next frames).
                self.front.clear();
                self.written = 0;
                if self.buffer.is_empty() {
                    break;
                }
                std::mem::swap(&mut self.front, &mut self.buffer);
            }
            // Both buffers in one call where the sink takes them (a socket does).
            let slices = [
                io::IoSlice::new(&self.front[self.written..]),
                io::IoSlice::new(&self.buffer),
            ];
            match sink.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    total += written;
                    let in_front = written.min(self.front.len() - self.written);
                    self.written += in_front;
                    written -= in_front;
                    if written > 0 {
                        // Past the front, into the queued frames: they become the front.
                        self.front.clear();
                        std::mem::swap(&mut self.front, &mut self.buffer);
                        self.written = written;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            write_frame(&mut out, body, FRAME_BYTES_MAX).unwrap();
        }
        out
    }

    #[test]
    fn a_batch_takes_the_frames_before_a_refused_length_and_the_error_comes_next() {
        let mut reader = FrameReader::with_limit(8);
        let mut wire = framed(&[b"one", b"two"]);
        wire.extend_from_slice(&9u32.to_be_bytes());
        reader.push(&wire);
        let batch = reader.next_frames().unwrap().expect("two frames");
        assert_eq!(batch.bodies().collect::<Vec<_>>(), [&b"one"[..], b"two"]);
        let refused = WireError::FrameTooLong {
            length: 9,
            limit: 8,
        };
        assert_eq!(reader.next_frames(), Err(refused.clone()));
        assert_eq!(reader.next_frames(), Err(refused.clone()), "stays refused");
        assert_eq!(reader.next_frame(), Err(refused));
    }

    #[test]
    fn a_batch_leaves_an_incomplete_frame_for_the_next_read() {
        let mut reader = FrameReader::new();
        let wire = framed(&[b"first", b"second"]);
        reader.push(&wire[..wire.len() - 2]);
        let batch = reader.next_frames().unwrap().expect("one frame");
        assert_eq!(batch.bodies().collect::<Vec<_>>(), [&b"first"[..]]);
        drop(batch); // its buffer is kept for the next batch
        assert_eq!(reader.next_frames(), Ok(None));
        reader.push(&wire[wire.len() - 2..]);
        let batch = reader.next_frames().unwrap().expect("the second");
        assert_eq!(batch.bodies().collect::<Vec<_>>(), [&b"second"[..]]);
        assert_eq!(batch.len(), 1);
        assert_eq!(reader.buffered_len(), 0);
    }

    fn drain(reader: &mut FrameReader) -> Result<Vec<Vec<u8>>, WireError> {
        let mut frames = Vec::new();
        while let Some(frame) = reader.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn the_prefix_is_big_endian_u32() {
        let mut out = Vec::new();
        write_frame(&mut out, &[9; 0x0102], FRAME_BYTES_MAX).unwrap();
        assert_eq!(&out[..4], &[0, 0, 0x01, 0x02]);
        assert_eq!(out.len(), 4 + 0x0102);
    }

    #[test]
    fn frames_split_at_every_byte_boundary_reassemble_in_order() {
        let bodies: [&[u8]; 4] = [b"first", b"", &[0xff; 300], b"last"];
        let wire = framed(&bodies);
        for cut in 0..=wire.len() {
            let mut reader = FrameReader::new();
            reader.push(&wire[..cut]);
            let mut frames = drain(&mut reader).unwrap();
            reader.push(&wire[cut..]);
            frames.extend(drain(&mut reader).unwrap());
            assert_eq!(frames, bodies, "split at byte {cut}");
            assert_eq!(reader.buffered_len(), 0);
        }
    }

    #[test]
    fn frames_fed_one_byte_at_a_time_reassemble() {
        let bodies: [&[u8]; 3] = [b"a", &[7; 1000], b"bc"];
        let wire = framed(&bodies);
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        for byte in &wire {
            reader.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut reader).unwrap());
        }
        assert_eq!(frames, bodies);
    }

    #[test]
    fn a_four_gib_prefix_is_refused_before_any_body_byte_arrives() {
        let mut reader = FrameReader::new();
        reader.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            reader.next_frame(),
            Err(WireError::FrameTooLong {
                length: u64::from(u32::MAX),
                limit: FRAME_BYTES_MAX
            })
        );
        // Nothing was allocated for the announced body.
        assert!(reader.buffer.len() < 1024);
        // The stream stays refused.
        reader.push(&[0; 8]);
        assert!(reader.next_frame().is_err());
    }

    #[test]
    fn a_prefix_one_past_the_limit_is_refused_and_one_at_it_is_accepted() {
        let mut at_limit = FrameReader::with_limit(3);
        at_limit.push(&[0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(at_limit.next_frame(), Ok(Some(vec![1, 2, 3])));

        let mut past_limit = FrameReader::with_limit(3);
        past_limit.push(&[0, 0, 0, 4]);
        assert_eq!(
            past_limit.next_frame(),
            Err(WireError::FrameTooLong {
                length: 4,
                limit: 3
            })
        );
    }

    #[test]
    fn a_split_prefix_waits_for_its_last_byte() {
        let mut reader = FrameReader::with_limit(10);
        reader.push(&[0, 0]);
        assert_eq!(reader.next_frame(), Ok(None));
        reader.push(&[1]);
        assert_eq!(reader.next_frame(), Ok(None));
        reader.push(&[0]);
        assert!(matches!(
            reader.next_frame(),
            Err(WireError::FrameTooLong { length: 256, .. })
        ));
    }

    #[test]
    fn a_large_announced_frame_grows_the_buffer_only_as_bytes_arrive() {
        let mut reader = FrameReader::new();
        reader.push(&(FRAME_BYTES_MAX as u32).to_be_bytes());
        reader.push(&[1; 10]);
        assert_eq!(reader.next_frame(), Ok(None));
        assert!(reader.buffer.len() < 1024);
    }

    #[test]
    fn read_from_reads_a_stream_in_chunks() {
        let bodies: [&[u8]; 3] = [&[1; READ_CHUNK_BYTES + 5], b"x", &[2; 3]];
        let wire = framed(&bodies);
        let mut source = io::Cursor::new(wire);
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        loop {
            let read = reader.read_from(&mut source).unwrap();
            frames.extend(drain(&mut reader).unwrap());
            if read == 0 {
                break;
            }
        }
        assert_eq!(frames, bodies);
    }

    #[test]
    fn a_writer_refuses_an_oversized_body_and_keeps_what_it_had() {
        let mut writer = FrameWriter::with_limit(4);
        writer.push(b"ok").unwrap();
        assert_eq!(
            writer.push(b"too long"),
            Err(WireError::FrameTooLong {
                length: 8,
                limit: 4
            })
        );
        assert_eq!(writer.pending_len(), 6);
    }

    /// A sink that takes at most `per_call` bytes per write, then blocks after `calls`.
    struct Trickle {
        taken: Vec<u8>,
        per_call: usize,
        calls_left: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            self.calls += 1;
            let taken = bytes.len().min(self.per_call);
            self.taken.extend_from_slice(&bytes[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn many_queued_frames_leave_in_one_write() {
        let mut writer = FrameWriter::new();
        for n in 0..100u8 {
            writer.push(&[n; 10]).unwrap();
        }
        let mut sink = Trickle {
            taken: Vec::new(),
            per_call: usize::MAX,
            calls_left: usize::MAX,
            calls: 0,
        };
        assert_eq!(writer.write_to(&mut sink).unwrap(), 1400);
        assert_eq!(sink.calls, 1);
        assert!(writer.is_empty());
    }

    #[test]
    fn a_blocked_sink_keeps_the_rest_queued_in_order() {
        let bodies: [&[u8]; 3] = [b"one", b"two", b"three"];
        let mut writer = FrameWriter::new();
        for body in bodies {
            writer.push(body).unwrap();
        }
        let mut sink = Trickle {
            taken: Vec::new(),
            per_call: 5,
            calls_left: 2,
            calls: 0,
        };
        assert_eq!(writer.write_to(&mut sink).unwrap(), 10);
        assert_eq!(writer.pending_len(), framed(&bodies).len() - 10);
        writer.push(b"four").unwrap();
        sink.calls_left = usize::MAX;
        writer.write_to(&mut sink).unwrap();
        let mut reader = FrameReader::new();
        reader.push(&sink.taken);
        assert_eq!(
            drain(&mut reader).unwrap(),
            [&b"one"[..], b"two", b"three", b"four"]
        );
    }

    /// A sink that takes at most `per_call` bytes per write, across the slices of a
    /// vectored write as a socket does.
    struct VectoredTrickle {
        taken: Vec<u8>,
        per_call: usize,
    }

    impl Write for VectoredTrickle {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[io::IoSlice::new(bytes)])
        }
        fn write_vectored(&mut self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
            let mut taken = 0;
            for slice in slices {
                let n = slice.len().min(self.per_call - taken);
                self.taken.extend_from_slice(&slice[..n]);
                taken += n;
            }
            if taken == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(taken)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A producer that keeps the queue full while the sink takes part of it each time
    /// (the one-way stream's steady state): the bytes not yet written stay where they
    /// are (compacting them cost a copy of every byte written), and everything leaves
    /// in order.
    #[test]
    fn a_partial_write_moves_no_queued_bytes_and_keeps_the_order() {
        let mut writer = FrameWriter::new();
        writer.push(&[1; 1000]).unwrap();
        let mut sink = VectoredTrickle {
            taken: Vec::new(),
            per_call: 800,
        };
        let trickle = |writer: &mut FrameWriter, sink: &mut VectoredTrickle| {
            writer.write_to(sink).unwrap();
        };
        // One call of 800 bytes, then the sink is full.
        let first = {
            let mut once = Trickle {
                taken: Vec::new(),
                per_call: 800,
                calls_left: 1,
                calls: 0,
            };
            writer.write_to(&mut once).unwrap();
            once.taken
        };
        assert_eq!(first.len(), 800);
        assert_eq!(writer.written, 800, "the unwritten rest was moved");
        let mut expected = framed(&[&[1; 1000]]);
        let mut bodies: Vec<Vec<u8>> = vec![vec![1; 1000]];
        sink.taken = first;
        for n in 2..200u8 {
            let body = vec![n; usize::from(n) * 7];
            writer.push(&body).unwrap();
            write_frame(&mut expected, &body, FRAME_BYTES_MAX).unwrap();
            bodies.push(body);
            sink.per_call = 300 + usize::from(n) * 3;
            trickle(&mut writer, &mut sink);
        }
        sink.per_call = usize::MAX;
        trickle(&mut writer, &mut sink);
        assert!(writer.is_empty());
        assert_eq!(sink.taken, expected);
        let mut reader = FrameReader::new();
        reader.push(&sink.taken);
        assert_eq!(drain(&mut reader).unwrap(), bodies);
    }

    #[test]
    fn take_pending_returns_only_unwritten_bytes() {
        let mut writer = FrameWriter::new();
        writer.push(b"abcdef").unwrap();
        let mut sink = Trickle {
            taken: Vec::new(),
            per_call: 3,
            calls_left: 1,
            calls: 0,
        };
        writer.write_to(&mut sink).unwrap();
        let rest = writer.take_pending();
        assert_eq!(sink.taken, [0, 0, 0]);
        assert_eq!(rest, [6, b'a', b'b', b'c', b'd', b'e', b'f']);
        assert!(writer.is_empty());
    }

    #[test]
    fn a_frame_written_in_place_is_framed_as_a_pushed_one() {
        let mut writer = FrameWriter::with_limit(300);
        writer.push(b"first").unwrap();
        let written = writer
            .push_with(|out| {
                out.extend_from_slice(&[5; 300]);
                Ok(())
            })
            .unwrap();
        assert_eq!(written, 300);
        writer.push(b"").unwrap();
        let mut wire = Vec::new();
        writer.write_to(&mut wire).unwrap();
        assert_eq!(wire, framed(&[b"first", &[5; 300], b""]));
    }

    #[test]
    fn a_frame_written_in_place_over_the_limit_or_failing_leaves_the_queue_as_it_was() {
        let mut writer = FrameWriter::with_limit(4);
        writer.push(b"ok").unwrap();
        let too_long = writer.push_with(|out| {
            out.extend_from_slice(b"too long");
            Ok(())
        });
        assert_eq!(
            too_long,
            Err(WireError::FrameTooLong {
                length: 8,
                limit: 4
            })
        );
        let failed = writer.push_with(|out| {
            out.push(1);
            Err(WireError::Encode("refused".into()))
        });
        assert_eq!(failed, Err(WireError::Encode("refused".into())));
        assert_eq!(writer.pending_len(), 6);
        let mut wire = Vec::new();
        writer.write_to(&mut wire).unwrap();
        assert_eq!(wire, framed(&[b"ok"]));
    }

    #[test]
    fn a_sink_that_takes_nothing_is_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = FrameWriter::new();
        writer.push(b"x").unwrap();
        assert_eq!(
            writer.write_to(&mut Closed).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
    }
}
