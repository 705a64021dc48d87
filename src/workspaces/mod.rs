//! Workspaces: the directories and git repositories questions are asked
//! about, kept in `workspaces.json`. Only admins add or remove them.

mod credentials;
pub mod git;
mod registry;
pub(crate) mod routes;
pub mod store;
mod store_redis;

pub use credentials::redacted;
pub use registry::{NewWorkspace, Registry, Workspace, WorkspaceError, WorkspaceId};
pub use routes::api_routes;
pub use store::{FileWorkspaceStore, WorkspaceStore};
pub use store_redis::RedisWorkspaceStore;
