//! GraphQL object types, one module each.

pub mod organization;
pub mod user;
pub mod viewer;
