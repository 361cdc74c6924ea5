//! Announcing that an image settled (`done`, `failed` or erased) on the deployment's
//! [`super::Keys::settled_channel`], so gateways wake the long-polls waiting on it instead of
//! each reading Redis over and over. The scripts that settle an image publish inside the same
//! script ([`Store::settled_args`]). An announcement is a hint: one that is lost (the
//! subscriber was reconnecting) only makes a long-poll answer later, with the state read then.

use std::str::FromStr;

use deadpool_redis::redis;

use super::{Store, StoreError};
use crate::{Collection, ImageHash};

impl Store {
    /// Adds the settled channel and the message for `hash` as a script's next two arguments:
    /// the scripts that settle an image (`FINISH_JOB`, `FAIL_JOB`, `DEAD_LETTER`, `ERASE`)
    /// publish it themselves, in the same step as the change, so no wake-up is lost between
    /// the two and no round trip is added.
    pub(super) fn settled_args<'c, 's>(
        &self,
        call: &'c mut redis::ScriptInvocation<'s>,
        hash: ImageHash,
    ) -> &'c mut redis::ScriptInvocation<'s> {
        call.arg(self.keys().settled_channel())
            .arg(settled_message(self.collection(), hash))
    }
}

impl Store {
    /// A connection of its own subscribed to the settled channel (a subscribed connection
    /// can do nothing else). Read it with `into_on_message` and [`parse_settled`].
    pub async fn subscribe_settled(&self) -> Result<redis::aio::PubSub, StoreError> {
        let subscribe = async {
            let client = redis::Client::open(&*self.url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(self.keys().settled_channel()).await?;
            Ok::<_, StoreError>(pubsub)
        };
        tokio::time::timeout(self.timeout, subscribe)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
    }
}

/// The message announcing that `hash` of `collection` settled (the sweep's script builds the
/// same `{collection} {hash}` itself).
pub fn settled_message(collection: &Collection, hash: ImageHash) -> String {
    format!("{collection} {hash}")
}

/// The collection and image a settled message names; `None` for anything else.
pub fn parse_settled(message: &str) -> Option<(Collection, ImageHash)> {
    let (collection, hash) = message.split_once(' ')?;
    Some((
        Collection::from_str(collection).ok()?,
        ImageHash::from_str(hash).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_its_collection_and_image() {
        let collection: Collection = "team-a".parse().expect("name");
        let hash = ImageHash::of(b"x");
        let message = settled_message(&collection, hash);
        assert_eq!(parse_settled(&message), Some((collection, hash)));
        assert_eq!(parse_settled("team-a"), None);
        assert_eq!(parse_settled("team-a zz"), None);
        assert_eq!(parse_settled("Bad/Name 0123"), None);
    }
}
