//! The gateway's own outbound connections: what it may contact on a caller's or provider's
//! word ([`guard`]).

pub mod guard;
