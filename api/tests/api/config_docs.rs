//! The README's configuration table lists every setting with its flag and default, exactly
//! as the code defines them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::CommandFactory;
use syncchat_api::config::Cli;

/// (env var → (flag, default)) from the code.
fn from_code() -> BTreeMap<String, (String, String)> {
    let cmd = Cli::command();
    cmd.get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let flag = format!("--{}", arg.get_long()?);
            let default = arg
                .get_default_values()
                .first()
                .map_or_else(|| "(unset)".to_owned(), |v| v.to_string_lossy().into_owned());
            Some((env, (flag, default)))
        })
        .collect()
}

/// (env var → (flag, default)) from the README table rows `| `VAR` | `--flag` | `default` | ... |`.
fn from_readme() -> BTreeMap<String, (String, String)> {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<String> = line.split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect();
            let (env, flag, default) = (cells.get(1)?, cells.get(2)?, cells.get(3)?);
            flag.starts_with("--").then(|| (env.clone(), (flag.clone(), default.clone())))
        })
        .collect()
}

#[test]
fn readme_config_table_matches_the_code() {
    let code = from_code();
    let readme = from_readme();
    assert!(code.len() >= 15, "the code defines settings: {code:?}");
    assert_eq!(readme, code, "README configuration table and config.rs disagree");
}
