//! Command-line flags, spelled like `docker mcp gateway run` (cobra/pflag style).
//!
//! Both `--flag=value` and `--flag value` are accepted. Boolean flags take no separate value
//! (`--verbose`, `--verify-signatures=false`), exactly as pflag does. Slice flags (`--servers`,
//! `--catalog`) may be repeated and split on commas. Flags docker/mcp-gateway knows but this
//! test gateway has no use for are accepted and ignored, so one config works with both images.
//! Leading positional `gateway run` (docker/mcp-gateway's entrypoint words) is skipped.

use std::fmt;

/// What the gateway was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub transport: Transport,
    /// `None`: the default, 8811. `Some(0)`: let the OS pick (tests); the bound address is logged.
    pub port: Option<u16>,
    pub host: String,
    pub catalogs: Vec<String>,
    pub servers: Vec<String>,
    pub enable_all_servers: bool,
    pub secrets: Vec<String>,
    pub allow_unauthenticated: bool,
    pub health_delay_ms: u64,
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Streaming,
    Sse,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Streaming => "streaming",
            Transport::Sse => "sse",
        })
    }
}

pub const DEFAULT_PORT: u16 = 8811;

impl Default for Args {
    fn default() -> Self {
        Args {
            transport: Transport::Streaming,
            port: None,
            host: String::new(),
            catalogs: Vec::new(),
            servers: Vec::new(),
            enable_all_servers: false,
            secrets: Vec::new(),
            allow_unauthenticated: false,
            health_delay_ms: 0,
            ignored: Vec::new(),
        }
    }
}

/// docker/mcp-gateway boolean flags that are accepted and ignored.
const IGNORED_BOOL: &[&str] = &[
    "log-calls",
    "block-secrets",
    "block-network",
    "verify-signatures",
    "dry-run",
    "verbose",
    "long-lived",
    "debug-dns",
    "watch",
    "static",
];

/// docker/mcp-gateway flags with a value that are accepted and ignored.
const IGNORED_VALUE: &[&str] = &[
    "profile",
    "profile-file",
    "additional-catalog",
    "registry",
    "additional-registry",
    "config",
    "additional-config",
    "tools-config",
    "additional-tools-config",
    "tools",
    "interceptor",
    "oci-ref",
    "mcp-registry",
    "cpus",
    "memory",
    "log",
];

const USAGE: &str = "\
usage: mcp-test-gateway [--transport streaming|sse] [--port N] [--host ADDR]
                        [--catalog FILE[,FILE]] [--servers a,b,c] [--enable-all-servers]
                        [--secrets FILE[:FILE]] [--allow-unauthenticated] [--health-delay-ms N]
Both /mcp (streamable HTTP) and /sse + /message (legacy SSE) are always served;
--transport only picks where unknown paths redirect. Auth: Authorization: Bearer
$MCP_GATEWAY_AUTH_TOKEN on everything but GET /health.";

#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    Help,
    Bad(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::Bad(msg) => write!(f, "{msg}\n{USAGE}"),
        }
    }
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, ArgsError> {
    match value {
        None => Ok(true),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => Ok(true),
            "0" | "f" | "false" => Ok(false),
            _ => Err(ArgsError::Bad(format!(
                "invalid boolean for --{name}: {v:?}"
            ))),
        },
    }
}

fn split_list(value: &str, sep: char) -> impl Iterator<Item = String> + '_ {
    value
        .split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Args {
    pub fn parse<I, S>(argv: I) -> Result<Args, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut args = Args::default();
        let mut it = argv.into_iter().map(Into::into).peekable();
        let mut positional_ok = true;
        while let Some(arg) = it.next() {
            if arg == "-h" || arg == "--help" {
                return Err(ArgsError::Help);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                // docker/mcp-gateway's image runs `/docker-mcp gateway run`; tolerate those words.
                if positional_ok && (arg == "gateway" || arg == "run") {
                    continue;
                }
                return Err(ArgsError::Bad(format!("unexpected argument {arg:?}")));
            };
            positional_ok = false;
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (flag.to_owned(), None),
            };
            let is_bool = matches!(
                name.as_str(),
                "enable-all-servers" | "allow-unauthenticated"
            ) || IGNORED_BOOL.contains(&name.as_str());
            if is_bool {
                let v = parse_bool(&name, inline.as_deref())?;
                match name.as_str() {
                    "enable-all-servers" => args.enable_all_servers = v,
                    "allow-unauthenticated" => args.allow_unauthenticated = v,
                    _ => args.ignored.push(arg.clone()),
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| ArgsError::Bad(format!("flag --{name} needs a value")))?,
            };
            match name.as_str() {
                "transport" => {
                    args.transport = match value.to_ascii_lowercase().as_str() {
                        "streaming" | "streamable" | "streamable-http" | "http" => {
                            Transport::Streaming
                        }
                        "sse" => Transport::Sse,
                        "stdio" => {
                            return Err(ArgsError::Bad(
                                "--transport stdio is not supported by the test gateway".into(),
                            ))
                        }
                        other => {
                            return Err(ArgsError::Bad(format!(
                                "unknown transport {other:?}, expected 'sse' or 'streaming'"
                            )))
                        }
                    }
                }
                "port" => {
                    args.port = Some(
                        value
                            .parse()
                            .map_err(|_| ArgsError::Bad(format!("invalid --port {value:?}")))?,
                    )
                }
                "host" => args.host = value,
                "catalog" => args.catalogs.extend(split_list(&value, ',')),
                "servers" => args.servers.extend(split_list(&value, ',')),
                "secrets" => args.secrets.extend(split_list(&value, ':')),
                "health-delay-ms" => {
                    args.health_delay_ms = value.parse().map_err(|_| {
                        ArgsError::Bad(format!("invalid --health-delay-ms {value:?}"))
                    })?
                }
                n if IGNORED_VALUE.contains(&n) => args.ignored.push(format!("--{n}")),
                n => return Err(ArgsError::Bad(format!("unknown flag --{n}"))),
            }
        }
        if args.enable_all_servers && !args.servers.is_empty() {
            return Err(ArgsError::Bad(
                "cannot use --enable-all-servers with --servers flag".into(),
            ));
        }
        Ok(args)
    }

    /// The address to bind: `--host` (default all interfaces) and `--port` (default 8811).
    pub fn listen_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        let port = self.port.unwrap_or(DEFAULT_PORT);
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let a = Args::parse(Vec::<String>::new()).unwrap();
        assert_eq!(a.transport, Transport::Streaming);
        assert_eq!(a.listen_addr(), "0.0.0.0:8811");
        assert!(a.servers.is_empty());
    }

    #[test]
    fn equals_and_space_forms() {
        let a = Args::parse([
            "--transport=sse",
            "--port",
            "9000",
            "--catalog=/c/a.yaml,/c/b.yaml",
            "--catalog",
            "/c/c.yaml",
            "--servers=a, b",
            "--servers",
            "c",
            "--secrets=/run/s1:/run/s2",
            "--health-delay-ms=250",
            "--host",
            "::1",
        ])
        .unwrap();
        assert_eq!(a.transport, Transport::Sse);
        assert_eq!(a.port, Some(9000));
        assert_eq!(a.catalogs, ["/c/a.yaml", "/c/b.yaml", "/c/c.yaml"]);
        assert_eq!(a.servers, ["a", "b", "c"]);
        assert_eq!(a.secrets, ["/run/s1", "/run/s2"]);
        assert_eq!(a.health_delay_ms, 250);
        assert_eq!(a.listen_addr(), "[::1]:9000");
    }

    #[test]
    fn docker_flags_are_accepted_and_ignored() {
        let a = Args::parse([
            "gateway",
            "run",
            "--verify-signatures=false",
            "--verbose",
            "--block-network",
            "--log-calls=true",
            "--memory",
            "1Gb",
            "--cpus=2",
            "--tools",
            "x,y",
            "--servers=",
            "--transport",
            "streamable-http",
        ])
        .unwrap();
        assert_eq!(a.transport, Transport::Streaming);
        assert!(a.servers.is_empty(), "an empty --servers= enables nothing");
        assert_eq!(a.ignored.len(), 7);
    }

    #[test]
    fn bool_flags_do_not_swallow_the_next_flag() {
        let a = Args::parse(["--enable-all-servers", "--port", "1"]).unwrap();
        assert!(a.enable_all_servers);
        assert_eq!(a.port, Some(1));
    }

    #[test]
    fn errors() {
        assert!(matches!(Args::parse(["--nope=1"]), Err(ArgsError::Bad(_))));
        assert!(matches!(Args::parse(["--port"]), Err(ArgsError::Bad(_))));
        assert!(matches!(
            Args::parse(["--transport=stdio"]),
            Err(ArgsError::Bad(_))
        ));
        assert!(matches!(
            Args::parse(["--verbose=maybe"]),
            Err(ArgsError::Bad(_))
        ));
        assert!(matches!(
            Args::parse(["--enable-all-servers", "--servers=a"]),
            Err(ArgsError::Bad(_))
        ));
        assert_eq!(Args::parse(["--help"]), Err(ArgsError::Help));
    }
}
