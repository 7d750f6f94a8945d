//! Virtual time: one world clock that only the simulator advances, seen by each node
//! through its own (possibly offset) clock.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::clock::Clock;

/// The world's time, shared by every node clock of one simulation.
#[derive(Clone, Default)]
pub struct WorldTime {
    now: Rc<Cell<Duration>>,
}

impl WorldTime {
    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.now.get()
    }

    /// Moves time forward to `to` (never backwards).
    pub fn advance_to(&self, to: Duration) {
        if to > self.now.get() {
            self.now.set(to);
        }
    }
}

/// One node's view of world time: world time plus a fixed offset (clock skew).
pub struct NodeClock {
    world: WorldTime,
    offset: Duration,
}

impl NodeClock {
    /// A clock reading `world` time plus `offset`.
    pub fn new(world: WorldTime, offset: Duration) -> NodeClock {
        NodeClock { world, offset }
    }

    /// The world time at which this clock reads `local`.
    pub fn to_world(&self, local: Duration) -> Duration {
        local.saturating_sub(self.offset)
    }
}

impl Clock for NodeClock {
    fn now(&self) -> Duration {
        self.world.now() + self.offset
    }
}
