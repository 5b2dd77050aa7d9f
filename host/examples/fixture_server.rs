//! The test fixture MCP server as a process, for the proxy tests: stdio by default, or
//! streamable HTTP with `--http ADDR` (prints the bound address on stdout).

#[path = "../tests/mcp_fixture/mod.rs"]
mod mcp_fixture;

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--http") {
        let addr = args.get(i + 1).ok_or("--http needs an address")?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("{}", listener.local_addr()?);
        let service = StreamableHttpService::new(
            || Ok(mcp_fixture::FixtureServer),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        axum::serve(listener, router).await?;
        return Ok(());
    }
    let running = mcp_fixture::FixtureServer
        .serve(rmcp::transport::stdio())
        .await?;
    running.waiting().await?;
    Ok(())
}
