//! The flags of `run` and `create`, and the `/containers/create` body they become (the docker CLI's
//! mapping: `-v` binds and anonymous volumes, `--mount`, `-p`, networks, resources, health checks...).

use crate::cmd_container::go_duration_ns;
use crate::format::human;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long)]
    pub pull: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// IMAGE [COMMAND] [ARG...]: options end at the image, as with Docker (`run img -c x` passes `-c`).
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub positional: Vec<String>,
    /// The image (from `positional`, see [`CreateArgs::split`]).
    #[arg(skip)]
    pub image: String,
    /// Command and arguments (from `positional`).
    #[arg(skip)]
    pub command: Vec<String>,
}

impl CreateArgs {
    /// Takes the image and the command out of the positional arguments.
    pub fn split(&mut self) {
        if !self.positional.is_empty() {
            let mut p = std::mem::take(&mut self.positional);
            self.image = p.remove(0);
            self.command = p;
        }
    }
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

fn parse_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.contains('=') {
            out.push(l.to_string());
        } else if let Ok(v) = std::env::var(l) {
            out.push(format!("{l}={v}"));
        }
    }
    Ok(out)
}

/// `--env-file` files, then `-e` values (a bare `KEY` takes the caller's value), as docker merges them.
pub fn collect_env(env_files: &[String], env: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in env_files {
        out.extend(parse_env_file(f)?);
    }
    for e in env {
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    }
    Ok(out)
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, read the way the docker CLI reads it.
pub(crate) fn parse_device(s: &str) -> Result<Value> {
    let mode_ok = |m: &str| !m.is_empty() && m.len() <= 3 && m.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = s.split(':').collect();
    let (host, inside, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, m] if mode_ok(m) => (*h, *h, *m),
        [h, c] => (*h, *c, "rwm"),
        [h, c, m] if mode_ok(m) => (*h, *c, *m),
        _ => bail!("invalid device specification: {s}"),
    };
    if host.is_empty() || !inside.starts_with('/') {
        bail!("invalid device specification: {s}");
    }
    Ok(json!({"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}))
}

fn parse_ulimit(s: &str) -> Result<Value> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let n = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit argument: {s}"))
    };
    let (soft, hard) = (n(soft)?, n(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = s.split_once(':').unwrap_or((s, "0"));
    if !["no", "always", "on-failure", "unless-stopped"].contains(&name) {
        bail!("invalid restart policy '{name}'");
    }
    Ok(
        json!({"Name": name, "MaximumRetryCount": count.parse::<i64>().map_err(|_| anyhow!("maximum retry count must be an integer"))?}),
    )
}

/// Build the `/containers/create` body from the flags, as the docker CLI does.
pub fn create_body(a: &CreateArgs, attached: bool) -> Result<Value> {
    let env = collect_env(&a.env_file, &a.env)?;
    let mut labels = Map::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), json!(v));
    }
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (k, v) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(k.to_string(), json!(v));
    }
    let mem = a
        .memory
        .as_deref()
        .map(human::parse_bytes)
        .transpose()
        .map_err(|e| anyhow!("invalid argument for --memory: {e}"))?;
    let swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(s) => Some(
            human::parse_bytes(s)
                .map_err(|e| anyhow!("invalid argument for --memory-swap: {e}"))?,
        ),
        None => None,
    };
    let nano_cpus = match &a.cpus {
        Some(c) => {
            let f: f64 = c
                .parse()
                .map_err(|_| anyhow!("invalid argument \"{c}\" for \"--cpus\" flag"))?;
            Some((f * 1e9).round() as i64)
        }
        None => None,
    };
    let mut security_opt = Vec::new();
    for s in &a.security_opt {
        match s.split_once(['=', ':']) {
            Some(("seccomp", p)) if p != "unconfined" => {
                let content = std::fs::read_to_string(p)
                    .with_context(|| format!("opening seccomp profile ({p}) failed"))?;
                security_opt.push(format!("seccomp={content}"));
            }
            _ => security_opt.push(s.clone()),
        }
    }
    let mut log_config = Map::new();
    for o in &a.log_opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid key value pair format in log-opt: {o}"))?;
        log_config.insert(k.to_string(), json!(v));
    }
    let ulimits: Vec<Value> = a
        .ulimit
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<Result<_>>()?;
    let devices: Vec<Value> = a
        .device
        .iter()
        .map(|d| parse_device(d))
        .collect::<Result<_>>()?;
    let (binds, anon): (Vec<String>, Vec<String>) = a
        .volume
        .iter()
        .cloned()
        .partition(|v| split_volume(v).len() > 1);
    let mounts: Vec<Value> = a
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<_>>()?;
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for e in &a.expose {
        for port in expand_ports(e)? {
            exposed.insert(port, json!({}));
        }
    }
    for p in &a.publish {
        for (port, binding) in parse_publish(p)? {
            exposed.insert(port.clone(), json!({}));
            bindings
                .entry(port)
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .ok_or_else(|| anyhow!("internal: port bindings"))?
                .push(binding);
        }
    }
    let network = a.network.clone().unwrap_or_else(|| "default".into());
    let mut host = json!({
        "Binds": binds,
        "Mounts": mounts,
        "VolumesFrom": a.volumes_from,
        "PortBindings": bindings,
        "PublishAllPorts": a.publish_all,
        "Dns": a.dns,
        "DnsSearch": a.dns_search,
        "DnsOptions": a.dns_option,
        "ReadonlyRootfs": a.read_only,
        "Privileged": a.privileged,
        "Devices": devices,
        "AutoRemove": a.rm,
        "CapAdd": a.cap_add,
        "CapDrop": a.cap_drop,
        "SecurityOpt": security_opt,
        "Ulimits": ulimits,
        "ExtraHosts": a.add_host,
        "NetworkMode": network,
        "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_config},
    });
    let h = host
        .as_object_mut()
        .ok_or_else(|| anyhow!("internal: host config"))?;
    if !tmpfs.is_empty() {
        h.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    if let Some(m) = mem {
        h.insert("Memory".into(), json!(m));
    }
    if let Some(s) = swap {
        h.insert("MemorySwap".into(), json!(s));
    }
    if let Some(n) = nano_cpus {
        h.insert("NanoCpus".into(), json!(n));
    }
    if let Some(c) = a.cpu_shares {
        h.insert("CpuShares".into(), json!(c));
    }
    if let Some(c) = &a.cpuset_cpus {
        h.insert("CpusetCpus".into(), json!(c));
    }
    if let Some(p) = a.pids_limit {
        h.insert("PidsLimit".into(), json!(p));
    }
    if a.init {
        h.insert("Init".into(), json!(true));
    }
    if let Some(r) = &a.restart {
        h.insert("RestartPolicy".into(), parse_restart(r)?);
    }
    let mut body = json!({
        "Image": a.image,
        "Env": env,
        "Labels": labels,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive && attached,
        "AttachStdin": a.interactive,
        "AttachStdout": true,
        "AttachStderr": true,
        "HostConfig": host,
    });
    if !anon.is_empty() {
        let v: Map<String, Value> = anon.iter().map(|p| (p.clone(), json!({}))).collect();
        body["Volumes"] = Value::Object(v);
    }
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
    }
    if a.ip.is_some() || !a.network_alias.is_empty() || a.mac_address.is_some() {
        let mut ep = json!({"Aliases": a.network_alias});
        if let Some(ip) = &a.ip {
            ep["IPAMConfig"] = json!({"IPv4Address": ip});
        }
        if let Some(mac) = &a.mac_address {
            ep["MacAddress"] = json!(mac);
        }
        body["NetworkingConfig"] = json!({"EndpointsConfig": {network.as_str(): ep}});
    }
    if let Some(d) = &a.domainname {
        body["Domainname"] = json!(d);
    }
    if a.no_healthcheck {
        body["Healthcheck"] = json!({"Test": ["NONE"]});
    } else if a.health_cmd.is_some() || a.health_interval.is_some() || a.health_retries.is_some() {
        let ns = |v: &Option<String>, flag: &str| -> Result<i64> {
            match v {
                Some(s) => go_duration_ns(s).ok_or_else(|| {
                    anyhow!(
                        "invalid argument \"{s}\" for \"--{flag}\" flag: time: invalid duration"
                    )
                }),
                None => Ok(0),
            }
        };
        let mut hc = json!({
            "Interval": ns(&a.health_interval, "health-interval")?,
            "Timeout": ns(&a.health_timeout, "health-timeout")?,
            "StartPeriod": ns(&a.health_start_period, "health-start-period")?,
            "Retries": a.health_retries.unwrap_or(0),
        });
        if let Some(cmd) = &a.health_cmd {
            hc["Test"] = json!(["CMD-SHELL", cmd]);
        }
        body["Healthcheck"] = hc;
    }
    if a.tty {
        if let Some((h, w)) = crate::tty::size() {
            body["HostConfig"]["ConsoleSize"] = json!([h, w]);
        }
    }
    let b = body
        .as_object_mut()
        .ok_or_else(|| anyhow!("internal: body"))?;
    if !a.command.is_empty() {
        b.insert("Cmd".into(), json!(a.command));
    }
    if let Some(e) = &a.entrypoint {
        b.insert(
            "Entrypoint".into(),
            if e.is_empty() { json!([]) } else { json!([e]) },
        );
    }
    if let Some(w) = &a.workdir {
        b.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &a.user {
        b.insert("User".into(), json!(u));
    }
    if let Some(h) = &a.hostname {
        b.insert("Hostname".into(), json!(h));
    }
    if let Some(s) = &a.stop_signal {
        b.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = a.stop_timeout {
        b.insert("StopTimeout".into(), json!(t));
    }
    Ok(body)
}

/// `-v` splits on `:` like the docker CLI (Linux paths only): `/ctr`, `src:/ctr`, `src:/ctr:mode`.
fn split_volume(v: &str) -> Vec<&str> {
    v.split(':').collect()
}

/// `--mount type=...,source=...,target=...` into a `HostConfig.Mounts` entry.
pub fn parse_mount(spec: &str) -> Result<Value> {
    let mut m = json!({"Type": "volume"});
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    let mut driver = Map::new();
    let mut driver_opts = Map::new();
    let mut labels = Map::new();
    let invalid = |f: &str| {
        anyhow!("invalid argument \"{spec}\" for \"--mount\" flag: invalid field '{f}' must be a key=value pair")
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let boolean = |v: Option<&str>| -> Result<bool> {
            match v {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(o) => Err(anyhow!("invalid value for {k}: {o}")),
            }
        };
        match k.as_str() {
            "readonly" | "ro" => m["ReadOnly"] = json!(boolean(v)?),
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(boolean(v)?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(boolean(v)?));
            }
            _ => {
                let v = v.ok_or_else(|| invalid(field))?;
                match k.as_str() {
                    "type" => m["Type"] = json!(v),
                    "source" | "src" => m["Source"] = json!(v),
                    "target" | "dst" | "destination" => m["Target"] = json!(v),
                    "consistency" => m["Consistency"] = json!(v),
                    "bind-propagation" => {
                        bind.insert("Propagation".into(), json!(v));
                    }
                    "volume-driver" => {
                        driver.insert("Name".into(), json!(v));
                    }
                    "volume-subpath" => {
                        vol.insert("Subpath".into(), json!(v));
                    }
                    "volume-label" => {
                        let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                        labels.insert(lk.into(), json!(lv));
                    }
                    "volume-opt" => {
                        let (ok, ov) = v
                            .split_once('=')
                            .ok_or_else(|| anyhow!("invalid volume-opt: {v}"))?;
                        driver_opts.insert(ok.into(), json!(ov));
                    }
                    "tmpfs-size" => {
                        let n = human::parse_bytes(v)
                            .map_err(|e| anyhow!("invalid value for tmpfs-size: {e}"))?;
                        tmpfs.insert("SizeBytes".into(), json!(n));
                    }
                    "tmpfs-mode" => {
                        let n = i64::from_str_radix(v, 8)
                            .map_err(|_| anyhow!("invalid value for tmpfs-mode: {v}"))?;
                        tmpfs.insert("Mode".into(), json!(n));
                    }
                    _ => bail!("invalid argument \"{spec}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'"),
                }
            }
        }
    }
    if !driver_opts.is_empty() {
        driver.insert("Options".into(), Value::Object(driver_opts));
    }
    if !driver.is_empty() {
        vol.insert("DriverConfig".into(), Value::Object(driver));
    }
    if !labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(labels));
    }
    let typ = m["Type"].as_str().unwrap_or("").to_string();
    if m.get("Target").is_none() {
        bail!("invalid argument \"{spec}\" for \"--mount\" flag: target is required");
    }
    if !bind.is_empty() {
        if typ != "bind" {
            bail!("invalid argument \"{spec}\" for \"--mount\" flag: cannot mix 'bind-*' options with mount type '{typ}'");
        }
        m["BindOptions"] = Value::Object(bind);
    }
    if !vol.is_empty() {
        if typ != "volume" {
            bail!("invalid argument \"{spec}\" for \"--mount\" flag: cannot mix 'volume-*' options with mount type '{typ}'");
        }
        m["VolumeOptions"] = Value::Object(vol);
    }
    if !tmpfs.is_empty() {
        if typ != "tmpfs" {
            bail!("invalid argument \"{spec}\" for \"--mount\" flag: cannot mix 'tmpfs-*' options with mount type '{typ}'");
        }
        m["TmpfsOptions"] = Value::Object(tmpfs);
    }
    Ok(m)
}

/// `80`, `80/udp`, `8000-8002` into `80/tcp`-style keys.
fn expand_ports(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let (lo, hi) = port_range(ports)?;
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn port_range(s: &str) -> Result<(u16, u16)> {
    let p = |x: &str| -> Result<u16> {
        x.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("invalid port: {x}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                bail!("invalid range specified for port: {s}");
            }
            Ok((a, b))
        }
        None => {
            let a = p(s)?;
            Ok((a, a))
        }
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]` (ranges allowed on both sides) into (`80/tcp`, binding)s.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, Value)>> {
    let bad = || anyhow!("invalid port format for --publish: {spec}");
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    // An IPv6 host address comes in brackets: `[::1]:8080:80`.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(bad)?;
        (ip.to_string(), after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [_] | [_, _] => (String::new(), rest),
            [ip, _, _] => (
                ip.to_string(),
                rest.split_once(':').map(|x| x.1).unwrap_or(""),
            ),
            _ => return Err(bad()),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let (clo, chi) = port_range(ctr)?;
    let host_ports: Vec<String> = if host.is_empty() {
        vec![String::new(); (chi - clo + 1) as usize]
    } else {
        let (hlo, hi) = port_range(host)?;
        if hlo == hi && chi > clo {
            // One host port range start for several container ports is an error; a single host port for a
            // single container port is the common case.
            bail!("invalid ranges specified for container and host Ports: {ctr} and {host}");
        }
        if hlo != hi && hi - hlo != chi - clo {
            // Docker allows a host range for a single container port: any port of the range.
            if clo == chi {
                vec![format!("{hlo}-{hi}")]
            } else {
                bail!("invalid ranges specified for container and host Ports: {ctr} and {host}");
            }
        } else {
            (hlo..=hi).map(|p| p.to_string()).collect()
        }
    };
    Ok((clo..=chi)
        .zip(
            host_ports
                .into_iter()
                .chain(std::iter::repeat(String::new())),
        )
        .map(|(c, h)| (format!("{c}/{proto}"), json!({"HostIp": ip, "HostPort": h})))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flags_are_read_like_the_docker_cli() {
        let d = |s: &str| parse_device(s).map(|v| v.to_string());
        assert_eq!(
            d("/dev/sda").unwrap(),
            r#"{"CgroupPermissions":"rwm","PathInContainer":"/dev/sda","PathOnHost":"/dev/sda"}"#
        );
        assert_eq!(
            d("/dev/sda:r").unwrap(),
            r#"{"CgroupPermissions":"r","PathInContainer":"/dev/sda","PathOnHost":"/dev/sda"}"#
        );
        assert_eq!(
            d("/dev/sda:/dev/xvda:rw").unwrap(),
            r#"{"CgroupPermissions":"rw","PathInContainer":"/dev/xvda","PathOnHost":"/dev/sda"}"#
        );
        assert!(d("/dev/sda:/dev/xvda:rx").is_err());
        assert!(d("/dev/sda:relative").is_err());
        assert!(d(":/dev/x").is_err());
    }

    #[test]
    fn create_body_maps_flags_like_docker() {
        let a = CreateArgs {
            image: "busybox".into(),
            command: vec!["echo".into(), "hi".into()],
            env: vec!["A=1".into()],
            memory: Some("64m".into()),
            cpus: Some("1.5".into()),
            ulimit: vec!["nofile=100:200".into()],
            label: vec!["x=y".into(), "flag".into()],
            rm: true,
            ..Default::default()
        };
        let b = create_body(&a, true).unwrap();
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["HostConfig"]["Memory"], json!(64 * 1024 * 1024));
        assert_eq!(b["HostConfig"]["NanoCpus"], json!(1_500_000_000i64));
        assert_eq!(
            b["HostConfig"]["Ulimits"][0],
            json!({"Name": "nofile", "Soft": 100, "Hard": 200})
        );
        assert_eq!(b["HostConfig"]["AutoRemove"], json!(true));
        assert_eq!(b["Labels"], json!({"x": "y", "flag": ""}));
    }

    #[test]
    fn mounts_parse_like_docker_cli() {
        let m =
            parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rshared").unwrap();
        assert_eq!(
            m,
            json!({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rshared"}})
        );
        let m = parse_mount("src=data,dst=/d,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b")
            .unwrap();
        assert_eq!(m["Type"], "volume");
        assert_eq!(m["VolumeOptions"]["NoCopy"], true);
        assert_eq!(
            m["VolumeOptions"]["DriverConfig"]["Options"]["type"],
            "tmpfs"
        );
        assert_eq!(m["VolumeOptions"]["Labels"]["a"], "b");
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m["TmpfsOptions"],
            json!({"SizeBytes": 1048576, "Mode": 0o1770})
        );
        assert!(parse_mount("type=tmpfs,target=/t,volume-nocopy").is_err());
        assert!(parse_mount("type=bind,source=/h").is_err());
        assert!(parse_mount("type=bind,bogus=1,target=/x").is_err());
    }

    #[test]
    fn publish_specs_parse_like_docker_cli() {
        let one = |s: &str| parse_publish(s).unwrap();
        assert_eq!(
            one("80"),
            vec![("80/tcp".into(), json!({"HostIp": "", "HostPort": ""}))]
        );
        assert_eq!(
            one("8080:80"),
            vec![("80/tcp".into(), json!({"HostIp": "", "HostPort": "8080"}))]
        );
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            vec![(
                "80/udp".into(),
                json!({"HostIp": "127.0.0.1", "HostPort": "8080"})
            )]
        );
        assert_eq!(
            one("127.0.0.1::80")[0].1,
            json!({"HostIp": "127.0.0.1", "HostPort": ""})
        );
        assert_eq!(
            one("[::1]:8080:80")[0].1,
            json!({"HostIp": "::1", "HostPort": "8080"})
        );
        let r = one("8000-8001:80-81");
        assert_eq!(
            r[1],
            ("81/tcp".into(), json!({"HostIp": "", "HostPort": "8001"}))
        );
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("80/icmp").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert_eq!(
            expand_ports("7000-7001/udp").unwrap(),
            vec!["7000/udp", "7001/udp"]
        );
    }

    #[test]
    fn volumes_split_into_binds_and_anonymous() {
        let a = CreateArgs {
            image: "busybox".into(),
            volume: vec!["/data".into(), "named:/n".into(), "/h:/c:ro".into()],
            publish: vec!["127.0.0.1:8080:80".into()],
            ..Default::default()
        };
        let b = create_body(&a, false).unwrap();
        assert_eq!(b["Volumes"], json!({"/data": {}}));
        assert_eq!(b["HostConfig"]["Binds"], json!(["named:/n", "/h:/c:ro"]));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse_ulimit("nofile=200:100").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(
            parse_restart("on-failure:3").unwrap()["MaximumRetryCount"],
            3
        );
    }
}
