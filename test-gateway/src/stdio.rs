//! `mcp-test-gateway stdio`: a plain MCP *server* on stdin/stdout, the kind of catalog server
//! docker/mcp-gateway runs with `docker run --rm -i <image>` and talks to over the container's
//! stdio. It is not a gateway: no HTTP, no catalog, no secrets file. Its secrets arrive the way
//! the real gateway hands them to every server, as environment variables of the container, and
//! it only ever reports a SHA-256 of one, so a test compares hashes and no secret is printed.
//!
//! stdout carries the protocol only; everything else goes to stderr.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::tools::{EchoArgs, Identity};

pub const USAGE: &str = "\
usage: mcp-test-gateway stdio [--secret-env NAME[,NAME]]... [--start-delay-ms N] [--linger-ms N]
An MCP server on stdin/stdout with the tools echo, whoami and secret_hash (SHA-256 hex of the
value of one of the environment variables named by --secret-env; never the value).
--start-delay-ms: wait N ms before reading stdin (a server that is slow or never gets ready).
--linger-ms: keep running N ms after stdin closes (a server that outlives its client).";

/// What `stdio` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioArgs {
    /// Environment variables `secret_hash` may read, in the order given.
    pub secret_env: Vec<String>,
    /// Milliseconds to wait before answering anything.
    pub start_delay_ms: u64,
    /// Milliseconds to stay alive after the session ends.
    pub linger_ms: u64,
}

impl StdioArgs {
    /// Parses the words after `stdio`. `Err(None)`: help was asked for.
    pub fn parse<I, S>(argv: I) -> Result<StdioArgs, Option<String>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut args = StdioArgs::default();
        let mut it = argv.into_iter().map(Into::into);
        while let Some(arg) = it.next() {
            if arg == "-h" || arg == "--help" {
                return Err(None);
            }
            let (flag, value) = match arg.split_once('=') {
                Some((flag, v)) => (flag.to_owned(), v.to_owned()),
                None => {
                    let v = it.next();
                    (arg, v.unwrap_or_default())
                }
            };
            match flag.as_str() {
                "--secret-env" => {}
                "--start-delay-ms" | "--linger-ms" => {
                    let ms = value
                        .parse()
                        .map_err(|_| Some(format!("invalid {flag} {value:?}")))?;
                    if flag == "--linger-ms" {
                        args.linger_ms = ms;
                    } else {
                        args.start_delay_ms = ms;
                    }
                    continue;
                }
                _ => return Err(Some(format!("unexpected argument {flag:?}"))),
            }
            if value.is_empty() {
                return Err(Some("flag --secret-env needs a value".to_owned()));
            }
            for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !valid_env_name(name) {
                    return Err(Some(format!("invalid environment variable name {name:?}")));
                }
                if !args.secret_env.iter().any(|n| n == name) {
                    args.secret_env.push(name.to_owned());
                }
            }
        }
        Ok(args)
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[derive(Clone)]
pub struct StdioServer {
    secret_env: Arc<Vec<String>>,
    identity: Arc<Identity>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SecretHashArgs {
    /// One of the --secret-env names; may be left out when exactly one was given.
    #[serde(default)]
    pub env: Option<String>,
}

#[tool_router]
impl StdioServer {
    pub fn new(args: StdioArgs, identity: Arc<Identity>) -> Self {
        StdioServer {
            secret_env: Arc::new(args.secret_env),
            identity,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its text argument")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    #[tool(description = "This server's hostname, pid and per-process instance id, as JSON")]
    async fn whoami(&self) -> String {
        self.identity.json()
    }

    #[tool(
        description = "SHA-256 (hex) of the value of a --secret-env environment variable, as JSON {env, set, sha256}; never the value"
    )]
    async fn secret_hash(
        &self,
        Parameters(args): Parameters<SecretHashArgs>,
    ) -> Result<String, rmcp::ErrorData> {
        let name = self.pick(args.env)?;
        // Only names the operator listed can be read: a client cannot use this tool to probe
        // the container's other variables.
        let out = match std::env::var_os(&name) {
            Some(value) => serde_json::json!({
                "env": name,
                "set": true,
                "sha256": hex_sha256(value.as_encoded_bytes()),
            }),
            None => serde_json::json!({ "env": name, "set": false }),
        };
        Ok(out.to_string())
    }
}

impl StdioServer {
    fn pick(&self, asked: Option<String>) -> Result<String, rmcp::ErrorData> {
        match asked {
            Some(name) if self.secret_env.contains(&name) => Ok(name),
            Some(_) => Err(rmcp::ErrorData::invalid_params(
                format!(
                    "env must be one of the --secret-env names: {:?}",
                    self.secret_env
                ),
                None,
            )),
            None if self.secret_env.len() == 1 => Ok(self.secret_env[0].clone()),
            None => Err(rmcp::ErrorData::invalid_params(
                format!(
                    "name the env, one of the --secret-env names: {:?}",
                    self.secret_env
                ),
                None,
            )),
        }
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for StdioServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-test-stdio",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Stdio MCP server of the mcp-frontdoor tests.")
    }
}

/// Serves one MCP session on stdin/stdout until the client closes stdin.
pub async fn run(args: StdioArgs) -> Result<(), String> {
    let identity = Arc::new(Identity::current());
    log!(
        "stdio server up (pid {}, host {}, instance {}); secret env names: {:?}",
        identity.pid,
        identity.hostname,
        identity.instance,
        args.secret_env
    );
    let linger = std::time::Duration::from_millis(args.linger_ms);
    if args.start_delay_ms > 0 {
        log!("waiting {} ms before reading stdin", args.start_delay_ms);
        tokio::time::sleep(std::time::Duration::from_millis(args.start_delay_ms)).await;
    }
    let service = StdioServer::new(args, identity)
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await
        .map_err(|e| format!("initializing the MCP session on stdio: {e}"))?;
    let reason = service
        .waiting()
        .await
        .map_err(|e| format!("stdio session: {e}"))?;
    log!("stdio session ended: {reason:?}");
    if !linger.is_zero() {
        log!("lingering {} ms", linger.as_millis());
        tokio::time::sleep(linger).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let a = StdioArgs::parse([
            "--secret-env=A_1,B",
            "--secret-env",
            "C",
            "--secret-env=A_1",
        ])
        .unwrap();
        assert_eq!(a.secret_env, ["A_1", "B", "C"]);
        let d = StdioArgs::parse(["--start-delay-ms=5", "--linger-ms", "7"]).unwrap();
        assert_eq!((d.start_delay_ms, d.linger_ms), (5, 7));
        assert!(matches!(StdioArgs::parse(["--linger-ms=x"]), Err(Some(_))));
        assert!(matches!(
            StdioArgs::parse(["--start-delay-ms"]),
            Err(Some(_))
        ));
        assert_eq!(
            StdioArgs::parse(Vec::<String>::new()).unwrap(),
            StdioArgs::default()
        );
        assert_eq!(StdioArgs::parse(["--help"]), Err(None));
        assert!(matches!(StdioArgs::parse(["--secret-env"]), Err(Some(_))));
        assert!(matches!(StdioArgs::parse(["--port=1"]), Err(Some(_))));
        assert!(matches!(
            StdioArgs::parse(["--secret-env=1A"]),
            Err(Some(_))
        ));
        assert!(matches!(
            StdioArgs::parse(["--secret-env=A-B"]),
            Err(Some(_))
        ));
    }

    #[test]
    fn sha256_hex() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_listed_names_are_read() {
        let id = Arc::new(Identity::current());
        let one = StdioServer::new(
            StdioArgs {
                secret_env: vec!["A".into()],
                ..StdioArgs::default()
            },
            id.clone(),
        );
        assert_eq!(one.pick(None).unwrap(), "A");
        assert_eq!(one.pick(Some("A".into())).unwrap(), "A");
        assert!(one.pick(Some("PATH".into())).is_err());
        let two = StdioServer::new(
            StdioArgs {
                secret_env: vec!["A".into(), "B".into()],
                ..StdioArgs::default()
            },
            id.clone(),
        );
        assert!(two.pick(None).is_err());
        assert_eq!(two.pick(Some("B".into())).unwrap(), "B");
        let none = StdioServer::new(StdioArgs::default(), id);
        assert!(none.pick(None).is_err());
    }
}
