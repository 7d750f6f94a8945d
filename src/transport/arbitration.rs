//! Connection arbitration, sans I/O: which connection carries the frames of a pair of
//! nodes when both may dial each other at once, redial after a loss, or close late.
//!
//! The same machine runs in the TCP transport (connections named by `mio` tokens, times
//! by `Instant`) and in the simulator's network (connection ids and virtual time), so
//! that the simulator explores, under faults, the very decisions TCP makes.
//!
//! A node keeps, per peer, an optional [`Route`]. Each input ([`Arbiter`]'s methods) is
//! a pure transition: it takes the current route and an event of one connection, and
//! returns the new route with the [`Actions`] the caller performs (answer a verdict,
//! close a connection, make one carry the frames, report the peer lost or connected).
//!
//! # The rule
//!
//! - The acceptor decides once the initiator proved itself ([`Arbiter::decide`]): it
//!   accepts when it has no route (or waits for the peer's connection), declines when it
//!   is dialing the peer itself and has the smaller [`NodeId`] (the connection initiated
//!   by the smaller id stays), accepts when it is dialing with the larger id (its own dial
//!   is then closed without a loss), and answers "alive" when it has an established
//!   connection.
//! - An initiator told "alive" asks to replace the acceptor's connection when it has no
//!   other one (it lost it), and closes this one otherwise (a stale simultaneous dial).
//! - The acceptor honours a replace only if no other connection became its route since
//!   its "alive" ([`Actions::vouched`]): the route is still the connection the "alive"
//!   vouched for, or that one closed and nothing replaced it. Otherwise the request is
//!   stale: a newer connection of the pair may have carried frames its initiator sent
//!   after those queued behind the request. Such a connection is closed instead (its
//!   initiator sees a loss), so that frames of an older connection never follow a
//!   newer one's.
//! - A connection that becomes the route supersedes the previous one: a dial is closed
//!   silently, an established connection is closed and the peer reported lost first.
//! - A connection that closes is a loss only if it is the route.
//!
//! # Guarantees (tested here by a model of two nodes over every order of events)
//!
//! - At most one route per peer; once both nodes are quiet, both hold the same
//!   connection as established.
//! - Frames queued while the route is being made follow the handshake, in order: a
//!   superseded dial loses none of them (they wait in the link, not on the dial).
//! - A node receives a peer's frames in the order sent, without duplicates, even across
//!   disconnects and closes that arrive late: a frame may be lost (with the loss
//!   reported), never delivered after one the peer sent later.

use crate::types::id::NodeId;
use crate::wire::handshake::Verdict;

/// How frames reach one peer. `C` names a connection, `T` is an instant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Route<C, T> {
    /// Our connection `C` is being made; frames wait in the link.
    Dialing(C),
    /// The peer declined our connection because it is dialing us; frames wait for its
    /// connection until the deadline, then the peer is reported lost.
    AwaitingInbound {
        /// When to give up on the peer's connection.
        deadline: T,
    },
    /// Frames go to connection `C`.
    Established(C),
}

impl<C: Copy, T> Route<C, T> {
    /// The connection the route names, if any.
    pub fn connection(&self) -> Option<C> {
        match self {
            Route::Dialing(c) | Route::Established(c) => Some(*c),
            Route::AwaitingInbound { .. } => None,
        }
    }
}

/// What the caller does after a transition, in this order: answer `verdict` on the
/// connection of the event (keeping `vouched` with it), send a replace request on it if
/// `replace`, `close` a connection, report the peer lost if `lost`, then make `establish`
/// the connection that carries the frames (queued frames first), forget the vouches kept
/// with the peer's other connections, and report the peer connected.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Actions<C> {
    /// The acceptor's verdict to send on the connection of the event.
    pub verdict: Option<Verdict>,
    /// The initiator asks the acceptor to replace its connection with this one.
    pub replace: bool,
    /// A connection to close (a superseded dial or connection, a stale or declined dial).
    pub close: Option<C>,
    /// Whether the peer is reported lost.
    pub lost: bool,
    /// The connection that carries the peer's frames from now on. The vouches kept with
    /// the peer's other connections ([`Actions::vouched`]) are void from now on.
    pub establish: Option<C>,
    /// With an `Alive` verdict: the connection it vouched for (the acceptor's route).
    /// The caller keeps it with the connection of the event until another connection
    /// becomes the peer's route (any `establish` for the peer), and passes what it kept
    /// (`None` once void) to [`Arbiter::on_replace`].
    pub vouched: Option<C>,
}

impl<C> Default for Actions<C> {
    fn default() -> Self {
        Actions {
            verdict: None,
            replace: false,
            close: None,
            lost: false,
            establish: None,
            vouched: None,
        }
    }
}

/// A transition's result: the peer's new route and what to do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transition<C, T> {
    /// The route after the event (`None`: the peer has no route).
    pub route: Option<Route<C, T>>,
    /// What the caller does.
    pub actions: Actions<C>,
}

/// The arbitration of one node (its id decides simultaneous dials).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Arbiter {
    local: NodeId,
}

impl Arbiter {
    /// The arbitration of node `local`.
    pub fn new(local: NodeId) -> Arbiter {
        Arbiter { local }
    }

    /// A send found no route to the peer: we dial it on `connection`.
    pub fn dial<C: Copy + Eq, T>(
        &self,
        route: Option<Route<C, T>>,
        connection: C,
    ) -> Transition<C, T> {
        debug_assert!(route.is_none(), "dial while a route exists");
        Transition {
            route: Some(Route::Dialing(connection)),
            actions: Actions::default(),
        }
    }

    /// The acceptor's verdict on inbound `connection` from `peer`, which proved itself.
    pub fn decide<C: Copy + Eq, T: Copy>(
        &self,
        peer: NodeId,
        route: Option<Route<C, T>>,
        connection: C,
    ) -> Transition<C, T> {
        let verdict = match route {
            None | Some(Route::AwaitingInbound { .. }) => Verdict::Accept,
            // Both dialed at once: the connection initiated by the smaller id stays.
            Some(Route::Dialing(_)) if self.local < peer && !crossed_dial_accepted() => {
                Verdict::Decline
            }
            Some(Route::Dialing(_)) => Verdict::Accept,
            Some(Route::Established(_)) => Verdict::Alive,
        };
        match verdict {
            Verdict::Accept => {
                let mut transition = self.establish(route, connection);
                transition.actions.verdict = Some(verdict);
                transition
            }
            Verdict::Decline | Verdict::Alive => Transition {
                route,
                actions: Actions {
                    verdict: Some(verdict),
                    vouched: match verdict {
                        Verdict::Alive => route.and_then(|route| route.connection()),
                        _ => None,
                    },
                    ..Actions::default()
                },
            },
        }
    }

    /// The initiator's reaction to the acceptor's `verdict` on our dial `connection`;
    /// after a decline, the peer's connection is awaited until `await_deadline`.
    pub fn on_verdict<C: Copy + Eq, T: Copy>(
        &self,
        route: Option<Route<C, T>>,
        connection: C,
        verdict: Verdict,
        await_deadline: T,
    ) -> Transition<C, T> {
        match verdict {
            Verdict::Accept => self.establish(route, connection),
            Verdict::Decline => {
                let route = match route {
                    Some(Route::Dialing(dial)) if dial == connection => {
                        Some(Route::AwaitingInbound {
                            deadline: await_deadline,
                        })
                    }
                    other => other,
                };
                Transition {
                    route,
                    actions: Actions {
                        close: Some(connection),
                        ..Actions::default()
                    },
                }
            }
            Verdict::Alive => match route {
                // A stale simultaneous dial: the pair already has its connection.
                Some(Route::Established(other)) if other != connection => Transition {
                    route,
                    actions: Actions {
                        close: Some(connection),
                        ..Actions::default()
                    },
                },
                // We lost the connection the peer still believes in: replace it.
                _ => {
                    let mut transition = self.establish(route, connection);
                    transition.actions.replace = true;
                    transition
                }
            },
        }
    }

    /// The initiator of inbound `connection` asked to replace the acceptor's connection;
    /// `vouched` is what our "alive" on `connection` vouched for ([`Actions::vouched`]),
    /// `None` if another connection became the route since.
    ///
    /// Honoured if no other connection became the route since the "alive": the route is
    /// still the vouched connection (closed and reported lost now), or that one is gone
    /// and nothing replaced it (our own dial, if any, is superseded). Otherwise the
    /// request is stale (a newer connection of the pair may have carried frames the
    /// peer sent after the ones queued behind this request), so `connection` is closed
    /// instead: its initiator sees the close as a loss, and nothing it sent on it is
    /// delivered.
    pub fn on_replace<C: Copy + Eq, T: Copy>(
        &self,
        route: Option<Route<C, T>>,
        connection: C,
        vouched: Option<C>,
    ) -> Transition<C, T> {
        let honoured = match (vouched, route) {
            (None, _) => false,
            // Cannot differ while the caller voids vouches on `establish`; refused anyway.
            (Some(vouched), Some(Route::Established(route))) => route == vouched,
            (Some(_), None | Some(Route::Dialing(_) | Route::AwaitingInbound { .. })) => true,
        };
        if honoured {
            self.establish(route, connection)
        } else {
            Transition {
                route,
                actions: Actions {
                    close: Some(connection),
                    ..Actions::default()
                },
            }
        }
    }

    /// Makes `connection` the route: a superseded dial is closed silently, a superseded
    /// established connection is closed and reported lost first.
    pub fn establish<C: Copy + Eq, T: Copy>(
        &self,
        route: Option<Route<C, T>>,
        connection: C,
    ) -> Transition<C, T> {
        let mut actions = Actions {
            establish: Some(connection),
            ..Actions::default()
        };
        match route {
            Some(Route::Dialing(other)) if other != connection => actions.close = Some(other),
            Some(Route::Established(other)) if other != connection => {
                actions.close = Some(other);
                actions.lost = true;
            }
            _ => {}
        }
        debug_assert!(
            actions.close != Some(connection),
            "a connection cannot supersede itself"
        );
        Transition {
            route: Some(Route::Established(connection)),
            actions,
        }
    }

    /// `connection` closed (broke, failed to come up, or the peer closed it): a loss if
    /// it is the route, nothing otherwise (a superseded, declined or stale connection).
    pub fn on_closed<C: Copy + Eq, T: Copy>(
        &self,
        route: Option<Route<C, T>>,
        connection: C,
    ) -> Transition<C, T> {
        if route.and_then(|route| route.connection()) == Some(connection) {
            Transition {
                route: None,
                actions: Actions {
                    lost: true,
                    ..Actions::default()
                },
            }
        } else {
            Transition {
                route,
                actions: Actions::default(),
            }
        }
    }

    /// The node gives the peer up (a disconnect, or a loss found by sending): the route's
    /// connection is closed; `lost` says whether the peer is reported lost.
    pub fn give_up<C: Copy + Eq, T: Copy>(
        &self,
        route: Option<Route<C, T>>,
        lost: bool,
    ) -> Transition<C, T> {
        Transition {
            route: None,
            actions: Actions {
                close: route.and_then(|route| route.connection()),
                lost,
                ..Actions::default()
            },
        }
    }
}

/// Whether the planted defect "a crossed dial is accepted by the node whose own dial
/// should win" is on (never outside test builds with the `planted-defects` feature).
#[inline(always)]
fn crossed_dial_accepted() -> bool {
    crate::planted::is_planted(crate::planted::Defect::CrossedDialAccepted)
}

#[cfg(test)]
mod tests;
