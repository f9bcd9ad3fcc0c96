//! A block's files in the object store: writing them (`meta.json` last), deleting them
//! (`meta.json` first) and listing the complete blocks.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{BlockMeta, BuiltBlock};
use crate::StoreError;

pub fn block_dir(block_id: &str) -> ObjectPath {
    ObjectPath::from(format!("blocks/{block_id}"))
}

/// Writes a block's files to the object store; `meta.json` goes last. `before_put(name,
/// bytes)` is asked before each file and may fail the write.
pub async fn put_block(
    store: &Arc<dyn ObjectStore>,
    block: BuiltBlock,
    before_put: impl Fn(&str, u64) -> Result<(), StoreError>,
) -> Result<BlockMeta, StoreError> {
    let BuiltBlock {
        meta,
        bloom,
        index,
        data,
    } = block;
    let dir = block_dir(&meta.block_id);
    let put = |name: &str, bytes: Vec<u8>| {
        let path = dir.clone().join(name);
        let store = store.clone();
        let allowed = before_put(name, bytes.len() as u64);
        async move {
            allowed?;
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| StoreError::Object {
                    path: path.to_string(),
                    source: e,
                })
                .map(|_| ())
        }
    };
    put("data.parquet", data).await?;
    put("bloom.bin", bloom.encode()).await?;
    put("index.bin", index.encode()).await?;
    let meta_json = serde_json::to_vec_pretty(&meta).expect("block meta serialises");
    put("meta.json", meta_json).await?;
    Ok(meta)
}

/// Deletes every object of a block, `meta.json` first so a half-deleted block is never read.
pub async fn delete_block(store: &Arc<dyn ObjectStore>, block_id: &str) -> Result<(), StoreError> {
    let dir = block_dir(block_id);
    for name in ["meta.json", "index.bin", "bloom.bin", "data.parquet"] {
        let path = dir.clone().join(name);
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(StoreError::Object {
                    path: path.to_string(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// The ids of every block directory that has a `meta.json`.
pub async fn list_blocks(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>, StoreError> {
    let prefix = ObjectPath::from("blocks");
    let objects: Vec<_> =
        store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::Object {
                path: prefix.to_string(),
                source: e,
            })?;
    let mut ids: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let parts: Vec<_> = o.location.parts().collect();
            (parts.len() == 3 && parts[2].as_ref() == "meta.json")
                .then(|| parts[1].as_ref().to_owned())
        })
        .collect();
    ids.sort();
    Ok(ids)
}
