//! [`Serial`]: an object whose fields are resolved one after another instead of concurrently.
//!
//! async-graphql resolves an object's fields concurrently: every object of a response gets a set
//! of futures to poll (a task, a waker and its allocations per field). Where every field is
//! already in memory — the dashboard's resources, their health and dock, all loaded up front by
//! the look-ahead-primed loaders — that machinery is most of the object's cost and the
//! concurrency buys nothing. Lists still resolve their items concurrently, so a loader still sees
//! every item's key in one batch.
//!
//! The field futures async-graphql moves onto the heap, one per field, are all as large as the
//! object's largest: a field that waits on the database therefore boxes its own wait
//! (`Box::pin(…).await`), so that `name` or `status` does not copy a loader's state around.
//!
//! Object types take the derive's own `#[Object(serial)]`; interfaces have no such option, and a
//! field returning one wraps it in [`Serial`]. The schema is unchanged: `Serial<T>` is `T`.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container_serial};
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

/// `T`, its fields resolved one after another.
pub struct Serial<'a, T: ?Sized>(pub &'a T);

impl<T: ContainerType + ?Sized> OutputType for Serial<'_, T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_container_serial(ctx, self.0).await
    }
}
