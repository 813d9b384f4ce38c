//! What stands between a hostile caller and the server: the settings of every guard (token
//! claims, outbound address checks, budgets, rate limits) in one place, read once at start-up.

pub mod settings;
