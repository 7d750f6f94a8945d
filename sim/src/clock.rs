//! Virtual time: one world clock that only the simulator advances, seen by each node
//! through its own clock, which may be offset and drift (clock skew).

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

/// One node's view of world time: `offset + world × (1 + drift_ppm / 10⁶)`.
pub struct NodeClock {
    world: WorldTime,
    offset: Duration,
    drift_ppm: i32,
}

const MILLION: i128 = 1_000_000;

impl NodeClock {
    /// A clock reading world time plus `offset`, running `drift_ppm` parts per million
    /// fast (or slow, if negative; at most ±50%).
    pub fn new(world: WorldTime, offset: Duration, drift_ppm: i32) -> NodeClock {
        NodeClock {
            world,
            offset,
            drift_ppm: drift_ppm.clamp(-500_000, 500_000),
        }
    }

    fn local_at(&self, world: Duration) -> Duration {
        if self.drift_ppm == 0 {
            return self.offset + world;
        }
        let world = world.as_nanos() as i128;
        let local = world + world * i128::from(self.drift_ppm) / MILLION;
        self.offset + Duration::from_nanos(local.max(0) as u64)
    }

    /// The earliest world time at which this clock reads at least `local`.
    pub fn to_world(&self, local: Duration) -> Duration {
        if self.drift_ppm == 0 {
            return local.saturating_sub(self.offset);
        }
        let since = local.saturating_sub(self.offset).as_nanos() as i128;
        let rate = MILLION + i128::from(self.drift_ppm);
        let mut world = Duration::from_nanos(((since * MILLION + rate - 1) / rate) as u64);
        while self.local_at(world) < local {
            world += Duration::from_nanos(1);
        }
        world
    }

    /// How much longer a local duration lasts in world time, at most.
    pub fn world_span(&self, local: Duration) -> Duration {
        let rate = MILLION + i128::from(self.drift_ppm);
        Duration::from_nanos((local.as_nanos() as i128 * MILLION / rate) as u64 + 1)
    }
}

impl Clock for NodeClock {
    fn now(&self) -> Duration {
        self.local_at(self.world.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drifting_clock_reaches_its_deadline_at_the_world_time_it_names() {
        for drift in [-100_000, -1, 0, 3, 250_000] {
            let world = WorldTime::default();
            let clock = NodeClock::new(world.clone(), Duration::from_millis(3), drift);
            let deadline = Duration::from_nanos(1_234_567_891);
            world.advance_to(clock.to_world(deadline));
            assert!(clock.now() >= deadline, "drift {drift}");
        }
    }
}
