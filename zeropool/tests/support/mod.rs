//! Running the `zeropool` binary from the crate's integration tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` (in `dir`, if given), removing every
/// inherited variable whose name starts with one of `clear` (compared in
/// upper case) and setting `vars`. Returns the exit code, stdout and stderr.
pub fn run_zeropool(
    args: &[&str],
    dir: Option<&Path>,
    clear: &[&str],
    vars: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zeropool"));
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy().to_ascii_uppercase();
        if clear.iter().any(|prefix| name.starts_with(prefix)) {
            cmd.env_remove(key);
        }
    }
    cmd.envs(vars.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}
