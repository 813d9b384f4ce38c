//! GraphQL object types, one module each.
//!
//! A type's module holds its fields (the `#[Object]` impl) and the batch loaders of what it
//! loads (key types with their `Loader` impls, see [`crate::graphql::loaders`]). The three types
//! that refer back to each other — a resource names its dock and projects, and docks and projects
//! list resources; projects and operation services list each other — keep their loaded value
//! (`DockNode`, `ProjectNode`, `OperationServiceNode`), loaders and `prime` in a `load` child
//! (`dock/load.rs`, `project/load.rs`, `resource/load.rs`, `operation/load.rs`) that imports no
//! object module of that circle, so the module graph has none.

pub mod action;
pub mod alert;
pub mod audit;
pub mod directory;
pub mod dock;
pub mod events;
pub mod invitation;
pub mod notification;
pub mod operation;
pub mod organization;
pub mod project;
pub mod resource;
pub mod resource_filter;
pub mod resource_list;
pub mod user;
pub mod viewer;
