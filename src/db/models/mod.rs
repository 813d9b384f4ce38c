//! One module per table (or small group of tables): row types and the queries over them.

pub mod access;
pub mod action;
pub mod alert;
pub mod api_key;
pub mod audit;
pub mod credentials;
pub mod directory;
pub mod dock;
pub mod health;
pub mod health_interval;
pub mod invitation;
pub mod keyset;
pub mod link;
pub mod membership;
pub mod migration;
pub mod notification;
pub mod operation;
pub mod organization;
pub mod probe;
pub mod project;
pub mod resource;
pub mod sync;
pub mod user;
pub mod visibility;
