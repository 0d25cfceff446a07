//! The command line: `--secs N`, `--threads N`, `--seed N`, `--help`.

use std::fmt;

/// The first line of [`USAGE`].
pub const USAGE_LINE: &str = "usage: soak [--secs N] [--threads N] [--seed N]";

pub const USAGE: &str = "\
usage: soak [--secs N] [--threads N] [--seed N]

Drives every public operation of zeropool's pools from worker threads and
async tasks, in phases that each draw a new configuration, and checks the
pools after every phase. The last line is a summary ending in
`violations=N`; the exit code is 1 when N > 0, 2 for bad arguments.

  --secs N      run for about N seconds (default 60)
  --threads N   worker threads per phase, at least 2 (default 2)
  --seed N      seed of every random choice (default: from the clock;
                always printed, to replay a run's choices)
  -h, --help    this help";

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub secs: u64,
    pub threads: usize,
    pub seed: Option<u64>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
}

/// A bad command line.
#[derive(Debug, PartialEq, Eq)]
pub struct BadArgs(pub String);

impl fmt::Display for BadArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, BadArgs> {
    let mut out = Args {
        secs: 60,
        threads: 2,
        seed: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<u64, BadArgs> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| BadArgs(format!("{name} needs a value")))?;
            v.parse::<u64>()
                .map_err(|_| BadArgs(format!("{name} takes a whole number, not {v:?}")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--secs" => {
                out.secs = value("--secs")?;
                if out.secs == 0 {
                    return Err(BadArgs("--secs must be at least 1".into()));
                }
            }
            "--threads" => {
                let n = value("--threads")?;
                if !(2..=256).contains(&n) {
                    return Err(BadArgs(format!("--threads must be from 2 to 256, not {n}")));
                }
                out.threads = n as usize;
            }
            "--seed" => out.seed = Some(value("--seed")?),
            _ => return Err(BadArgs(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(Command::Run(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Command, BadArgs> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_forms() {
        let run = |s| match parse_str(s) {
            Ok(Command::Run(a)) => a,
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(
            run(""),
            Args {
                secs: 60,
                threads: 2,
                seed: None
            }
        );
        let a = run("--secs 30 --threads=3 --seed 7");
        assert_eq!((a.secs, a.threads, a.seed), (30, 3, Some(7)));
        assert_eq!(parse_str("-h"), Ok(Command::Help));
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            "--secs",
            "--secs 0",
            "--secs x",
            "--threads 1",
            "--seed -1",
            "--frob",
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
