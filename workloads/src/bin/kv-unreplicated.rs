//! `kv-unreplicated --port P --seed S --clients N`: the unreplicated baseline server (see
//! `workloads::baseline`), on 127.0.0.1. Keys come from the seed, as in the benchmark.

use clap::Parser;
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Parser)]
#[command(
    name = "kv-unreplicated",
    about = "The KV service without replication: the cluster benchmark's baseline"
)]
struct Cli {
    #[arg(long)]
    port: u16,
    /// Every key is `key_from_seed(seed, principal)`.
    #[arg(long)]
    seed: u64,
    /// Clients `0..clients` may connect.
    #[arg(long)]
    clients: u32,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, cli.port));
    let config = workloads::baseline::cluster_config(address, cli.seed, cli.clients);
    // One thread, like a replica's network side.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(address).await?;
        workloads::baseline::serve(listener, config, cli.seed).await?;
        Ok(())
    })
}
