//! The config file on disk during remote config: a new config replaces it atomically (temp
//! file, fsync, rename, fsync of the directory) and the replaced one is kept as
//! `<file>.previous`; a rollback swaps the two. A power cut at any moment leaves a whole
//! config file, old or new, never a torn one.
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the config file could not be changed (nothing was, unless said).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("there is no previous config ({0}) to roll back to")]
    NoPrevious(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError::Io { what, path, source }
}

/// `<file>.previous`: the config that ran before the current one.
pub fn previous_path(path: &Path) -> PathBuf {
    with_suffix(path, ".previous")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`:
/// a temp file next to it, fsync, rename over it, fsync of the directory. The file mode of an
/// existing `path` is kept (a config may be readable by root only).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("cannot create", &tmp))?;
    if let Ok(meta) = std::fs::metadata(path) {
        f.set_permissions(meta.permissions())
            .map_err(io("cannot set the mode of", &tmp))?;
    }
    f.write_all(bytes).map_err(io("cannot write", &tmp))?;
    f.sync_all().map_err(io("cannot sync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("cannot rename over", path))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync the directory", dir))
}

/// Puts `new` in `path`, keeping what was there as `<file>.previous`.
pub fn replace_keeping_previous(path: &Path, new: &str) -> Result<(), FileError> {
    let current = std::fs::read(path).map_err(io("cannot read", path))?;
    write_atomic(&previous_path(path), &current)?;
    write_atomic(path, new.as_bytes())
}

/// Rollback: `<file>.previous` goes back into `path`, and what was in `path` becomes
/// `<file>.previous` (so `.previous` is always the config that ran before the current one).
pub fn swap_with_previous(path: &Path) -> Result<(), FileError> {
    let prev_path = previous_path(path);
    let previous = match std::fs::read(&prev_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::NoPrevious(prev_path))
        }
        Err(e) => return Err(io("cannot read", &prev_path)(e)),
    };
    let current = std::fs::read(path).map_err(io("cannot read", path))?;
    write_atomic(&prev_path, &current)?;
    write_atomic(path, &previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_previous_and_rollback_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("citygate.toml");
        std::fs::write(&cfg, "one").unwrap();
        replace_keeping_previous(&cfg, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "two");
        assert_eq!(std::fs::read_to_string(previous_path(&cfg)).unwrap(), "one");
        assert!(!dir.path().join("citygate.toml.tmp").exists());
        swap_with_previous(&cfg).unwrap();
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(previous_path(&cfg)).unwrap(), "two");
    }

    #[test]
    fn rollback_without_a_previous_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "one").unwrap();
        assert!(matches!(
            swap_with_previous(&cfg),
            Err(FileError::NoPrevious(_))
        ));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "one");
    }

    #[test]
    fn the_mode_of_the_config_is_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "one").unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&cfg, b"two").unwrap();
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
