//! One signature for many replies: a replica puts every reply it produces in one step into a
//! Merkle tree and signs only the root. Each reply travels with the path from its leaf to the
//! root, so a client checks its own reply (one ed25519 verification, as before) without seeing
//! anyone else's. Signing was the largest single cost of a replica under load: four replicas
//! each signing every reply. Now each signs once per executed batch.
//!
//! Leaves and inner nodes are hashed under different tags, so no inner node can pass for a
//! reply. When a level has an odd number of nodes the last one moves up unchanged.

use crate::digest::Digest;
use crate::message::Reply;
use serde::{Deserialize, Serialize};

/// Longer paths are refused before hashing: 2^32 replies never share one step.
pub const MAX_PATH_LENGTH: usize = 32;

const LEAF_TAG: &[u8] = b"gauntlet-reply-leaf";
const NODE_TAG: &[u8] = b"gauntlet-reply-node";

/// One level of a path: the sibling's digest and the side it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStep {
    pub sibling: Digest,
    pub sibling_is_left: bool,
}

/// Digest of a reply's content (everything but its path).
pub fn leaf(reply: &Reply) -> Digest {
    let content = postcard::to_stdvec(&(reply.view, reply.client, reply.timestamp, &reply.result))
        .expect("postcard encoding into a Vec cannot fail");
    Digest::of_parts([LEAF_TAG, content.as_slice()])
}

fn node(left: &Digest, right: &Digest) -> Digest {
    Digest::of_parts([NODE_TAG, left.0.as_slice(), right.0.as_slice()])
}

/// The root a reply's path leads to: what the replica signed.
pub fn root(reply: &Reply) -> Digest {
    reply.path.iter().fold(leaf(reply), |digest, step| {
        if step.sibling_is_left {
            node(&step.sibling, &digest)
        } else {
            node(&digest, &step.sibling)
        }
    })
}

/// Builds the tree over `replies` and writes each one's path into it; returns the root.
/// `replies` must not be empty.
pub fn build(replies: &mut [Reply]) -> Digest {
    let mut level: Vec<Digest> = replies.iter().map(leaf).collect();
    // Which node of the current level each reply's leaf has become.
    let mut position: Vec<usize> = (0..replies.len()).collect();
    for reply in replies.iter_mut() {
        reply.path.clear();
    }
    while level.len() > 1 {
        for (reply, at) in replies.iter_mut().zip(position.iter_mut()) {
            let sibling = *at ^ 1;
            if let Some(digest) = level.get(sibling) {
                reply.path.push(PathStep {
                    sibling: *digest,
                    sibling_is_left: sibling < *at,
                });
            }
            *at /= 2;
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node(left, right),
                [alone] => *alone,
                _ => unreachable!("chunks(2) yields one or two digests"),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, Timestamp, View};
    use crate::kv::OpResult;

    fn reply(client: u32) -> Reply {
        Reply::new(
            View(1),
            ClientId(client),
            Timestamp(10 + client as u64),
            OpResult::Value(Some(format!("v{client}"))),
        )
    }

    #[test]
    fn every_reply_of_every_tree_size_leads_to_the_one_root() {
        for size in 1..=17 {
            let mut replies: Vec<Reply> = (0..size).map(reply).collect();
            let signed_root = build(&mut replies);
            for r in &replies {
                assert_eq!(root(r), signed_root, "size {size}, client {}", r.client);
                assert!(r.path.len() <= 5);
            }
        }
    }

    #[test]
    fn a_single_reply_is_its_own_root() {
        let mut replies = vec![reply(3)];
        let signed_root = build(&mut replies);
        assert!(replies[0].path.is_empty());
        assert_eq!(signed_root, leaf(&replies[0]));
    }

    #[test]
    fn changing_a_result_or_a_path_step_changes_the_root() {
        let mut replies: Vec<Reply> = (0..6).map(reply).collect();
        let signed_root = build(&mut replies);
        let mut lie = replies[2].clone();
        lie.result = OpResult::Value(Some("forged".into()));
        assert_ne!(root(&lie), signed_root);
        let mut swapped = replies[2].clone();
        swapped.path[0].sibling_is_left = !swapped.path[0].sibling_is_left;
        assert_ne!(root(&swapped), signed_root);
        // Another client's path does not make this reply part of the tree either.
        let mut borrowed = replies[2].clone();
        borrowed.path = replies[3].path.clone();
        assert_ne!(root(&borrowed), signed_root);
    }
}
