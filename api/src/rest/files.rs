//! Files over REST: multipart upload, upload by a signed URL, and downloads with ETag,
//! conditional and range requests, or a redirect to a presigned bucket URL.

use std::sync::Arc;

use futures_util::TryStreamExt;
use poem::web::Multipart;
use poem::{Body, Request, RequestBody};
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Binary, Json, ParsePayload, Payload, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi, impl_apirequest_for_payload,
};
use tokio_util::io::StreamReader;
use uuid::Uuid;

use super::{ApiTags, BearerAuth, ProblemResponse, svc};
use crate::error::AppError;
use crate::metrics as m;
use crate::service::Services;
use crate::service::files::Readable;
use crate::service::views::AttachmentView;

pub struct FileApi {
    pub services: Option<Arc<Services>>,
}

/// `multipart/form-data` with the file in a part named `file`, read as a stream.
pub struct MultipartFile(Multipart);

impl Payload for MultipartFile {
    const CONTENT_TYPE: &'static str = "multipart/form-data";

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with("multipart/form-data")
    }

    fn schema_ref() -> MetaSchemaRef {
        let file = MetaSchemaRef::Inline(Box::new(MetaSchema { format: Some("binary"), ..MetaSchema::new("string") }));
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            required: vec!["file"],
            properties: vec![("file", file)],
            ..MetaSchema::new("object")
        }))
    }
}

impl ParsePayload for MultipartFile {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(MultipartFile(<Multipart as poem::FromRequest>::from_request(request, body).await?))
    }
}

impl_apirequest_for_payload!(MultipartFile);

/// A file's raw bytes as the request body, read as a stream; any content type, or none
/// (the type is detected from the bytes).
pub struct RawFile(Body);

impl<'a> ApiExtractor<'a> for RawFile {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: <Binary<Body> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(RawFile(<Body as poem::FromRequest>::from_request(request, body).await?))
    }
}

const CACHE: &str = "private, max-age=3600";

#[derive(ApiResponse)]
pub enum Download {
    /// The whole file, with its detected type.
    #[oai(status = 200)]
    Full(
        Binary<Body>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Accept-Ranges")] String,
    ),
    /// The requested byte range.
    #[oai(status = 206)]
    Partial(
        Binary<Body>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Content-Range")] String,
    ),
    /// The client's copy (If-None-Match) is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
    /// Served by the bucket: follow `Location`, a presigned URL valid for a few minutes.
    #[oai(status = 302)]
    Redirect(#[oai(header = "Location")] String, #[oai(header = "Cache-Control")] String),
    /// The range starts past the end of the file.
    #[oai(status = 416)]
    RangeNotSatisfiable(#[oai(header = "Content-Range")] String),
}

/// A single byte range from a `Range` header, resolved against `size`. `Ok(None)`: serve
/// the whole file (no header, or a form this server does not split, such as several
/// ranges); `Err(())`: unsatisfiable.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else { return Ok(None) };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        // The last `end` bytes.
        let Ok(n) = end.parse::<u64>() else { return Ok(None) };
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let Ok(first) = start.parse::<u64>() else { return Ok(None) };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(());
        }
        first..last + 1
    };
    Ok(Some(range))
}

/// Whether an `If-None-Match` header names `etag` (quoted) or `*`.
pub fn matches_etag(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| h.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag))
}

fn disposition(file: &Readable) -> String {
    let inline = crate::files::sniff::is_image(&file.content_type) || file.content_type == "application/pdf";
    let name = &file.row.file_name;
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}", if inline { "inline" } else { "attachment" })
}

type Served = Response<Download>;

async fn serve(
    services: &Services,
    file: Readable,
    range: Option<String>,
    if_none_match: Option<String>,
) -> Result<Served, ProblemResponse> {
    let etag = format!("\"{}\"", file.etag);
    if matches_etag(if_none_match.as_deref(), &etag) {
        m::file_downloaded("not_modified");
        return Ok(Response::new(Download::NotModified(etag, CACHE.into())));
    }
    if let Some(location) = services.files.redirect(&file).await {
        m::file_downloaded("redirect");
        return Ok(Response::new(Download::Redirect(location, "private, max-age=240".into())));
    }
    let size = match file.size {
        Some(size) => u64::try_from(size).unwrap_or(0),
        None => 0,
    };
    let range = if file.size.is_some() && size > 0 { parse_range(range.as_deref(), size) } else { Ok(None) };
    let range = match range {
        Ok(range) => range,
        Err(()) => return Ok(Response::new(Download::RangeNotSatisfiable(format!("bytes */{size}")))),
    };
    let stream = services.files.bytes(&file, range.clone()).await?;
    let body = Body::from_bytes_stream(stream);
    let content_type = file.content_type.clone();
    let security = "default-src 'none'; sandbox";
    let resp = match range {
        Some(r) => {
            m::file_downloaded("partial");
            let content_range = format!("bytes {}-{}/{size}", r.start, r.end - 1);
            Response::new(Download::Partial(Binary(body), etag, CACHE.into(), disposition(&file), content_range))
                .header("content-length", (r.end - r.start).to_string())
        }
        None => {
            m::file_downloaded("full");
            let resp =
                Response::new(Download::Full(Binary(body), etag, CACHE.into(), disposition(&file), "bytes".into()));
            if file.size.is_some() { resp.header("content-length", size.to_string()) } else { resp }
        }
    };
    Ok(resp
        .header("content-type", content_type)
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", security))
}

#[OpenApi(tag = "ApiTags::Files")]
impl FileApi {
    /// Upload a file (multipart, part `file`). Its type is detected from its bytes and must
    /// be allowed; larger than `SYNCCHAT_MAX_UPLOAD_BYTES` is 413. Attach it by passing its
    /// id in `attachmentIds` when sending a message.
    #[oai(path = "/files", method = "post", operation_id = "uploadFile")]
    async fn upload(&self, auth: BearerAuth, body: MultipartFile) -> Result<Json<AttachmentView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let mut multipart = body.0;
        loop {
            let field = multipart.next_field().await.map_err(|e| {
                m::file_rejected("bad_request");
                AppError::bad_input("file", format!("malformed multipart body: {e}"))
            })?;
            let Some(field) = field else {
                m::file_rejected("bad_request");
                return Err(AppError::bad_input("file", "send the file in a multipart part named `file`").into());
            };
            if field.name() != Some("file") {
                continue;
            }
            let name = field.file_name().map(str::to_owned);
            let mut reader = Box::pin(field.into_async_read());
            let view = services.files.upload(&caller, name.as_deref(), &mut reader, "multipart").await?;
            return Ok(Json(view));
        }
    }

    /// Upload a file's raw bytes to a URL from the `createUploadUrl` mutation (no bearer
    /// token: the URL is the credential, valid 10 minutes). Same checks as `uploadFile`.
    /// A URL stores one file: using it again is 409 `CONFLICT` (a refused upload does not
    /// use it up).
    #[oai(path = "/files/uploads/:token", method = "put", operation_id = "uploadFileByUrl")]
    async fn upload_by_url(&self, token: Path<String>, body: RawFile) -> Result<Json<AttachmentView>, ProblemResponse> {
        let services = svc(&self.services)?;
        let stream = body.0.into_bytes_stream().map_err(std::io::Error::other);
        let mut reader = StreamReader::new(stream);
        Ok(Json(services.files.upload_with_ticket(&token.0, &mut reader).await?))
    }

    /// Download a file: for its uploader and the participants of the conversation where it
    /// is attached (anyone else: 404). Supports `Range` (206) and `If-None-Match` (304).
    #[oai(path = "/files/:id", method = "get", operation_id = "downloadFile")]
    async fn download(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "Range")] range: Header<Option<String>>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<Served, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let file = services.files.readable(&caller, id.0, false).await?;
        serve(services, file, range.0, if_none_match.0).await
    }

    /// An image's thumbnail (at most 320 px), once made; 404 before that or for other files.
    #[oai(path = "/files/:id/thumbnail", method = "get", operation_id = "downloadThumbnail")]
    async fn thumbnail(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<Served, ProblemResponse> {
        let services = svc(&self.services)?;
        let caller = auth.caller(services).await?;
        let file = services.files.readable(&caller, id.0, true).await?;
        serve(services, file, None, if_none_match.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some(50..100)));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }

    #[test]
    fn etags() {
        assert!(matches_etag(Some("\"abc\""), "\"abc\""));
        assert!(matches_etag(Some("W/\"x\", \"abc\""), "\"abc\""));
        assert!(matches_etag(Some("*"), "\"abc\""));
        assert!(!matches_etag(Some("\"abd\""), "\"abc\""));
        assert!(!matches_etag(None, "\"abc\""));
    }
}
