//! Coverage probes and buggify points: hooks through which a simulator learns what a run
//! exercised and makes code misbehave on purpose. Outside a simulator both cost one
//! thread-local read and do nothing.
//!
//! - [`sometimes!`](crate::sometimes)`(name, condition)` and
//!   [`reached!`](crate::reached)`(name)` record that a run got somewhere interesting
//!   (a retry happened, a hello from an unknown service arrived). The simulator counts,
//!   per scenario, how many seeds reached each probe, so a scenario shows that it
//!   exercises what it claims to.
//! - [`buggify!`](crate::buggify)`()` is `true` when the code should take its unusual
//!   path (answer late, stall, fail) to shake out bugs that calm runs never show. As in
//!   FoundationDB, a simulator decides per call site and per seed: a site is enabled for
//!   a whole run with some probability, then fires on a fraction of its calls. It is
//!   always `false` in the real world.
//!
//! The library never depends on a simulator: a driver installs its [`SimHooks`] on the
//! thread that runs the simulated nodes (every node of a simulated world runs on one
//! thread); a real node's thread has none.
//!
//! ```
//! use hyperion::{buggify, reached, sometimes};
//!
//! fn answer(retries: u32) -> u32 {
//!     sometimes!("answer.after_retry", retries > 0);
//!     if buggify!() {
//!         reached!("answer.buggified");
//!         return 0; // the unusual path a simulator may force
//!     }
//!     42
//! }
//! assert_eq!(answer(1), 42); // no simulator on this thread: probes and buggify are inert
//! ```

use std::cell::RefCell;
use std::rc::Rc;

/// What a simulator provides to the probes and buggify points of the code it runs.
pub trait SimHooks {
    /// A probe named `name` was evaluated; `hit` is its condition.
    fn probe(&self, name: &'static str, hit: bool);
    /// Whether the buggify point at `site` (its `file:line:column`) fires this time.
    fn buggify(&self, site: &'static str) -> bool;
}

thread_local! {
    static HOOKS: RefCell<Option<Rc<dyn SimHooks>>> = const { RefCell::new(None) };
}

/// Installs `hooks` on this thread until the returned guard is dropped (then the hooks
/// installed before come back). Simulators call this around every step they run.
pub fn install(hooks: Rc<dyn SimHooks>) -> HooksGuard {
    let previous = HOOKS.with(|slot| slot.borrow_mut().replace(hooks));
    HooksGuard { previous }
}

/// Restores the previous hooks when dropped (see [`install`]).
#[must_use = "the hooks are removed when the guard is dropped"]
pub struct HooksGuard {
    previous: Option<Rc<dyn SimHooks>>,
}

impl Drop for HooksGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        HOOKS.with(|slot| *slot.borrow_mut() = previous);
    }
}

fn with_hooks<R>(default: R, f: impl FnOnce(&dyn SimHooks) -> R) -> R {
    // Cloning the Rc out keeps the slot unborrowed while the hook runs (a hook may
    // run code that reaches another probe).
    let hooks = HOOKS.with(|slot| slot.borrow().clone());
    match hooks {
        Some(hooks) => f(&*hooks),
        None => default,
    }
}

/// Records the probe `name` with its condition (use [`sometimes!`](crate::sometimes)).
pub fn sometimes(name: &'static str, condition: bool) {
    with_hooks((), |hooks| hooks.probe(name, condition));
}

/// Whether the buggify point at `site` fires (use [`buggify!`](crate::buggify)).
pub fn buggify_at(site: &'static str) -> bool {
    with_hooks(false, |hooks| hooks.buggify(site))
}

/// Whether a simulator's hooks are installed on this thread.
pub fn in_simulator() -> bool {
    HOOKS.with(|slot| slot.borrow().is_some())
}

/// Records that `condition` held (or not) at a named point, for a simulator's coverage
/// report. Inert outside a simulator.
///
/// ```
/// let retries = 1;
/// hyperion::sometimes!("retry.happened", retries > 0);
/// ```
#[macro_export]
macro_rules! sometimes {
    ($name:expr, $condition:expr) => {
        $crate::probe::sometimes($name, $condition)
    };
}

/// Records that a named point was reached, for a simulator's coverage report. Inert
/// outside a simulator.
///
/// ```
/// hyperion::reached!("hello.from_unknown_service");
/// ```
#[macro_export]
macro_rules! reached {
    ($name:expr) => {
        $crate::probe::sometimes($name, true)
    };
}

/// `true` when a simulator wants this call site to misbehave now (decided per site and
/// per seed); always `false` outside a simulator.
///
/// ```
/// use std::time::Duration;
/// let pause = if hyperion::buggify!() { Duration::from_secs(5) } else { Duration::ZERO };
/// assert_eq!(pause, Duration::ZERO);
/// ```
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::probe::buggify_at(concat!(file!(), ":", line!(), ":", column!()))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Counting {
        probes: Cell<u32>,
        buggify: bool,
    }

    impl SimHooks for Counting {
        fn probe(&self, _name: &'static str, hit: bool) {
            if hit {
                self.probes.set(self.probes.get() + 1);
            }
        }
        fn buggify(&self, _site: &'static str) -> bool {
            self.buggify
        }
    }

    #[test]
    fn probes_and_buggify_are_inert_without_hooks() {
        assert!(!in_simulator());
        assert!(!crate::buggify!());
        crate::reached!("nowhere");
    }

    #[test]
    fn installed_hooks_see_probes_until_the_guard_drops() {
        let hooks = Rc::new(Counting {
            probes: Cell::new(0),
            buggify: true,
        });
        {
            let _guard = install(hooks.clone());
            crate::reached!("here");
            crate::sometimes!("not here", false);
            assert!(crate::buggify!());
        }
        crate::reached!("after");
        assert!(!crate::buggify!());
        assert_eq!(hooks.probes.get(), 1);
    }
}
