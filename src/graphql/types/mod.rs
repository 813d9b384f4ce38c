//! GraphQL object types, one module each.

pub mod alert;
pub mod audit;
pub mod directory;
pub mod dock;
pub mod events;
pub mod invitation;
pub mod organization;
pub mod project;
pub mod resource;
pub mod resource_list;
pub mod user;
pub mod viewer;
