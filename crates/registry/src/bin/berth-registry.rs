//! A standalone `berth-registry` binary (same as `berth registry ...`), used by the tests to run real server
//! processes (and to kill them mid-push).

fn main() {
    let mut args: Vec<String> = vec!["registry".to_string()];
    args.extend(std::env::args().skip(1));
    std::process::exit(berth_registry::cli_main(&args));
}
