//! Who may hold the resources of a connection that has not proven the cookie yet: the
//! count of inbound handshakes, in all and per source, and the warnings about peers
//! turned away, summarised so that a flood cannot flood the log too.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often, at most, the warnings about unauthenticated connections turned away are
/// logged in full; the others of the interval are counted and summarised.
pub const PRE_AUTH_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Where an inbound connection comes from, for the per-source cap: an IPv4 address, or
/// an IPv6 /64 network (one host commonly holds a whole /64).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Source {
    V4([u8; 4]),
    V6Network([u8; 8]),
}

impl Source {
    pub(super) fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(ip) => Source::V4(ip.octets()),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(ip) => Source::V4(ip.octets()),
                None => {
                    let octets = ip.octets();
                    Source::V6Network(octets[..8].try_into().expect("8 of 16 bytes"))
                }
            },
        }
    }
}

/// The inbound handshakes in progress, in all and per source.
#[derive(Default)]
pub(super) struct Admission {
    per_source: BTreeMap<Source, usize>,
    total: usize,
}

impl Admission {
    pub(super) fn total(&self) -> usize {
        self.total
    }

    pub(super) fn of_source(&self, source: Source) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    pub(super) fn take(&mut self, source: Source) {
        *self.per_source.entry(source).or_insert(0) += 1;
        self.total += 1;
    }

    pub(super) fn release(&mut self, source: Source) {
        if let Some(count) = self.per_source.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&source);
            }
            self.total -= 1;
        }
    }
}

/// Warnings about unauthenticated peers turned away (refused, evicted, timed out,
/// failed handshakes): the first of each interval in full, then a count per reason at
/// the end of the interval. Every one is logged in full at debug level.
#[derive(Default)]
pub(super) struct PreAuthWarnings {
    window_start: Option<Instant>,
    suppressed: BTreeMap<&'static str, u64>,
}

impl PreAuthWarnings {
    /// Reports `remote` turned away for `reason` (a fixed phrase), with `detail`.
    pub(super) fn warn(
        &mut self,
        now: Instant,
        reason: &'static str,
        remote: impl fmt::Display,
        detail: impl fmt::Display,
    ) {
        self.summarise_if_due(now);
        if self.window_start.is_none() {
            self.window_start = Some(now);
            tracing::warn!(%remote, %detail, "{reason}; connection dropped (similar warnings are summarised every {}s)", PRE_AUTH_WARNING_INTERVAL.as_secs());
        } else {
            *self.suppressed.entry(reason).or_insert(0) += 1;
            tracing::debug!(%remote, %detail, "{reason}; connection dropped");
        }
    }

    /// Logs the counts of the interval that ended, if it did.
    pub(super) fn summarise_if_due(&mut self, now: Instant) {
        let Some(start) = self.window_start else {
            return;
        };
        if now.saturating_duration_since(start) < PRE_AUTH_WARNING_INTERVAL {
            return;
        }
        self.window_start = None;
        let suppressed = std::mem::take(&mut self.suppressed);
        if suppressed.is_empty() {
            return;
        }
        let counts: Vec<String> = suppressed
            .iter()
            .map(|(reason, count)| format!("{count} × {reason}"))
            .collect();
        tracing::warn!(
            seconds = now.saturating_duration_since(start).as_secs(),
            "unauthenticated connections dropped since the last warning: {}",
            counts.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_source_is_its_64_network_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of(v4));
    }

    #[test]
    fn warnings_past_the_first_of_an_interval_are_counted_then_summarised() {
        let mut warnings = PreAuthWarnings::default();
        let start = Instant::now(); // real-world only
        for _ in 0..220 {
            warnings.warn(start, "handshake failed", "10.0.0.1:1", "bad");
        }
        warnings.warn(start, "no hello within the hello timeout", "10.0.0.1:2", "");
        assert_eq!(warnings.suppressed.get("handshake failed"), Some(&219));
        assert_eq!(warnings.suppressed.len(), 2);
        warnings.summarise_if_due(start + PRE_AUTH_WARNING_INTERVAL / 2);
        assert_eq!(warnings.suppressed.len(), 2);
        warnings.summarise_if_due(start + PRE_AUTH_WARNING_INTERVAL);
        assert!(warnings.suppressed.is_empty());
        assert_eq!(warnings.window_start, None);
    }

    #[test]
    fn counts_follow_takes_and_releases() {
        let mut admission = Admission::default();
        let one = Source::V4([10, 0, 0, 1]);
        let two = Source::V4([10, 0, 0, 2]);
        admission.take(one);
        admission.take(one);
        admission.take(two);
        assert_eq!((admission.total(), admission.of_source(one)), (3, 2));
        admission.release(one);
        admission.release(two);
        admission.release(two); // not held: no change
        assert_eq!((admission.total(), admission.of_source(two)), (1, 0));
    }
}
