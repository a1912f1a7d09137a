//! `berth-shim`: the per-container supervisor as a program of its own (see `berth_runtime::shim`).
//!
//! `berth shim` runs the same code, but a shim lives as long as its container, one per container: built apart
//! from the daemon, the API and the registry it maps a fraction of the pages (and of the relocated data every
//! process of a big binary pays for privately), which is most of what a running container costs.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // A spare (`-`) may be given the daemon's cgroup parent, to make its container's cgroup ahead, and the
    // daemon's socket directory, to bind its control socket ahead.
    let (arg, parent, socket_dir) = match args.as_slice() {
        [_, verb, arg] if verb == "shim" => (arg, None, None),
        [_, verb, arg, parent] if verb == "shim" => (arg, Some(parent.as_str()), None),
        [_, verb, arg, parent, dir] if verb == "shim" => {
            (arg, Some(parent.as_str()), Some(dir.as_str()))
        }
        [_, arg] => (arg, None, None),
        _ => {
            eprintln!("usage: berth-shim [shim] - [cgroup-parent [socket-dir]]");
            std::process::exit(2);
        }
    };
    std::process::exit(berth_runtime::shim::main_args(arg, parent, socket_dir));
}
