//! The conformance suite every `UsageStore` back end passes, and the file
//! back end's own tests (atomic private files, reload, failed writes).

use super::{Counts, Hour, Outcome, Tally, UsageStore};

/// The behaviour every `UsageStore` must show; each back end runs it.
pub(crate) async fn conformance(store: &dyn UsageStore) {
    let tally = |key: &str, hour: Hour, allowed: u32, limited: u32| {
        let mut counts = Counts::default();
        counts.0[Outcome::Allowed.index()] = allowed;
        counts.0[Outcome::RateLimited.index()] = limited;
        Tally {
            key_id: key.into(),
            hour,
            counts,
        }
    };
    store
        .add(vec![tally("alpha1", 500, 3, 1), tally("beta1", 499, 2, 0)])
        .await
        .unwrap();
    store.add(vec![tally("alpha1", 500, 1, 1)]).await.unwrap();
    let alpha = store.series("alpha1", 500).await.unwrap();
    assert_eq!(alpha.len(), 168);
    assert_eq!(alpha[167].0, 500);
    assert_eq!(alpha[167].1.allowed(), 4);
    assert_eq!(alpha[167].1.get(Outcome::RateLimited), 2);
    assert_eq!(
        store.series("beta1", 500).await.unwrap()[166].1.allowed(),
        2
    );
    assert!(store
        .series("nobody1", 500)
        .await
        .unwrap()
        .iter()
        .all(|(_, c)| c.is_empty()));
    let mut ids = store.key_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["alpha1", "beta1"]);
    store.forget("alpha1").await.unwrap();
    assert_eq!(store.key_ids().await.unwrap(), ["beta1"]);
    assert!(store.series("alpha1", 500).await.unwrap()[167].1.is_empty());
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::auth::usage::FileUsageStore;

    #[tokio::test]
    async fn the_file_store_passes_the_usage_store_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        conformance(&FileUsageStore::load(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn usage_files_are_private_and_read_back_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileUsageStore::load(dir.path()).unwrap();
        let mut counts = Counts::default();
        counts.0[Outcome::ExpiredKey.index()] = 7;
        store
            .add(vec![Tally {
                key_id: "gamma1".into(),
                hour: 42,
                counts,
            }])
            .await
            .unwrap();
        let file = dir.path().join("usage/gamma1.json");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = FileUsageStore::load(dir.path()).unwrap();
        assert_eq!(
            again.series("gamma1", 42).await.unwrap()[167]
                .1
                .get(Outcome::ExpiredKey),
            7
        );
    }

    #[tokio::test]
    async fn a_failed_write_hands_the_tallies_back_and_counts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileUsageStore::load(dir.path()).unwrap();
        let mut counts = Counts::default();
        counts.0[0] = 1;
        let tally = Tally {
            key_id: "delta1".into(),
            hour: 9,
            counts,
        };
        crate::store::inject_write_fault(&dir.path().join("usage"), true);
        let unsaved = store.add(vec![tally.clone()]).await.unwrap_err();
        crate::store::inject_write_fault(&dir.path().join("usage"), false);
        assert_eq!(unsaved.tallies, vec![tally]);
        assert!(store.series("delta1", 9).await.unwrap()[167].1.is_empty());
    }
}
