//! The world's side of [`hyperion::probe`]: counts the coverage probes a run reached and
//! decides the buggify points.
//!
//! Buggify is decided as FoundationDB does: the first time a run meets a call site, the
//! site is enabled for the whole run with probability [`BUGGIFY_SITE_PROBABILITY`]; an
//! enabled site then fires on [`BUGGIFY_FIRE_PROBABILITY`] of its calls. Each site draws
//! from its own generator, seeded from the world's seed and the site's `file:line:column`,
//! so deciding a site consumes nothing of the world's generator: a world with buggify
//! off runs exactly as it did before buggify existed, and with it on a site's decisions
//! do not shift when code elsewhere changes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use hyperion::probe::SimHooks;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::WorldTime;
use crate::plan::PlanBuggify;
use crate::trace::Trace;

/// Chance that a buggify site is enabled for a whole run.
pub const BUGGIFY_SITE_PROBABILITY: f64 = 0.25;
/// Chance that an enabled buggify site fires on one of its calls.
pub const BUGGIFY_FIRE_PROBABILITY: f64 = 0.25;

/// How often a probe was evaluated in one run, and how often its condition held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCount {
    /// Evaluations.
    pub evaluated: u64,
    /// Evaluations whose condition held (the probe was *reached*).
    pub reached: u64,
}

struct Site {
    enabled: bool,
    rng: ChaCha8Rng,
    /// Evaluations so far (the next one's number, from 0).
    calls: u64,
    fired: u64,
}

/// Probe counts and buggify decisions of one world.
pub(crate) struct WorldHooks {
    seed: u64,
    pub(crate) buggify_on: std::cell::Cell<bool>,
    probes: RefCell<BTreeMap<&'static str, ProbeCount>>,
    sites: RefCell<BTreeMap<&'static str, Site>>,
    /// Every firing so far, as (site, call number), for the run's plan.
    fired_log: RefCell<Vec<(&'static str, u64)>>,
    /// When following a plan: the calls, per site, that fire (and no others).
    planned: RefCell<Option<BTreeMap<String, BTreeSet<u64>>>>,
    time: WorldTime,
    trace: Rc<RefCell<Trace>>,
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl WorldHooks {
    pub(crate) fn new(seed: u64, time: WorldTime, trace: Rc<RefCell<Trace>>) -> WorldHooks {
        WorldHooks {
            seed,
            buggify_on: std::cell::Cell::new(false),
            probes: RefCell::default(),
            sites: RefCell::default(),
            fired_log: RefCell::default(),
            planned: RefCell::default(),
            time,
            trace,
        }
    }

    pub(crate) fn probes(&self) -> BTreeMap<&'static str, ProbeCount> {
        self.probes.borrow().clone()
    }

    /// Firings per buggify site met so far (enabled sites only).
    pub(crate) fn buggify_fired(&self) -> BTreeMap<&'static str, u64> {
        self.sites
            .borrow()
            .iter()
            .filter(|(_, site)| site.enabled || site.fired > 0)
            .map(|(name, site)| (*name, site.fired))
            .collect()
    }

    /// Every firing so far, in order, as plan steps.
    pub(crate) fn buggify_log(&self) -> Vec<PlanBuggify> {
        self.fired_log
            .borrow()
            .iter()
            .map(|(site, call)| PlanBuggify {
                site: (*site).to_string(),
                call: *call,
            })
            .collect()
    }

    /// From now on a site fires exactly on the calls `firings` list for it.
    pub(crate) fn follow_buggify(&self, firings: &[PlanBuggify]) {
        let mut planned: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for firing in firings {
            planned
                .entry(firing.site.clone())
                .or_default()
                .insert(firing.call);
        }
        *self.planned.borrow_mut() = Some(planned);
    }
}

impl SimHooks for WorldHooks {
    fn probe(&self, name: &'static str, hit: bool) {
        let mut probes = self.probes.borrow_mut();
        let count = probes.entry(name).or_default();
        count.evaluated += 1;
        count.reached += u64::from(hit);
    }

    fn buggify(&self, site: &'static str) -> bool {
        if !self.buggify_on.get() {
            return false;
        }
        let fired = {
            let mut sites = self.sites.borrow_mut();
            let entry = sites.entry(site).or_insert_with(|| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ fnv(site));
                let enabled = unit(&mut rng) < BUGGIFY_SITE_PROBABILITY;
                Site {
                    enabled,
                    rng,
                    calls: 0,
                    fired: 0,
                }
            });
            let call = entry.calls;
            entry.calls += 1;
            let fired = match &*self.planned.borrow() {
                Some(planned) => planned.get(site).is_some_and(|calls| calls.contains(&call)),
                None => entry.enabled && unit(&mut entry.rng) < BUGGIFY_FIRE_PROBABILITY,
            };
            entry.fired += u64::from(fired);
            if fired {
                self.fired_log.borrow_mut().push((site, call));
            }
            fired
        };
        if fired {
            self.trace
                .borrow_mut()
                .event(self.time.now(), None, 7, site.as_bytes(), || {
                    format!("buggify {site}")
                });
        }
        fired
    }
}
