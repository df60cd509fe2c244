//! A headless Chromium for the tests that drive a page: found, launched with the flags this
//! kind of machine needs, on a fresh profile.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use headless_chrome::{Browser, LaunchOptions};

/// A running headless browser and its throw-away profile (removed after the browser stops).
pub(crate) struct TestBrowser {
    // Declared first so that it is dropped (the process stopped) before the profile is removed.
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl std::ops::Deref for TestBrowser {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

/// Where Chromium is: `$MIA_CHROMIUM`, else `/usr/bin/chromium`, else `chromium` (or
/// `chromium-browser`) on `PATH`.
pub(crate) fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MIA_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let usual = Path::new("/usr/bin/chromium");
    if usual.is_file() {
        return Some(usual.to_path_buf());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|path| path.is_file())
}

/// Launches a headless Chromium for `test`, or returns `None` when there is none on this
/// machine. Under CI (`$CI` set) a missing browser fails the test instead: `.ci/run` installs
/// it, so its absence there is a broken setup, not a reason to skip.
pub(crate) fn browser(test: &str) -> Option<TestBrowser> {
    let Some(path) = find_chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: no Chromium found ($MIA_CHROMIUM, /usr/bin/chromium, chromium on PATH); \
             .ci/run installs it (apt-get install chromium)"
        );
        #[expect(
            clippy::print_stderr,
            reason = "a skipped test says so where cargo test shows it"
        )]
        let () = eprintln!(
            "{test}: SKIPPED, no Chromium found ($MIA_CHROMIUM, /usr/bin/chromium, chromium on \
             PATH); install it (apt-get install chromium) or set CI=1 to make this a failure"
        );
        return None;
    };
    let profile = tempfile::Builder::new()
        .prefix("mia-chromium-")
        .tempdir()
        .expect("temporary profile folder");
    let args: Vec<&OsStr> = [
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .headless(true)
        // Containers run tests as root, where Chromium's sandbox cannot start.
        .sandbox(false)
        .enable_gpu(false)
        .window_size(Some((1400, 1000)))
        .path(Some(path.clone()))
        .user_data_dir(Some(profile.path().to_path_buf()))
        .args(args)
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    let browser = Browser::new(options)
        .unwrap_or_else(|e| panic!("{test}: cannot launch {}: {e:#}", path.display()));
    Some(TestBrowser {
        browser,
        _profile: profile,
    })
}
