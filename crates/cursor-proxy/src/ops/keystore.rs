//! Caller key changes made through the admin API, kept in the state store so that they
//! survive a restart (and reach the other instances at their next start): a key added, a key
//! revoked, a key's limits changed. The store holds only the secret's SHA-256 and its
//! [`crate::store::caller_hash`], never the secret. The config stays the base: after a reload
//! the stored changes are applied on top of it again ([`KeyRing::replace`]).

use tracing::warn;

use super::keys::{KeyError, KeyPolicy, KeyRing, KeySpec};
use crate::store::{KeyRecord, Store, StoreError};

/// Adds a key (see [`KeyRing::add`]) and stores it; returns whether the store took it (the
/// key works either way, but without the store only until a restart).
///
/// # Errors
/// The ring's refusal.
pub async fn add(ring: &KeyRing, store: &dyn Store, spec: &KeySpec) -> Result<bool, KeyError> {
    ring.add(spec)?;
    let key = ring
        .list()
        .into_iter()
        .find(|k| k.name() == spec.name)
        .ok_or_else(|| KeyError::NotFound(spec.name.clone()))?;
    let record = KeyRecord {
        name: spec.name.clone(),
        digest: Some(key.digest_hex()),
        caller: Some(key.caller_hash().to_owned()),
        policy: Some(policy_json(&spec.policy)),
        revoked: false,
    };
    Ok(persist(ring, store, record).await)
}

/// Revokes a key (see [`KeyRing::revoke`]) and stores the revocation, which holds even if the
/// config still lists the key.
///
/// # Errors
/// The ring's refusal.
pub async fn revoke(ring: &KeyRing, store: &dyn Store, name: &str) -> Result<bool, KeyError> {
    ring.revoke(name)?;
    let record = KeyRecord {
        name: name.to_owned(),
        revoked: true,
        ..KeyRecord::default()
    };
    Ok(persist(ring, store, record).await)
}

/// Changes a key's policy (see [`KeyRing::set_policy`]) and stores it.
///
/// # Errors
/// The ring's refusal.
pub async fn set_policy(
    ring: &KeyRing,
    store: &dyn Store,
    name: &str,
    policy: KeyPolicy,
) -> Result<bool, KeyError> {
    let json = policy_json(&policy);
    ring.set_policy(name, policy)?;
    // A key added through the API keeps its hashes; a configured key gets a policy override.
    let mut record = ring.remembered(name).unwrap_or_else(|| KeyRecord {
        name: name.to_owned(),
        ..KeyRecord::default()
    });
    record.policy = Some(json);
    record.revoked = false;
    Ok(persist(ring, store, record).await)
}

/// Loads the stored changes into `ring` and applies them (at startup); returns how many.
///
/// # Errors
/// The store's.
pub async fn restore(ring: &KeyRing, store: &dyn Store) -> Result<usize, StoreError> {
    let records = store.caller_keys().await?;
    let n = records.len();
    for r in records {
        ring.remember(r);
    }
    ring.apply_remembered();
    Ok(n)
}

async fn persist(ring: &KeyRing, store: &dyn Store, record: KeyRecord) -> bool {
    ring.remember(record.clone());
    match store.save_caller_key(&record).await {
        Ok(()) => true,
        Err(e) => {
            warn!(key = %record.name, error = %super::chain(&e),
                  "cannot store the key change; it holds until this process restarts");
            false
        }
    }
}

fn policy_json(policy: &KeyPolicy) -> String {
    serde_json::to_string(policy).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::config::Secret;
    use crate::store::Limits;
    use crate::store::memory::MemoryStore;

    fn spec(name: &str, secret: &str) -> KeySpec {
        KeySpec {
            name: name.into(),
            secret: Secret::new(secret),
            policy: KeyPolicy::default(),
        }
    }

    #[tokio::test]
    async fn changes_survive_a_new_ring_and_a_reload() {
        let store = MemoryStore::new(Limits::default());
        let config = [spec("config", "secret-config")];
        let ring = KeyRing::new(&config);
        assert!(
            add(&ring, &store, &spec("added", "secret-added"))
                .await
                .unwrap()
        );
        let limited = KeyPolicy {
            requests_per_minute: Some(7),
            ..KeyPolicy::default()
        };
        assert!(
            set_policy(&ring, &store, "added", limited.clone())
                .await
                .unwrap()
        );
        assert!(revoke(&ring, &store, "config").await.unwrap());
        let json = serde_json::to_string(&store.caller_keys_now()).unwrap();
        assert!(!json.contains("secret-"), "no secret stored: {json}");

        // A restart: the config's ring, then the store's changes.
        let ring = KeyRing::new(&config);
        assert_eq!(restore(&ring, &store).await.unwrap(), 2);
        assert!(
            ring.find("secret-config").is_none(),
            "revoked stays revoked"
        );
        let added = ring.find("secret-added").expect("added key restored");
        assert_eq!(added.policy(), limited);
        // A reload of the same config keeps the changes.
        ring.replace(&config).unwrap();
        assert!(ring.find("secret-config").is_none());
        assert!(ring.find("secret-added").is_some());
    }
}
