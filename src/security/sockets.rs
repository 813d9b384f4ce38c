//! Budgets of WebSocket connections: how many may wait for `connection_init` at once, how many
//! one principal (user or API key) may hold, and how many subscriptions one may run. Each
//! admission is a guard that gives its place back when dropped, so a connection that ends in any
//! way releases what it held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::error::ApiError;

/// The limits of WebSocket connections.
#[derive(Clone, Copy, Debug)]
pub struct SocketLimits {
    /// Connections that have not yet sent `connection_init`, on this replica.
    pub pending: usize,
    /// Connections one principal may hold on this replica.
    pub per_principal: usize,
    /// Subscriptions one connection may run at once.
    pub subscriptions: usize,
    /// The largest message accepted before `connection_init` (bytes).
    pub init_message: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            pending: 64,
            per_principal: 32,
            subscriptions: 100,
            init_message: 16 * 1024,
        }
    }
}

/// This replica's connections.
pub struct Sockets {
    limits: SocketLimits,
    pending: Arc<AtomicUsize>,
    by_principal: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Sockets {
    pub fn new(limits: SocketLimits) -> Self {
        Self {
            limits,
            pending: Arc::default(),
            by_principal: Arc::default(),
        }
    }

    pub fn limits(&self) -> &SocketLimits {
        &self.limits
    }

    /// A place for a connection until it sends `connection_init`; `None` when too many wait.
    pub fn pending(&self) -> Option<PendingSlot> {
        let taken = self.pending.fetch_add(1, Ordering::AcqRel);
        let slot = PendingSlot(self.pending.clone());
        (taken < self.limits.pending).then_some(slot)
    }

    /// A place for an authenticated connection of `principal`, with its subscription budget.
    pub fn connect(&self, principal: Uuid) -> Result<SocketBudget, ApiError> {
        let mut counts = self
            .by_principal
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("socket registry poisoned")))?;
        let held = counts.entry(principal).or_default();
        if *held >= self.limits.per_principal {
            return Err(ApiError::RateLimited(format!(
                "this caller already holds {} connections; retry after 1 s",
                self.limits.per_principal
            )));
        }
        *held += 1;
        Ok(SocketBudget(Arc::new(Budget {
            principal,
            registry: self.by_principal.clone(),
            subscriptions: AtomicUsize::new(0),
            max_subscriptions: self.limits.subscriptions,
        })))
    }

    /// Connections held per principal right now (for tests).
    pub fn held(&self, principal: Uuid) -> usize {
        self.by_principal
            .lock()
            .map(|c| c.get(&principal).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// A connection waiting for `connection_init`.
pub struct PendingSlot(Arc<AtomicUsize>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An authenticated connection's place and subscription budget (in its session data).
#[derive(Clone)]
pub struct SocketBudget(Arc<Budget>);

struct Budget {
    principal: Uuid,
    registry: Arc<Mutex<HashMap<Uuid, usize>>>,
    subscriptions: AtomicUsize,
    max_subscriptions: usize,
}

impl Drop for Budget {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.registry.lock()
            && let Some(held) = counts.get_mut(&self.principal)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.principal);
            }
        }
    }
}

impl SocketBudget {
    /// A place for one more subscription on this connection.
    pub fn subscription(&self) -> Result<SubscriptionSlot, ApiError> {
        let taken = self.0.subscriptions.fetch_add(1, Ordering::AcqRel);
        let slot = SubscriptionSlot(self.0.clone());
        if taken >= self.0.max_subscriptions {
            return Err(ApiError::RateLimited(format!(
                "a connection may run {} subscriptions at once; retry after 1 s",
                self.0.max_subscriptions
            )));
        }
        Ok(slot)
    }
}

/// One running subscription's place.
pub struct SubscriptionSlot(Arc<Budget>);

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_given_back() {
        let sockets = Sockets::new(SocketLimits {
            pending: 1,
            per_principal: 2,
            subscriptions: 1,
            init_message: 1,
        });
        let first = sockets.pending().expect("a place");
        assert!(sockets.pending().is_none());
        drop(first);
        assert!(sockets.pending().is_some());

        let who = Uuid::new_v4();
        let a = sockets.connect(who).expect("first");
        let b = sockets.connect(who).expect("second");
        assert!(sockets.connect(who).is_err());
        assert!(sockets.connect(Uuid::new_v4()).is_ok());
        drop(b);
        assert_eq!(sockets.held(who), 1);

        let sub = a.subscription().expect("one subscription");
        assert!(a.subscription().is_err());
        drop(sub);
        assert!(a.subscription().is_ok());
        drop(a);
        assert_eq!(sockets.held(who), 0);
    }
}
