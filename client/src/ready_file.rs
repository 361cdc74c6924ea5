//! A file that exists exactly while a long-running command is doing its job, for probes that
//! can only look at the filesystem (`facematch logs` in Kubernetes: `test -f`). Failing to
//! write or remove it is reported on stderr and never stops the command: the probe then tells.

use std::path::PathBuf;

/// The optional ready file; every method is a no-op without a path.
#[derive(Debug)]
pub struct ReadyFile {
    path: Option<PathBuf>,
}

impl ReadyFile {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    /// Creates (or rewrites) the file with `text`.
    pub fn set(&self, text: &str) {
        if let Some(path) = &self.path
            && let Err(e) = std::fs::write(path, text)
        {
            eprintln!("facematch: cannot write ready file {}: {e}", path.display());
        }
    }

    /// Removes the file if it is there.
    pub fn clear(&self) {
        if let Some(path) = &self.path
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!(
                "facematch: cannot remove ready file {}: {e}",
                path.display()
            );
        }
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::ReadyFile;

    #[test]
    fn exists_between_set_and_clear_and_is_gone_after_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ready");
        let ready = ReadyFile::new(Some(path.clone()));
        ready.clear(); // nothing there yet: no complaint
        ready.set("bound");
        assert_eq!(std::fs::read_to_string(&path).expect("ready file"), "bound");
        ready.clear();
        assert!(!path.exists());
        ready.set("bound again");
        drop(ready);
        assert!(!path.exists());
    }

    #[test]
    fn without_a_path_does_nothing() {
        let ready = ReadyFile::new(None);
        ready.set("x");
        ready.clear();
    }
}
