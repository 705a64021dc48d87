//! Workspaces: the directories and git repositories questions are asked
//! about, kept in `workspaces.json`. Only admins add or remove them.
//! Layer 2, a domain area (README, "The module map"): the API is `api::workspaces`.

mod credentials;
pub mod git;
mod record;
mod registry;
pub mod store;
mod store_redis;

pub use credentials::redacted;
pub use record::{Workspace, WorkspaceId};
pub use registry::{NewWorkspace, Registry, WorkspaceError};
pub use store::{FileWorkspaceStore, WorkspaceStore};
pub use store_redis::RedisWorkspaceStore;
