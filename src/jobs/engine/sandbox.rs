//! The Landlock ruleset the `ASK_COMMAND` program runs under (SPEC §5.1):
//! it may read the workspace, the system's read-only directories and
//! `ASK_SANDBOX_PATHS`, write only a scratch directory of its own (and
//! `ASK_SANDBOX_WRITE_PATHS`), and reach `DATA_DIR` by no path or symlink.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};
use tempfile::TempDir;

use crate::config::{SandboxMode, SandboxSettings};

/// The newest Landlock ABI whose rights are requested (older kernels get
/// what they support, best effort; ABI 1 at least is required at start).
const TARGET_ABI: ABI = ABI::V6;

/// Read-only system locations; those missing on this machine are skipped.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/nix/store",
    "/run/systemd/resolve",
];
// `/proc` is left out on purpose: Landlock does not stop a confined
// program from reading `/proc/<Portico's pid>/environ`, which holds the
// keys when they are set in the environment.

/// Device files a program may read and write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "ASK_COMMAND runs under a Landlock sandbox, and this kernel does not provide Landlock \
         (Linux 5.13 or later, with landlock in the boot parameter lsm=); enable it, or set \
         ASK_SANDBOX=off to accept that the program can read everything Portico can"
    )]
    Unavailable,
    #[error(
        "{variable} '{path}' overlaps the data directory {data_dir}, which holds keys and \
         sessions; the ASK_COMMAND program must not reach it — choose another path"
    )]
    Overlap {
        variable: &'static str,
        path: PathBuf,
        data_dir: PathBuf,
    },
    #[error("{variable} entry '{path}' does not exist; create it or remove it from {variable}")]
    Missing {
        variable: &'static str,
        path: PathBuf,
    },
}

/// Where the ASK_COMMAND program may go; built once at start.
#[derive(Debug, Clone)]
pub struct Sandbox {
    data_dir: PathBuf,
    read_paths: Vec<PathBuf>,
    write_paths: Vec<PathBuf>,
}

/// The Landlock ABI the running kernel offers, if any.
pub fn kernel_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // only returns a number; it touches no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi >= 1).then_some(abi as i32)
}

fn overlaps(path: &Path, data_dir: &Path) -> bool {
    path.starts_with(data_dir) || data_dir.starts_with(path)
}

/// Decides at start how the ASK_COMMAND program is confined: `Ok(None)`
/// when the operator turned the sandbox off (warned here, at every start),
/// `Err` when it cannot be had. `probe` says which Landlock ABI the kernel
/// offers.
pub fn prepare(
    settings: &SandboxSettings,
    data_dir: &Path,
    probe: impl FnOnce() -> Option<i32>,
) -> Result<Option<Sandbox>, SandboxError> {
    if settings.mode == SandboxMode::Off {
        tracing::warn!(
            "ASK_SANDBOX=off: the ASK_COMMAND program runs unconfined and can read and change \
             everything Portico can, including the keys and sessions in DATA_DIR"
        );
        return Ok(None);
    }
    probe().ok_or(SandboxError::Unavailable)?;
    let data_dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_owned());
    let mut read_paths = Vec::new();
    for system in SYSTEM_READ.iter().map(PathBuf::from) {
        let Ok(path) = system.canonicalize() else {
            continue;
        };
        if overlaps(&path, &data_dir) {
            return Err(SandboxError::Overlap {
                variable: "The system directory",
                path,
                data_dir,
            });
        }
        read_paths.push(path);
    }
    let checked = |variable: &'static str, paths: &[PathBuf]| {
        let mut out = Vec::new();
        for path in paths {
            let resolved = path.canonicalize().map_err(|_| SandboxError::Missing {
                variable,
                path: path.clone(),
            })?;
            if overlaps(&resolved, &data_dir) {
                return Err(SandboxError::Overlap {
                    variable,
                    path: path.clone(),
                    data_dir: data_dir.clone(),
                });
            }
            out.push(resolved);
        }
        Ok(out)
    };
    read_paths.extend(checked("ASK_SANDBOX_PATHS", &settings.read_paths)?);
    let write_paths = checked("ASK_SANDBOX_WRITE_PATHS", &settings.write_paths)?;
    let temp = std::env::temp_dir();
    let temp = temp.canonicalize().unwrap_or(temp);
    if temp.starts_with(&data_dir) {
        return Err(SandboxError::Overlap {
            variable: "TMPDIR",
            path: temp,
            data_dir,
        });
    }
    Ok(Some(Sandbox {
        data_dir,
        read_paths,
        write_paths,
    }))
}

/// One run's confinement: its scratch directory and, when sandboxed, the
/// ruleset to apply in the child. Both live until the value is dropped.
#[derive(Debug)]
pub struct Confinement {
    pub scratch: TempDir,
    ruleset: Option<OwnedFd>,
}

impl Confinement {
    /// A scratch directory and no ruleset (`ASK_SANDBOX=off`).
    pub fn unconfined() -> Result<Self, String> {
        Ok(Self {
            scratch: scratch_dir()?,
            ruleset: None,
        })
    }

    /// The ruleset's descriptor, for `restrict_in_child`.
    pub fn ruleset_fd(&self) -> Option<RawFd> {
        self.ruleset.as_ref().map(AsRawFd::as_raw_fd)
    }
}

fn scratch_dir() -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix("portico-job-")
        .tempdir()
        .map_err(|err| format!("cannot create the program's scratch directory: {err}"))
}

impl Sandbox {
    /// Builds the ruleset for a run in `workspace` (done in the parent, so
    /// the child only makes two system calls between fork and exec).
    pub fn confine(&self, workspace: &Path) -> Result<Confinement, String> {
        let workspace = workspace
            .canonicalize()
            .map_err(|err| format!("cannot open the workspace: {err}"))?;
        if self.data_dir.starts_with(&workspace) || workspace == self.data_dir {
            return Err("the workspace holds Portico's data directory; refusing to run".into());
        }
        let scratch = scratch_dir()?;
        let mut readable = self.read_paths.clone();
        readable.push(workspace);
        let mut writable = self.write_paths.clone();
        writable.push(scratch.path().to_owned());
        writable.extend(DEVICES.iter().map(PathBuf::from));
        let ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .and_then(|r| r.scope(Scope::Signal | Scope::AbstractUnixSocket))
            .and_then(|r| r.create())
            .and_then(|r| {
                r.add_rules(path_beneath_rules(
                    &readable,
                    AccessFs::from_read(TARGET_ABI),
                ))
            })
            .and_then(|r| {
                r.add_rules(path_beneath_rules(
                    &writable,
                    AccessFs::from_all(TARGET_ABI),
                ))
            })
            .map_err(|err| format!("cannot build the sandbox for the program: {err}"))?;
        let fd: Option<OwnedFd> = ruleset.into();
        let fd = fd.ok_or("the kernel no longer offers Landlock; refusing to run unconfined")?;
        Ok(Confinement {
            scratch,
            ruleset: Some(fd),
        })
    }
}

/// Applies a ruleset to the calling process. Only for `pre_exec`: it makes
/// two system calls and allocates nothing.
pub fn restrict_in_child(ruleset: RawFd) -> std::io::Result<()> {
    // SAFETY: prctl(2) and landlock_restrict_self(2) are plain system calls
    // on integers; both are async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SandboxMode) -> SandboxSettings {
        SandboxSettings {
            mode,
            read_paths: Vec::new(),
            write_paths: Vec::new(),
        }
    }

    #[test]
    fn without_landlock_the_command_engine_refuses_to_start() {
        let data = tempfile::tempdir().unwrap();
        let outcome = prepare(&settings(SandboxMode::Landlock), data.path(), || None);
        assert!(matches!(outcome, Err(SandboxError::Unavailable)));
        assert!(outcome
            .unwrap_err()
            .to_string()
            .contains("set ASK_SANDBOX=off"));
    }

    #[test]
    fn with_the_sandbox_off_it_starts_unconfined_even_without_landlock() {
        let data = tempfile::tempdir().unwrap();
        let outcome = prepare(&settings(SandboxMode::Off), data.path(), || None);
        assert!(matches!(outcome, Ok(None)));
    }

    #[test]
    fn with_landlock_it_starts_confined() {
        let data = tempfile::tempdir().unwrap();
        let outcome = prepare(&settings(SandboxMode::Landlock), data.path(), || Some(7));
        assert!(matches!(outcome, Ok(Some(_))));
    }

    #[test]
    fn a_sandbox_path_that_reaches_the_data_dir_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let data = parent.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for (read, write) in [
            (vec![parent.path().to_owned()], vec![]),
            (vec![], vec![data.join(".")]),
        ] {
            let settings = SandboxSettings {
                mode: SandboxMode::Landlock,
                read_paths: read,
                write_paths: write,
            };
            let outcome = prepare(&settings, &data, || Some(7));
            assert!(
                matches!(outcome, Err(SandboxError::Overlap { .. })),
                "{outcome:?}"
            );
        }
    }
}
