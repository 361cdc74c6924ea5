//! What `facematch scan` was asked to scan: arguments expanded into items — http(s) URLs as
//! given, files as given (whatever their extension: the gateway judges the bytes), folders
//! walked recursively for files with an image extension. An argument that cannot be read
//! becomes an item that fails on its own, so it never stops the others.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use walkdir::WalkDir;

/// Extensions a folder walk picks up (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// One thing to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A file to upload under its base name.
    File(PathBuf),
    /// A URL the gateway downloads.
    Url(String),
    /// A path that could not be read or walked, and why.
    Unreadable { path: PathBuf, reason: String },
}

impl Item {
    /// The name the gateway records: a file's base name, or the URL.
    pub fn name(&self) -> String {
        match self {
            Self::File(path) | Self::Unreadable { path, .. } => base_name(path),
            Self::Url(url) => url.clone(),
        }
    }

    /// What the user knows the item by: the path as given or walked, or the URL.
    pub fn label(&self) -> String {
        match self {
            Self::File(path) | Self::Unreadable { path, .. } => path.display().to_string(),
            Self::Url(url) => url.clone(),
        }
    }

    /// The file path, for files.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) | Self::Unreadable { path, .. } => Some(path),
            Self::Url(_) => None,
        }
    }
}

/// A path's last component, or the whole path when it has none (`..`, `/`).
pub fn base_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// `http://…` or `https://…`, any case.
pub fn is_url(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// True when a walked file's extension marks it as an image.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|i| e.eq_ignore_ascii_case(i)))
}

/// Expands the command line into items, in argument order; folders in file-name order.
pub fn expand(args: &[OsString]) -> Vec<Item> {
    let mut items = Vec::new();
    for arg in args {
        if let Some(text) = arg.to_str()
            && is_url(text)
        {
            items.push(Item::Url(text.to_owned()));
            continue;
        }
        let path = PathBuf::from(arg);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, &mut items),
            Ok(_) => items.push(Item::File(path)),
            Err(e) => items.push(Item::Unreadable {
                reason: format!("cannot read {}: {e}", path.display()),
                path,
            }),
        }
    }
    items
}

fn walk(dir: &Path, items: &mut Vec<Item>) {
    let walker = WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() && has_image_extension(entry.path()) => {
                items.push(Item::File(entry.into_path()));
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                items.push(Item::Unreadable {
                    reason: format!("cannot read {}: {e}", path.display()),
                    path,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_in_any_case() {
        assert!(is_url("https://x/a.jpg"));
        assert!(is_url("HTTP://x"));
        assert!(!is_url("ftp://x"));
        assert!(!is_url("http.jpg"));
        assert!(!is_url("é"));
    }

    #[test]
    fn image_extensions_ignore_case() {
        for yes in ["a.jpg", "b.JPEG", "c.Png", "d.webp", "e.GIF", "f.bmp"] {
            assert!(has_image_extension(Path::new(yes)), "{yes}");
        }
        for no in ["a.txt", "jpg", "a.jpg.bak", ".hidden"] {
            assert!(!has_image_extension(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn folders_are_walked_and_missing_paths_kept_as_failures() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for name in ["b.JPG", "a.png", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        std::fs::write(sub.join("c.webp"), b"x").expect("write");
        let missing = dir.path().join("missing.jpg");
        let args = vec![
            dir.path().as_os_str().to_owned(),
            missing.as_os_str().to_owned(),
            OsString::from("https://example.invalid/x.jpg"),
        ];
        let items = expand(&args);
        let names: Vec<String> = items.iter().map(Item::name).collect();
        assert_eq!(
            names,
            [
                "a.png",
                "b.JPG",
                "c.webp",
                "missing.jpg",
                "https://example.invalid/x.jpg"
            ]
        );
        assert!(
            matches!(&items[3], Item::Unreadable { reason, .. } if reason.contains("missing.jpg"))
        );
    }
}
