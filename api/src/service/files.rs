//! Files: uploads streamed to storage (never held whole in memory) with their type taken
//! from their bytes, attachments on messages, who may read them, and the collector that
//! removes what was never attached.

use super::scopes::Scope;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::buffered::BufWriter;
use sea_orm::{Set, TransactionTrait};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tracing::instrument;
use uuid::Uuid;

use super::views::AttachmentView;
use super::{Accounts, Caller, Context};
use crate::error::{AppError, AppResult};
use crate::files::{ByteStream, FileStore, sniff, thumbs};
use crate::metrics as m;
use crate::storage::{attachment, blob, message, participant, upload_claim};

/// At most this many files on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Bytes buffered per upload before they go to storage (S3's smallest multipart part).
const PART_BYTES: usize = 5 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Uploads streaming at once per node (memory: about one part each).
const MAX_CONCURRENT_UPLOADS: usize = 32;
/// How long an upload URL stays valid.
pub const UPLOAD_URL_TTL_SECS: i64 = 600;

#[derive(Clone, Debug)]
pub struct FileSettings {
    pub max_upload_bytes: u64,
    /// Detected MIME types accepted.
    pub allowed_types: Vec<String>,
    pub orphan_grace: Duration,
}

/// Storage plus the rules' settings, shared by every request.
pub struct Files {
    pub store: FileStore,
    pub settings: FileSettings,
    /// Thumbnails are made a few at a time, off the request path.
    thumbnails: Arc<tokio::sync::Semaphore>,
    /// Uploads in flight, each holding up to one part in memory; more wait their turn.
    uploads: Arc<tokio::sync::Semaphore>,
}

impl Files {
    pub fn new(store: FileStore, settings: FileSettings) -> Files {
        Files {
            store,
            settings,
            thumbnails: Arc::new(tokio::sync::Semaphore::new(2)),
            uploads: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_UPLOADS)),
        }
    }
}

/// A file a caller may read: what to send and where it is.
pub struct Readable {
    pub row: attachment::Model,
    /// The object to serve (the blob, or its thumbnail).
    pub key: String,
    pub content_type: String,
    pub size: Option<i64>,
    /// Strong validator: the bytes' sha256 (a thumbnail's is derived from it).
    pub etag: String,
}

/// A signed URL that accepts one file by `PUT` without a bearer token.
#[derive(Clone, Debug, async_graphql::SimpleObject, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct UploadTicket {
    /// Relative to the server: `PUT` the file's bytes there (any content type).
    pub upload_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub max_bytes: u64,
}

/// A file name as stored and shown: no folders, no control characters, at most 255 chars.
fn clean_name(name: Option<&str>) -> String {
    let base = name.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." { "file".into() } else { cleaned.to_owned() }
}

fn blob_key(sha: &str) -> String {
    format!("blobs/{}/{sha}", &sha[..2.min(sha.len())])
}

fn storage_unavailable(e: impl std::fmt::Display) -> AppError {
    AppError::Unavailable(format!("file storage is unavailable: {e}"))
}

/// Files: the store, the upload rules, attachments and the collector.
pub struct FileService {
    ctx: Context,
    auth: Arc<Accounts>,
    files: Arc<Files>,
}

impl FileService {
    pub fn new(ctx: Context, auth: Arc<Accounts>, files: Files) -> FileService {
        FileService { ctx, auth, files: Arc::new(files) }
    }

    fn files(&self) -> &Files {
        &self.files
    }

    /// Where the files are, for people to read.
    pub fn describe(&self) -> &str {
        self.files.store.describe()
    }

    /// Streams `body` to storage as a file of the caller's (see [`FileService::store_upload`]).
    pub async fn upload<R: AsyncRead + Unpin + Send>(
        &self,
        caller: &Caller,
        file_name: Option<&str>,
        body: &mut R,
        via: &'static str,
    ) -> AppResult<AttachmentView> {
        caller.require(Scope::FilesWrite)?;
        self.store_upload(caller.user_id, file_name, body, via).await
    }

    /// Streams `body` to storage as a file of `owner`'s. The type comes from the first bytes
    /// and must be allowed; past the size limit the upload stops and nothing is kept.
    #[instrument(skip_all, fields(user.id = %owner, via))]
    async fn store_upload<R: AsyncRead + Unpin + Send>(
        &self,
        owner: Uuid,
        file_name: Option<&str>,
        body: &mut R,
        via: &'static str,
    ) -> AppResult<AttachmentView> {
        let started = Instant::now();
        let files = self.files();
        let max = files.settings.max_upload_bytes;
        let name = clean_name(file_name);
        let too_large = || {
            m::file_rejected("too_large");
            AppError::TooLarge(format!("the file is larger than the limit of {max} bytes"))
        };
        let interrupted = |e: std::io::Error| {
            // The HTTP layer caps every body, and says so with this kind.
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                return too_large();
            }
            m::file_rejected("bad_request");
            AppError::bad_input("file", format!("the upload was interrupted: {e}"))
        };

        // The first bytes decide the type before anything is stored.
        let mut head = Vec::with_capacity(sniff::SNIFF_BYTES);
        let mut complete = false;
        while head.len() < sniff::SNIFF_BYTES {
            let mut chunk = vec![0u8; sniff::SNIFF_BYTES - head.len()];
            let n = body.read(&mut chunk).await.map_err(interrupted)?;
            if n == 0 {
                complete = true;
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        if head.len() as u64 > max {
            return Err(too_large());
        }
        // An empty file is empty text, as every file system has it.
        let detected = if head.is_empty() { Some("text/plain".to_owned()) } else { sniff::detect(&head, complete) };
        let content_type = match detected {
            Some(t) if files.settings.allowed_types.contains(&t) => t,
            Some(t) => {
                m::file_rejected("type_not_allowed");
                return Err(AppError::bad_input("file", format!("files of type {t} are not accepted")));
            }
            None => {
                m::file_rejected("type_not_allowed");
                return Err(AppError::bad_input("file", "the file's type could not be recognised from its content"));
            }
        };

        // Stream to a temporary object, hashing as we go.
        let _slot =
            files.uploads.clone().acquire_owned().await.map_err(|_| AppError::Unavailable("shutting down".into()))?;
        let temp = format!("uploads/{}", Uuid::now_v7());
        let mut writer = files.store.writer(&temp, PART_BYTES, &content_type);
        let mut hasher = Sha256::new();
        let mut size = head.len() as u64;
        hasher.update(&head);
        let streamed: AppResult<()> = async {
            writer.write_all(&head).await.map_err(storage_unavailable)?;
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = body.read(&mut buf).await.map_err(interrupted)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > max {
                    return Err(too_large());
                }
                hasher.update(&buf[..n]);
                writer.write_all(&buf[..n]).await.map_err(storage_unavailable)?;
            }
            writer.shutdown().await.map_err(storage_unavailable)
        }
        .await;
        if let Err(e) = streamed {
            abort(&mut writer, files, &temp).await;
            return Err(e);
        }
        let sha = hex::encode(hasher.finalize());
        let key = blob_key(&sha);
        let dims = if sniff::is_image(&content_type) { sniff::dimensions(&head) } else { None };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let row = match self.record_upload(owner, name, content_type.clone(), size, &key, &sha, dims).await {
            Ok(row) => row,
            Err(e) => {
                let _ = files.store.delete(&temp).await;
                return Err(e);
            }
        };
        // The row is committed under the blob's lock, so no deletion can remove the object
        // from here on; place the bytes (identical if they are there already).
        if let Err(e) = files.store.rename(&temp, &key).await {
            let _ = files.store.delete(&temp).await;
            let _ = attachment::delete(&self.ctx.db, row.id).await;
            self.delete_unreferenced_blob(&key).await;
            return Err(storage_unavailable(e));
        }
        if sniff::is_image(&content_type) && row.thumbnail_key.is_none() {
            self.spawn_thumbnail(key, sha);
        }
        m::file_uploaded(via, u64::try_from(size).unwrap_or_default(), started.elapsed());
        Ok(AttachmentView::from_model(&row))
    }

    /// Writes the attachment row, and the blob row it refers to, in one transaction that
    /// holds the blob's lock (see [`FileService::delete_unreferenced_blob`] and [`blob::lock`]).
    #[allow(clippy::too_many_arguments)]
    async fn record_upload(
        &self,
        owner: Uuid,
        name: String,
        content_type: String,
        size: i64,
        key: &str,
        sha: &str,
        dims: Option<(u32, u32)>,
    ) -> AppResult<attachment::Model> {
        let txn = self.ctx.db.begin().await?;
        blob::lock(&txn, key, true, self.ctx.now()).await?;
        let new = attachment::ActiveModel {
            id: Set(Uuid::now_v7()),
            owner_id: Set(owner),
            message_id: Set(None),
            file_name: Set(name),
            content_type: Set(content_type),
            size: Set(size),
            storage_key: Set(key.to_owned()),
            sha256: Set(sha.to_owned()),
            created_at: Set(self.ctx.now()),
            width: Set(dims.and_then(|(w, _)| i32::try_from(w).ok())),
            height: Set(dims.and_then(|(_, h)| i32::try_from(h).ok())),
            thumbnail_key: Set(None),
            thumbnail_type: Set(None),
        };
        let row = attachment::insert(&txn, new).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Makes the thumbnail of an image blob in the background and records it (with the
    /// image's dimensions) on every attachment of that blob.
    fn spawn_thumbnail(&self, key: String, sha: String) {
        let files = self.files.clone();
        let db = self.ctx.db.clone();
        tokio::spawn(async move {
            let Ok(_permit) = files.thumbnails.clone().acquire_owned().await else { return };
            let bytes = match files.store.get_all(&key).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(files.key = %key, error = %e, "could not read an image for its thumbnail");
                    return;
                }
            };
            let made = tokio::task::spawn_blocking(move || thumbs::make(&bytes)).await;
            let thumb = match made {
                Ok(Ok(thumb)) => thumb,
                Ok(Err(e)) => {
                    tracing::info!(files.key = %key, error = %e, "no thumbnail for this image");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the thumbnail task failed");
                    return;
                }
            };
            let ext = if thumb.content_type == "image/png" { "png" } else { "jpg" };
            let thumb_key = format!("thumbs/{sha}.{ext}");
            if files.store.put(&thumb_key, thumb.bytes.into()).await.is_err() {
                return;
            }
            let (w, h) = thumb.original;
            let size = (i32::try_from(w).unwrap_or(i32::MAX), i32::try_from(h).unwrap_or(i32::MAX));
            let updated = attachment::set_thumbnail(&db, &key, &thumb_key, thumb.content_type, size).await;
            if let Err(e) = updated {
                tracing::warn!(error = %e, "could not record a thumbnail");
            }
        });
    }

    /// Objects in file storage and their bytes.
    pub async fn storage_usage(&self) -> AppResult<(u64, u64)> {
        self.files().store.usage().await.map_err(storage_unavailable)
    }

    /// A signed URL for one upload, for clients that cannot send multipart (GraphQL).
    pub fn upload_ticket(&self, caller: &Caller, file_name: &str) -> AppResult<UploadTicket> {
        caller.require(Scope::FilesWrite)?;
        let name = clean_name(Some(file_name));
        let token = self.auth.tokens().issue_upload(caller.user_id, caller.session_id, &name, UPLOAD_URL_TTL_SECS)?;
        Ok(UploadTicket {
            upload_url: format!("/api/v1/files/uploads/{token}"),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(UPLOAD_URL_TTL_SECS),
            max_bytes: self.files().settings.max_upload_bytes,
        })
    }

    /// Stores the body sent to an upload URL, for the user the URL was made for (whose
    /// session must still be live). A URL stores one file: the first upload claims it in the
    /// database (so on every node), a later one is `CONFLICT`; a refused upload gives the
    /// URL back.
    pub async fn upload_with_ticket<R: AsyncRead + Unpin + Send>(
        &self,
        token: &str,
        body: &mut R,
    ) -> AppResult<AttachmentView> {
        let claims = self.auth.tokens().verify_upload(token)?;
        self.auth.session_caller(claims.sub, claims.sid).await?;
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(chrono::Utc::now);
        let claim = upload_claim::ActiveModel {
            token_id: Set(claims.jti),
            user_id: Set(claims.sub),
            expires_at: Set(expires_at),
            created_at: Set(self.ctx.now()),
        };
        if let Err(e) = upload_claim::claim(&self.ctx.db, claim).await {
            return Err(if crate::storage::is_unique_violation(&e) {
                AppError::Conflict("this upload URL was already used: ask for a new one".into())
            } else {
                e.into()
            });
        }
        let stored = self.store_upload(claims.sub, Some(&claims.name), body, "upload_url").await;
        if stored.is_err() {
            let released = upload_claim::release(&self.ctx.db, claims.jti).await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "could not release an upload URL after a refused upload");
            }
        }
        stored
    }

    /// Whether `caller` may read attachment `id`: its uploader, or a participant of the
    /// conversation where it is attached. Anyone else gets `NOT_FOUND`.
    pub async fn readable(&self, caller: &Caller, id: Uuid, thumbnail: bool) -> AppResult<Readable> {
        caller.require(Scope::MessagesRead)?;
        let row = attachment::find(&self.ctx.db, id).await?.ok_or_else(|| AppError::not_found("file"))?;
        if row.owner_id != caller.user_id {
            let Some(message_id) = row.message_id else { return Err(AppError::not_found("file")) };
            let msg = message::find(&self.ctx.db, message_id).await?;
            let visible = match msg {
                Some(msg) if msg.deleted_at.is_none() => {
                    participant::find(&self.ctx.db, msg.conversation_id, caller.user_id).await?.is_some()
                }
                _ => false,
            };
            if !visible {
                return Err(AppError::not_found("file"));
            }
        }
        if thumbnail {
            let (Some(key), Some(content_type)) = (row.thumbnail_key.clone(), row.thumbnail_type.clone()) else {
                return Err(AppError::NotFound("this file has no thumbnail (yet)".into()));
            };
            let etag = format!("{}-thumb", row.sha256);
            return Ok(Readable { row, key, content_type, size: None, etag });
        }
        Ok(Readable {
            key: row.storage_key.clone(),
            content_type: row.content_type.clone(),
            size: Some(row.size),
            etag: row.sha256.clone(),
            row,
        })
    }

    /// The bytes of a readable file, or of a range of it.
    pub async fn bytes(&self, file: &Readable, range: Option<std::ops::Range<u64>>) -> AppResult<ByteStream> {
        self.files().store.get(&file.key, range).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => AppError::not_found("file"),
            other => storage_unavailable(other),
        })
    }

    /// A presigned URL for the file when the store is S3 and redirects are on.
    pub async fn redirect(&self, file: &Readable) -> Option<String> {
        let store = &self.files().store;
        if !store.redirects() {
            return None;
        }
        store.presigned_get(&file.key, Duration::from_secs(300)).await
    }

    /// Attaches files to a new message inside its storing transaction: only the sender's own
    /// files, not attached yet.
    pub(crate) async fn attach<C: sea_orm::ConnectionTrait>(
        txn: &C,
        sender: Uuid,
        message_id: Uuid,
        ids: &[Uuid],
    ) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if attachment::attach(txn, sender, message_id, ids).await? != ids.len() as u64 {
            // An id that names no file of the sender's still free to attach: missing, as on
            // every route (whether it exists for someone else is not told).
            return Err(AppError::NotFound(
                "attachmentIds: no file you uploaded and have not attached yet has one of these ids".into(),
            ));
        }
        Ok(())
    }

    /// The attachments of each of `message_ids`, oldest first.
    pub(crate) async fn attachment_views(&self, message_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<AttachmentView>>> {
        let mut out: HashMap<Uuid, Vec<AttachmentView>> = HashMap::new();
        let mut rows = attachment::of_messages(&self.ctx.db, message_ids).await?;
        rows.sort_by_key(|r| r.id);
        for row in rows {
            if let Some(mid) = row.message_id {
                out.entry(mid).or_default().push(AttachmentView::from_model(&row));
            }
        }
        Ok(out)
    }

    /// After a message was deleted: its attachments go, and their bytes too when nothing
    /// else refers to them.
    pub(crate) async fn drop_attachments_of(&self, message_id: Uuid) {
        let rows = attachment::of_messages(&self.ctx.db, &[message_id]).await;
        let Ok(rows) = rows else { return };
        if rows.is_empty() {
            return;
        }
        let deleted = attachment::delete_of_message(&self.ctx.db, message_id).await;
        if deleted.is_ok() {
            m::files_collected("deleted_message", rows.len() as u64);
            for row in rows {
                self.delete_unreferenced_blob(&row.storage_key).await;
            }
        }
    }

    /// Deletes uploads never attached within the grace period; returns how many.
    #[instrument(skip(self))]
    pub async fn collect_orphans(&self) -> AppResult<u64> {
        let grace = chrono::Duration::from_std(self.files().settings.orphan_grace).unwrap_or(chrono::Duration::days(1));
        let cutoff = self.ctx.now() - grace;
        let mut collected = 0;
        loop {
            let batch = attachment::orphans(&self.ctx.db, cutoff, 200).await?;
            if batch.is_empty() {
                break;
            }
            for row in &batch {
                // Only if it is still an orphan: a send may have attached it meanwhile.
                if attachment::delete_orphan(&self.ctx.db, row.id).await? {
                    collected += 1;
                    self.delete_unreferenced_blob(&row.storage_key).await;
                }
            }
            if batch.len() < 200 {
                break;
            }
        }
        m::files_collected("orphan", collected);
        // Claims of upload URLs that have expired guard nothing any more.
        upload_claim::delete_expired(&self.ctx.db, chrono::Utc::now() - chrono::Duration::minutes(5)).await?;
        // Uploads cut off mid-stream (a client that went away) leave temporary objects.
        let stale = chrono::Utc::now() - chrono::Duration::hours(1);
        match self.files().store.delete_older_than("uploads", stale).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files.removed = n, "removed unfinished uploads"),
            Err(e) => tracing::warn!(error = %e, "could not sweep unfinished uploads"),
        }
        Ok(collected)
    }

    /// Deletes a blob (and its thumbnails) when no attachment refers to it any more. The
    /// check and the deletion happen under the blob row's lock, which an upload of the same
    /// bytes also takes before recording itself: an upload either lands first (and the blob
    /// stays) or waits, then stores the bytes again.
    async fn delete_unreferenced_blob(&self, key: &str) {
        if let Err(e) = self.try_delete_unreferenced_blob(key).await {
            tracing::warn!(files.key = key, error = %e, "could not delete an unreferenced file");
        }
    }

    async fn try_delete_unreferenced_blob(&self, key: &str) -> AppResult<()> {
        let txn = self.ctx.db.begin().await?;
        if !blob::lock(&txn, key, false, self.ctx.now()).await? {
            return Ok(());
        }
        if attachment::count_with_key(&txn, key).await? > 0 {
            return Ok(());
        }
        let store = &self.files().store;
        store.delete(key).await.map_err(storage_unavailable)?;
        if let Some(sha) = key.rsplit('/').next() {
            for ext in ["jpg", "png"] {
                store.delete(&format!("thumbs/{sha}.{ext}")).await.map_err(storage_unavailable)?;
            }
        }
        blob::delete(&txn, key).await?;
        txn.commit().await?;
        Ok(())
    }
}

async fn abort(writer: &mut BufWriter, files: &Files, temp: &str) {
    if let Err(e) = writer.abort().await {
        tracing::debug!(error = %e, "aborting an upload");
    }
    // A local store may have written the object already; make sure nothing is left.
    let _ = files.store.delete(temp).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_folders_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\Users\\a\\cat.png")), "cat.png");
        assert_eq!(clean_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(clean_name(None), "file");
    }
}
