//! What stands between a hostile caller and the server: the settings of every guard (token
//! claims, outbound address checks, budgets, rate limits), the rate limiters, and the budgets of
//! WebSocket connections. The operation pipeline ([`crate::graphql::pipeline`]) applies them.

pub mod rate;
pub mod settings;
pub mod sockets;
