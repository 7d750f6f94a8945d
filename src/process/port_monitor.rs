//! Monitoring a typed channel (Cloud Haskell's `monitorPort`): a
//! [`PortMonitorNotification`] arrives, exactly once, when the process owning a
//! [`SendPort`]'s channel dies or the connection to its node is lost.
//!
//! A small helper process on the watcher's node monitors the owner (and the watcher,
//! so that it ends with it) and turns the process notification into the port's. It is
//! a process of its own so that the node's monitor machinery stays the one place where
//! deaths are reported; it shows in the node's processes and management events.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::channel::{SendPort, SendPortId};
use super::id::{DiedReason, MonitorRef};
use super::signals::ProcessMonitorNotification;
use super::Process;
use crate::match_if;

/// Sent to a process that monitors a port ([`Process::monitor_port`]) when the port's
/// owner dies or its node is lost. Exactly one per monitor, unless removed first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PortMonitorNotification {
    /// The reference `monitor_port` returned.
    pub monitor_ref: MonitorRef,
    /// The port.
    pub port: SendPortId,
    /// Why its owner is gone.
    pub reason: DiedReason,
}

impl Process {
    /// Monitors `port`: exactly one [`PortMonitorNotification`] arrives when its owner
    /// dies (at once, with [`DiedReason::UnknownProcess`], if it is already dead) or the
    /// connection to the owner's node is lost ([`DiedReason::Disconnect`]).
    ///
    /// ```
    /// use hyperion::PortMonitorNotification;
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let me = p.self_pid();
    /// let owner = p.spawn_local(move |o| async move {
    ///     let (tx, _rx) = o.new_chan::<u32>();
    ///     o.send(me, tx);
    ///     o.expect::<()>().await;
    /// });
    /// let port: hyperion::SendPort<u32> = p.expect().await;
    /// let watch = p.monitor_port(port);
    /// p.send(owner, ());
    /// let n: PortMonitorNotification = p.expect().await;
    /// assert_eq!((n.monitor_ref, n.port), (watch, port.id()));
    /// # }).unwrap();
    /// ```
    pub fn monitor_port<T>(&self, port: SendPort<T>) -> MonitorRef {
        let port = port.id();
        let watcher = self.self_pid();
        let monitor_ref = MonitorRef {
            target: port.owner,
            id: self.node().state().unique(),
        };
        // The helper's monitors are made now, before it first runs: a death from this
        // moment on is reported, not mistaken for an unknown process.
        let monitors: Rc<Cell<Option<(MonitorRef, MonitorRef)>>> = Rc::default();
        let monitors_made = monitors.clone();
        let helper = self.spawn_local(move |helper| async move {
            let (on_owner, on_watcher) = monitors_made
                .take()
                .expect("monitor_port makes the monitors before the helper runs");
            let reason = helper
                .receive_wait(vec![
                    match_if(
                        move |n: &ProcessMonitorNotification| n.monitor_ref == on_owner,
                        |n: ProcessMonitorNotification| Some(n.reason),
                    ),
                    match_if(
                        move |n: &ProcessMonitorNotification| n.monitor_ref == on_watcher,
                        |_| None,
                    ),
                ])
                .await;
            helper.local_node().state().remove_port_monitor(monitor_ref);
            if let Some(reason) = reason {
                let notification = PortMonitorNotification {
                    monitor_ref,
                    port,
                    reason,
                };
                helper.send(watcher, notification);
            }
        });
        let mut state = self.node().state();
        let on_owner = state.monitor(helper, port.owner);
        let on_watcher = state.monitor(helper, watcher);
        monitors.set(Some((on_owner, on_watcher)));
        state.add_port_monitor(monitor_ref, helper);
        monitor_ref
    }

    /// Removes a port monitor. Afterwards no notification for it is received, even one
    /// that was already queued.
    pub fn unmonitor_port(&self, monitor_ref: MonitorRef) {
        let helper = self.node().state().remove_port_monitor(monitor_ref);
        if let Some(helper) = helper {
            self.kill(helper, "port monitor removed");
        }
        // Whatever the helper already sent is withdrawn.
        let mut state = self.node().state();
        let slot = self.running_slot(&mut state);
        let before = slot.mailbox.len();
        slot.mailbox.retain_mut(|message| {
            message
                .peek::<PortMonitorNotification>()
                .is_none_or(|n| n.monitor_ref != monitor_ref)
        });
        if slot.mailbox.len() != before {
            slot.mailbox_removals += 1;
        }
    }
}
