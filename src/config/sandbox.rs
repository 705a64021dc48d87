//! `ASK_SANDBOX`, `ASK_SANDBOX_PATHS` and `ASK_SANDBOX_WRITE_PATHS`: how the
//! `ASK_COMMAND` program is confined (SPEC §5.1).

use std::path::PathBuf;

use super::ConfigError;

/// Whether the command engine runs under Landlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    Landlock,
    /// The operator accepts an unconfined command (warned at every start).
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    pub mode: SandboxMode,
    /// Extra directories (or files) the program may read.
    pub read_paths: Vec<PathBuf>,
    /// Extra directories the program may write, besides its scratch dir.
    pub write_paths: Vec<PathBuf>,
}

impl SandboxSettings {
    pub fn parse(
        mode: Option<&str>,
        read_paths: Option<&str>,
        write_paths: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let mode = match mode.map(str::to_ascii_lowercase).as_deref() {
            None | Some("landlock") => SandboxMode::Landlock,
            Some("off") => SandboxMode::Off,
            Some(_) => {
                return Err(ConfigError::new(
                    "ASK_SANDBOX",
                    "use landlock (the default) or off",
                ))
            }
        };
        Ok(Self {
            mode,
            read_paths: path_list("ASK_SANDBOX_PATHS", read_paths)?,
            write_paths: path_list("ASK_SANDBOX_WRITE_PATHS", write_paths)?,
        })
    }
}

/// A list of absolute paths separated by commas (as SPEC §1 writes every
/// list) or by `:` (like `PATH`).
fn path_list(name: &str, value: Option<&str>) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut paths = Vec::new();
    let entries = value
        .split(',')
        .flat_map(|part| std::env::split_paths(part.trim()));
    for (index, path) in entries.enumerate() {
        if path.as_os_str().is_empty() {
            continue;
        }
        if !path.is_absolute() {
            return Err(ConfigError::new(
                name,
                format!(
                    "entry {} ('{}') is not an absolute path; separate absolute paths with ',' or ':'",
                    index + 1,
                    path.display()
                ),
            ));
        }
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_is_on_unless_turned_off_and_nothing_else_is_accepted() {
        let parse = |mode| SandboxSettings::parse(mode, None, None).map(|s| s.mode);
        assert_eq!(parse(None).unwrap(), SandboxMode::Landlock);
        assert_eq!(parse(Some("landlock")).unwrap(), SandboxMode::Landlock);
        assert_eq!(parse(Some("OFF")).unwrap(), SandboxMode::Off);
        let err = parse(Some("no")).unwrap_err().to_string();
        assert_eq!(err, "ASK_SANDBOX: use landlock (the default) or off");
    }

    #[test]
    fn sandbox_paths_must_be_absolute() {
        let ok = SandboxSettings::parse(None, Some("/opt/tools:/srv/ref"), Some("/home/a/.cache"))
            .unwrap();
        assert_eq!(
            ok.read_paths,
            [PathBuf::from("/opt/tools"), PathBuf::from("/srv/ref")]
        );
        assert_eq!(ok.write_paths, [PathBuf::from("/home/a/.cache")]);
        let commas =
            SandboxSettings::parse(None, Some("/opt/tools, /srv/ref:/srv/more"), None).unwrap();
        assert_eq!(
            commas.read_paths,
            [
                PathBuf::from("/opt/tools"),
                PathBuf::from("/srv/ref"),
                PathBuf::from("/srv/more")
            ]
        );
        let err = SandboxSettings::parse(None, Some("/opt:tools"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ASK_SANDBOX_PATHS: entry 2 ('tools')"),
            "{err}"
        );
    }
}
