//! File storage through `object_store`: a local folder (the default, `<data dir>/files`) and
//! any S3-compatible bucket are one code path. Blobs are content-addressed
//! (`blobs/<sha256>`), so the same bytes uploaded twice are stored once and a blob is deleted
//! only when no attachment refers to it any more.

pub mod sniff;
pub mod thumbs;

pub use thumbs::THUMBNAIL_TYPES;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload};

use crate::metrics as m;

/// Serve downloads from SyncChat, or redirect them to a presigned bucket URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedirectMode {
    None,
    Presigned,
}

/// Where files live.
#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    /// Set for S3: signs redirect URLs.
    s3: Option<Arc<AmazonS3>>,
    /// Key prefix inside the bucket (`s3://bucket/<prefix>`).
    prefix: String,
    redirect: RedirectMode,
    shown: String,
}

/// A byte stream of a stored object.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

impl FileStore {
    /// Opens `url`: `file:///abs/path`, `file://./relative`, or `s3://bucket[/prefix]` (with
    /// the usual `AWS_*` variables; `endpoint` for S3-compatible stores such as MinIO).
    pub fn open(url: &str, endpoint: Option<&str>, redirect: RedirectMode) -> anyhow::Result<FileStore> {
        if let Some(path) = url.strip_prefix("file://") {
            std::fs::create_dir_all(path).with_context(|| format!("creating the files folder {path}"))?;
            let abs = std::fs::canonicalize(Path::new(path)).with_context(|| format!("resolving {path}"))?;
            let store = LocalFileSystem::new_with_prefix(&abs).context("opening the files folder")?;
            anyhow::ensure!(redirect == RedirectMode::None, "SYNCCHAT_FILES_REDIRECT=presigned needs an s3:// store");
            return Ok(FileStore {
                store: Arc::new(store),
                s3: None,
                prefix: String::new(),
                redirect,
                shown: format!("file://{}", abs.display()),
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            anyhow::bail!("SYNCCHAT_FILES_URL must start with file:// or s3:// (got {url})");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "SYNCCHAT_FILES_URL names no bucket");
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = Arc::new(builder.build().context("configuring the S3 file store")?);
        Ok(FileStore {
            store: s3.clone(),
            s3: Some(s3),
            prefix: prefix.trim_matches('/').to_owned(),
            redirect,
            shown: url.to_owned(),
        })
    }

    /// The store as configured, for logs and the start-up banner.
    pub fn describe(&self) -> &str {
        &self.shown
    }

    pub fn redirects(&self) -> bool {
        self.redirect == RedirectMode::Presigned && self.s3.is_some()
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}/{key}", self.prefix)) }
    }

    /// A writer that streams to `key` in parts (S3 multipart above `part` bytes, one part
    /// in flight at a time), storing `content_type` with the object so that a bucket serving
    /// it directly (presigned URLs) sends the right type.
    pub fn writer(&self, key: &str, part: usize, content_type: &str) -> BufWriter {
        let mut attributes = object_store::Attributes::new();
        if self.s3.is_some() {
            attributes.insert(object_store::Attribute::ContentType, content_type.to_owned().into());
        }
        BufWriter::with_capacity(self.store.clone(), self.path(key), part)
            .with_max_concurrency(1)
            .with_attributes(attributes)
    }

    /// Deletes the objects under `prefix` last modified before `before`; returns how many.
    pub async fn delete_older_than(
        &self,
        prefix: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, object_store::Error> {
        let old: Vec<ObjectPath> = self
            .store
            .list(Some(&self.path(prefix)))
            .try_filter(|meta| futures_util::future::ready(meta.last_modified < before))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        let mut removed = 0;
        for location in old {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return self.observe("delete", Err(e)),
            }
        }
        Ok(removed)
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.observe("put", self.store.put(&self.path(key), PutPayload::from(bytes)).await.map(|_| ()))
    }

    pub async fn exists(&self, key: &str) -> Result<bool, object_store::Error> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => self.observe("head", Err(e)),
        }
    }

    /// Moves an object (a server-side copy then delete on S3).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), object_store::Error> {
        self.observe("rename", self.store.rename(&self.path(from), &self.path(to)).await)
    }

    /// Deletes `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => self.observe("delete", Err(e)),
        }
    }

    /// The bytes of `key`, or of `range` of it.
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, object_store::Error> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.observe("get", self.store.get_opts(&self.path(key), options).await)?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// The whole object in memory (thumbnails only: bounded by the upload limit).
    pub async fn get_all(&self, key: &str) -> Result<Bytes, object_store::Error> {
        let result = self.observe("get", self.store.get(&self.path(key)).await)?;
        result.bytes().await
    }

    /// Objects stored and their total bytes (blobs, thumbnails and unfinished uploads).
    pub async fn usage(&self) -> Result<(u64, u64), object_store::Error> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let mut listing = self.store.list(prefix.as_ref());
        let (mut count, mut bytes) = (0, 0);
        while let Some(meta) = listing.next().await {
            let meta = self.observe("list", meta)?;
            count += 1;
            bytes += meta.size;
        }
        Ok((count, bytes))
    }

    /// A presigned GET URL valid for `ttl`, when the store is S3.
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Option<String> {
        let s3 = self.s3.as_ref()?;
        let started = Instant::now();
        let signed = s3.signed_url(poem::http::Method::GET, &self.path(key), ttl).await;
        m::file_storage_op("presign", started.elapsed(), signed.is_err());
        signed.ok().map(|u| u.to_string())
    }

    fn observe<T>(&self, op: &'static str, result: Result<T, object_store::Error>) -> Result<T, object_store::Error> {
        if let Err(e) = &result {
            m::file_storage_error(op);
            tracing::warn!(files.op = op, error = %e, "file storage failed");
        }
        result
    }
}
