//! The adversarial suite: what a hostile caller tries, each a test that fails if the hole
//! reopens. One module per concern; rows A–K of the hardening review are named in each test's
//! doc comment. Every test runs over both transports where the concern applies.

mod budgets;
mod outbound;
mod pipeline;
mod privilege;
mod rbac;
mod scope;
mod tokens;
