//! What happened in a simulated run: a hash chain over every step (always on, cheap),
//! and optionally the full list of events, for printing, snapshots and finding the first
//! divergence between two runs of one seed.

use std::fmt;
use std::time::Duration;

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual time.
    pub at: Duration,
    /// The node it happened on (index in order of addition), if any.
    pub node: Option<usize>,
    /// What happened.
    pub what: String,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.as_secs_f64();
        match self.node {
            Some(node) => write!(f, "{at:>12.6}s n{node} {}", self.what),
            None => write!(f, "{at:>12.6}s    {}", self.what),
        }
    }
}

/// The trace of one run.
#[derive(Default)]
pub struct Trace {
    hash: u64,
    events: u64,
    recorded: Option<Vec<TraceEntry>>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    pub(crate) fn new(record: bool) -> Trace {
        Trace {
            hash: FNV_OFFSET,
            events: 0,
            recorded: record.then(Vec::new),
        }
    }

    /// Chains one event into the hash; records its description if recording.
    pub(crate) fn event(
        &mut self,
        at: Duration,
        node: Option<usize>,
        kind: u8,
        data: &[u8],
        describe: impl FnOnce() -> String,
    ) {
        let mut hash = self.hash;
        // FNV-style chaining, eight bytes at a time: cheap enough for every step.
        let mut mix = |word: u64| {
            hash = (hash ^ word).wrapping_mul(FNV_PRIME).rotate_left(29);
        };
        mix(at.as_nanos() as u64);
        mix(node.map_or(u64::MAX, |n| n as u64));
        mix(u64::from(kind) | ((data.len() as u64) << 8));
        let mut chunks = data.chunks_exact(8);
        for chunk in &mut chunks {
            mix(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        mix(u64::from_le_bytes(tail));
        self.hash = hash;
        self.events += 1;
        if let Some(recorded) = &mut self.recorded {
            recorded.push(TraceEntry {
                at,
                node,
                what: describe(),
            });
        }
    }

    /// The hash chain so far: equal for two runs of one seed, or they diverged.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Events so far.
    pub fn len(&self) -> u64 {
        self.events
    }

    /// Whether nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The recorded events, if recording was on.
    pub fn entries(&self) -> Option<&[TraceEntry]> {
        self.recorded.as_deref()
    }
}
