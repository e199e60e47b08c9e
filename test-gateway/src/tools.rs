//! The MCP server: one rmcp `ServerHandler` with the test tools, shared by both transports.

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    Implementation, ProgressNotificationParam, RequestMetaObject, ServerCapabilities, ServerConfig,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_handler, tool_router, Peer, RoleServer, ServerHandler};
use serde::Deserialize;

use crate::config::Loaded;

/// Facts about this process, fixed at start.
#[derive(Debug)]
pub struct Identity {
    pub hostname: String,
    pub pid: u32,
    /// Random per process: pid is 1 in every container, so this tells restarts apart.
    pub instance: String,
}

impl Identity {
    /// What the `whoami` tools answer: hostname, pid and instance as JSON.
    pub fn json(&self) -> String {
        serde_json::json!({
            "hostname": self.hostname,
            "pid": self.pid,
            "instance": self.instance,
        })
        .to_string()
    }

    pub fn current() -> Identity {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        Identity {
            hostname,
            pid: std::process::id(),
            instance: uuid::Uuid::new_v4().to_string(),
        }
    }
}

#[derive(Clone)]
pub struct Gateway {
    loaded: Arc<Loaded>,
    identity: Arc<Identity>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// Text to return unchanged.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProgressArgs {
    /// How many progress notifications to send.
    pub count: u32,
    /// Milliseconds between notifications.
    pub interval_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConnectArgs {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Connect timeout in milliseconds (default 1000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

const MAX_PROGRESS_COUNT: u32 = 10_000;

#[tool_router]
impl Gateway {
    pub fn new(loaded: Arc<Loaded>, identity: Arc<Identity>) -> Self {
        Gateway {
            loaded,
            identity,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Enabled MCP server names (catalog entries named by --servers), as a JSON array"
    )]
    async fn list_servers(&self) -> String {
        serde_json::Value::from(self.loaded.servers.clone()).to_string()
    }

    #[tool(
        description = "Secret names (<server>.<key>) from the --secrets files, as a JSON array; never values"
    )]
    async fn list_secret_names(&self) -> String {
        serde_json::Value::from(self.loaded.secret_names.clone()).to_string()
    }

    #[tool(description = "Returns its text argument")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    #[tool(
        description = "Sends `count` progress notifications `interval_ms` apart (using the request's progressToken), then returns"
    )]
    async fn stream_progress(
        &self,
        Parameters(args): Parameters<ProgressArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<String, rmcp::ErrorData> {
        if args.count > MAX_PROGRESS_COUNT {
            return Err(rmcp::ErrorData::invalid_params(
                format!("count must be at most {MAX_PROGRESS_COUNT}"),
                None,
            ));
        }
        let token = meta.get_progress_token();
        let interval = Duration::from_millis(args.interval_ms);
        let mut sent = 0;
        for step in 1..=args.count {
            if step > 1 {
                tokio::time::sleep(interval).await;
            }
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(args.count))
                    .with_message(format!("step {step} of {}", args.count));
                if let Err(e) = peer.notify_progress(param).await {
                    log!("stream_progress: notification {step} not delivered: {e}");
                    break;
                }
                sent += 1;
            }
        }
        if token.is_none() {
            return Ok(format!(
                "no progressToken in the request; waited {} steps without notifications",
                args.count
            ));
        }
        Ok(format!("sent {sent} progress notifications"))
    }

    #[tool(description = "This gateway's hostname, pid and per-process instance id, as JSON")]
    async fn whoami(&self) -> String {
        self.identity.json()
    }

    #[tool(
        description = "Tries a TCP connect to host:port; returns \"connected\" or the error text"
    )]
    async fn connect_tcp(&self, Parameters(args): Parameters<ConnectArgs>) -> String {
        let timeout = Duration::from_millis(args.timeout_ms.unwrap_or(1000));
        let target = (args.host.as_str(), args.port);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
            Ok(Ok(_stream)) => "connected".to_owned(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => format!("error: timed out after {} ms", timeout.as_millis()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-test-gateway",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Test stand-in for docker/mcp-gateway (mcp-frontdoor tests).")
    }
}
