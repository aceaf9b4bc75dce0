//! The unreplicated baseline: one server executing the same KV operations for the same clients
//! over the same framing, with no agreement. The PBFT paper measures BFS against NFS this way;
//! the cluster benchmark measures the replicated service against this.
//!
//! The server is "replica 0" of a one-server cluster file (f = 0, which `cluster.yaml` itself
//! refuses): the ordinary client talks to it unchanged, needs one reply, and authenticates the
//! way a cluster under `auth: macs` does. The server checks its MAC entry of each request (no
//! signature: an unreplicated service has no backups to convince) and MACs each reply.

use crate::client::{Client, ClientError, ClientOptions};
use replica::auth::AuthMode;
use replica::config::{ClientEntry, ClusterConfig, ReplicaEntry};
use replica::crypto::{self, KeyStore, key_from_seed};
use replica::ids::{ClientId, Principal, ReplicaId, View};
use replica::message::{Reply, Request, Seal, Signed, WireMessage};
use replica::service::{Execution, ServiceState};
use replica::wire::{decode_payload, encode_frame, split_frame};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const SERVER: Principal = Principal::Replica(ReplicaId(0));

/// The one-server cluster: keys from `seed` (`key_from_seed`), clients `0..clients`.
pub fn cluster_config(address: SocketAddr, seed: u64, clients: u32) -> ClusterConfig {
    let public = |p| crypto::public_key_hex(&key_from_seed(seed, p).verifying_key());
    let server = ReplicaEntry {
        id: ReplicaId(0),
        address,
        public_key: public(SERVER),
    };
    let clients = (0..clients)
        .map(|c| ClientEntry {
            id: ClientId(c),
            public_key: public(Principal::Client(ClientId(c))),
        })
        .collect();
    let mut config = ClusterConfig::with_defaults(0, vec![server], clients);
    config.auth = AuthMode::Macs;
    config
}

/// A client of the baseline server, with its seeded key.
pub fn client(config: &ClusterConfig, seed: u64, id: ClientId) -> Result<Client, ClientError> {
    let key = key_from_seed(seed, Principal::Client(id));
    Client::with_options(config, id, key, ClientOptions::from_config(config))
}

/// Serves until the listener fails: one task per connection, one shared state.
pub async fn serve(listener: TcpListener, config: ClusterConfig, seed: u64) -> std::io::Result<()> {
    let keys = config
        .key_store_for(
            std::path::Path::new("baseline"),
            SERVER,
            &key_from_seed(seed, SERVER),
        )
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        keys,
        state: Mutex::new(ServiceState::default()),
        max_frame: config.max_frame_bytes,
    });
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(connection(stream, shared.clone()));
    }
}

struct Shared {
    keys: KeyStore,
    state: Mutex<ServiceState>,
    max_frame: usize,
}

/// Reads frames, answers each request; a bad frame closes the connection (a client's problem).
async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        buffer.extend_from_slice(&chunk[..read]);
        let mut replies = Vec::new();
        let mut consumed = 0;
        loop {
            match split_frame(&buffer[consumed..], shared.max_frame) {
                Ok(Some((payload, used))) => {
                    let Ok(message) = decode_payload(payload, shared.max_frame) else {
                        return;
                    };
                    consumed += used;
                    if let Some(reply) = shared.answer(message) {
                        replies.extend_from_slice(&encode_frame(&WireMessage::Reply(reply)));
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        buffer.drain(..consumed);
        if !replies.is_empty() && stream.write_all(&replies).await.is_err() {
            return;
        }
    }
}

impl Shared {
    /// The reply to an authentic request; nothing for anything else.
    fn answer(&self, message: WireMessage) -> Option<Signed<Reply>> {
        let WireMessage::Request(request) = message else {
            return None;
        };
        let sessions = self.keys.sessions()?;
        let client = Principal::Client(request.body.client);
        let authentic = request.signer == client
            && match &request.seal {
                Seal::Authenticator(macs) | Seal::SignedAuthenticator { macs, .. } => {
                    sessions.check_entry(client, &request.signing_bytes(), macs)
                }
                Seal::Signature(_) | Seal::Mac(_) => false,
            };
        if !authentic {
            return None;
        }
        let Request {
            client: id,
            timestamp,
            op,
        } = request.body;
        let execution = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .execute(id, timestamp, &op);
        let result = match execution {
            Execution::Executed(result) | Execution::AlreadyExecuted(result) => result,
            Execution::Superseded => return None,
        };
        Signed::mac_for(Reply::new(View(0), id, timestamp, result), sessions, client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::kv::{OpResult, Operation};

    #[tokio::test]
    async fn the_ordinary_client_gets_its_results_from_the_unreplicated_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let config = cluster_config(address, 9, 2);
        let server = tokio::spawn(serve(listener, config.clone(), 9));
        let client = client(&config, 9, ClientId(1)).expect("client");
        let put = Operation::Put {
            key: "k".into(),
            value: "v".into(),
        };
        assert_eq!(client.execute(put).await.expect("put"), OpResult::Done);
        let get = Operation::Get { key: "k".into() };
        assert_eq!(
            client.execute(get).await.expect("get"),
            OpResult::Value(Some("v".into()))
        );
        assert_eq!(client.stats().replies_bad_signature, 0);
        server.abort();
    }

    #[tokio::test]
    async fn a_request_whose_mac_does_not_check_gets_no_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let config = cluster_config(listener.local_addr().expect("address"), 9, 1);
        let keys = config
            .key_store_for(std::path::Path::new("t"), SERVER, &key_from_seed(9, SERVER))
            .expect("keys");
        let shared = Shared {
            keys,
            state: Mutex::new(ServiceState::default()),
            max_frame: config.max_frame_bytes,
        };
        let client_keys = config
            .key_store_for(
                std::path::Path::new("t"),
                Principal::Client(ClientId(0)),
                &key_from_seed(9, Principal::Client(ClientId(0))),
            )
            .expect("keys");
        let body = Request {
            client: ClientId(0),
            timestamp: replica::ids::Timestamp(1),
            op: Operation::Get { key: "k".into() },
        };
        let sessions = client_keys.sessions().expect("macs").clone();
        let mut request = Signed::authenticate(body, &sessions);
        assert!(
            shared
                .answer(WireMessage::Request(request.clone()))
                .is_some()
        );
        if let Seal::Authenticator(macs) = &mut request.seal {
            macs[0][0] ^= 1;
        }
        assert!(shared.answer(WireMessage::Request(request)).is_none());
    }
}
