//! The page of a public link, `/s/TOKEN`: the password form when one is
//! needed, then the file, the folder's listing, or (file drop) an upload
//! form that shows nothing of what is there. Downloads come from
//! `/s/TOKEN/download`. Images, PDFs and plain text can be looked at through
//! `/s/TOKEN/view` (inline, sandboxed, never stored by the browser), also
//! when the download is hidden; anything else (HTML above all, which would
//! otherwise render on this server's origin) comes from `/view` as a
//! download, and is refused there when the download is hidden.

use std::collections::HashMap;

use axum::{
    Extension, Form,
    body::Body,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use strongroom_core::{
    Error, Node, NodeKind, Principal, TreePath, files::Ctx, secret::Secret, sharing::PublicLink,
};
use strongroom_dav::{RangeSpec, byte_range, unsatisfiable};

use super::{Attempt, admit, audit, has_pass, pass_cookie, try_password, unknown_token};
use crate::{
    app::App,
    http::{
        client::{Client, set_cookie},
        headers::CspNonce,
        pages::{escape, page},
    },
};

fn status_page(code: StatusCode, title: &str, text: &str) -> Response {
    (code, page(title, &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text))))
        .into_response()
}

fn gone() -> Response {
    status_page(StatusCode::NOT_FOUND, "Not found", "The requested share does not exist anymore.")
}

fn failed(e: &Error) -> Response {
    match e {
        Error::NotFound => gone(),
        Error::Forbidden(m) | Error::BadRequest(m) => {
            status_page(StatusCode::FORBIDDEN, "Not allowed", m)
        }
        e => {
            tracing::warn!(error = %e, "public link page failed");
            status_page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "Please try again later.")
        }
    }
}

/// The link when it may be used now and its password (if any) was given.
enum Gate {
    Open(PublicLink),
    Locked(PublicLink),
    Closed(Response),
}

async fn gate(app: &App, client: &Client, token: &str, headers: &HeaderMap) -> Gate {
    match admit(app, client).await {
        Ok(true) => {}
        Ok(false) => return Gate::Closed(too_many()),
        Err(e) => return Gate::Closed(failed(&e)),
    }
    match app.shares.link(token).await {
        Ok(Some(link)) => match has_pass(app, headers, &link).await {
            Ok(true) => Gate::Open(link),
            Ok(false) => Gate::Locked(link),
            Err(e) => Gate::Closed(failed(&e)),
        },
        Ok(None) => match unknown_token(app, client).await {
            Ok(()) => Gate::Closed(gone()),
            Err(e) => Gate::Closed(failed(&e)),
        },
        Err(e) => Gate::Closed(failed(&e)),
    }
}

fn too_many() -> Response {
    status_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many failed attempts. Try again later.",
    )
}

fn password_form(token: &str, wrong: bool) -> Response {
    let note = if wrong { "<p role=\"alert\">The password is wrong. Try again.</p>" } else { "" };
    let body = format!(
        "<h1>This share is password-protected</h1>{note}\
         <form method=\"post\" action=\"/s/{t}/authenticate\">\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"off\" autofocus required></label>\
         <button type=\"submit\">Open</button></form>",
        t = escape(token)
    );
    let code = if wrong { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
    (code, page("Password required", &body)).into_response()
}

/// The node `rel` (below the share's root) names, through the link's grant.
async fn node_below(
    app: &App,
    link: &PublicLink,
    rel: Option<&str>,
) -> Result<(TreePath, Node), Error> {
    let rel = TreePath::from_segments(rel.unwrap_or("").split('/')).map_err(|_| Error::NotFound)?;
    let who = Principal::public_link(link.share.id);
    let cx = Ctx { who: &who, owner: &link.owner, tokens: &[], grant: Some(&link.grant) };
    let path = rel.rebase(&TreePath::root(), &link.base);
    let node = app.files.stat(&cx, &path).await?.ok_or(Error::NotFound)?;
    Ok((rel, node))
}

pub async fn show(
    State(app): State<App>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Extension(client): Extension<Client>,
    Extension(nonce): Extension<CspNonce>,
    headers: HeaderMap,
) -> Response {
    let link = match gate(&app, &client, &token, &headers).await {
        Gate::Open(l) => l,
        Gate::Locked(_) => return password_form(&token, false),
        Gate::Closed(r) => return r,
    };
    audit(
        &app,
        &client.origin(),
        &link,
        "share.public_access",
        serde_json::json!({ "route": "page" }),
    );
    let heading =
        if link.share.label.is_empty() { link.node.name.clone() } else { link.share.label.clone() };
    let mut body = format!("<h1>{}</h1>", escape(&heading));
    if !link.share.note.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(&link.share.note)));
    }
    if link.grant.is_drop_only() {
        body.push_str(
            "<p>Files you upload here go to the owner; you cannot see what is in this folder.</p>",
        );
        body.push_str(&upload_form(&token, nonce.value()));
        return page(&heading, &body).into_response();
    }
    match node_below(&app, &link, q.get("path").map(String::as_str)).await {
        Ok((rel, node)) if node.kind == NodeKind::Folder => {
            match listing(&app, &link, &token, &rel, &node).await {
                Ok(l) => body.push_str(&l),
                Err(e) => return failed(&e),
            }
            if link.grant.has(strongroom_core::access::perm::CREATE) && rel.is_root() {
                body.push_str(&upload_form(&token, nonce.value()));
            }
        }
        Ok((rel, node)) => {
            body.push_str(&format!("<p>{} bytes</p>", node.size));
            body.push_str(&file_link(&token, &link, &rel, &node));
        }
        Err(e) => return failed(&e),
    }
    page(&heading, &body).into_response()
}

/// The link to a file: its download, or with the download hidden its view,
/// or for a file that cannot be viewed then only its name.
fn file_link(token: &str, link: &PublicLink, rel: &TreePath, file: &Node) -> String {
    let q = utf8_percent_encode(&rel.to_key(), NON_ALPHANUMERIC).to_string();
    let viewable = file.content_type.as_deref().is_some_and(viewable);
    let (route, word) = match (link.grant.hide_download, viewable) {
        (false, _) => ("download", "Download"),
        (true, true) => ("view", "View"),
        (true, false) => return format!("{} (download disabled)", escape(&file.name)),
    };
    format!("<a href=\"/s/{}/{route}?path={q}\">{word} {}</a>", escape(token), escape(&file.name))
}

async fn listing(
    app: &App,
    link: &PublicLink,
    token: &str,
    rel: &TreePath,
    folder: &Node,
) -> Result<String, Error> {
    let who = Principal::public_link(link.share.id);
    let cx = Ctx { who: &who, owner: &link.owner, tokens: &[], grant: Some(&link.grant) };
    let mut out = String::from("<ul>");
    if let Some(up) = rel.parent() {
        let q = utf8_percent_encode(&up.to_key(), NON_ALPHANUMERIC).to_string();
        out.push_str(&format!("<li><a href=\"/s/{}?path={q}\">..</a></li>", escape(token)));
    }
    for child in app.files.children(&cx, folder).await? {
        let p = rel.join(&child.name)?;
        if child.kind == NodeKind::Folder {
            let q = utf8_percent_encode(&p.to_key(), NON_ALPHANUMERIC).to_string();
            out.push_str(&format!(
                "<li><a href=\"/s/{}?path={q}\">{}/</a></li>",
                escape(token),
                escape(&child.name)
            ));
        } else {
            out.push_str(&format!(
                "<li>{} ({} bytes)</li>",
                file_link(token, link, &p, &child),
                child.size
            ));
        }
    }
    out.push_str("</ul>");
    Ok(out)
}

/// The upload form; the script sends each file to the link's WebDAV URL.
fn upload_form(token: &str, nonce: &str) -> String {
    let t = escape(token);
    format!(
        "<form id=\"drop\"><label>Files <input type=\"file\" id=\"files\" multiple required></label>\
         <button type=\"submit\">Upload</button></form><ul id=\"done\"></ul>\
         <script nonce=\"{nonce}\">\
         document.getElementById('drop').addEventListener('submit', async (ev) => {{\
           ev.preventDefault();\
           const done = document.getElementById('done');\
           for (const f of document.getElementById('files').files) {{\
             const r = await fetch('/public.php/dav/files/{t}/' + encodeURIComponent(f.name),\
               {{ method: 'PUT', body: f, credentials: 'same-origin', headers: {{ 'X-Requested-With': 'XMLHttpRequest' }} }});\
             const li = document.createElement('li');\
             li.textContent = f.name + (r.ok ? ': uploaded' : ': failed (' + r.status + ')');\
             done.appendChild(li);\
           }}\
         }});</script>"
    )
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    password: Option<String>,
}

pub async fn authenticate(
    State(app): State<App>,
    Path(token): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let link = match gate(&app, &client, &token, &headers).await {
        Gate::Open(_) => return Redirect::to(&format!("/s/{token}")).into_response(),
        Gate::Locked(l) => l,
        Gate::Closed(r) => return r,
    };
    let password = Secret::new(f.password.unwrap_or_default());
    match try_password(&app, &client, &link, &password).await {
        Ok(Attempt::Right) => {}
        Ok(Attempt::Wrong) => return password_form(&token, true),
        Ok(Attempt::Throttled) => {
            return status_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many wrong passwords. Try again later.",
            );
        }
        Err(e) => return failed(&e),
    }
    let pass = match app.shares.issue_pass(&link.share).await {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let cookie = set_cookie(
        &pass_cookie(link.share.id),
        &pass,
        "Strict",
        Some(strongroom_core::sharing::PASS_SECS),
        client.secure,
    );
    let mut r = Redirect::to(&format!("/s/{token}")).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub async fn download(
    State(app): State<App>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    serve_file(&app, &token, q.get("path").map(String::as_str), &client, &headers, false).await
}

pub async fn view(
    State(app): State<App>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    serve_file(&app, &token, q.get("path").map(String::as_str), &client, &headers, true).await
}

/// Types a browser shows itself, which a hidden download may still show.
fn viewable(content_type: &str) -> bool {
    content_type.starts_with("image/")
        || content_type == "application/pdf"
        || content_type == "text/plain"
}

async fn serve_file(
    app: &App,
    token: &str,
    rel: Option<&str>,
    client: &Client,
    headers: &HeaderMap,
    inline: bool,
) -> Response {
    let link = match gate(app, client, token, headers).await {
        Gate::Open(l) => l,
        Gate::Locked(_) => return password_form(token, false),
        Gate::Closed(r) => return r,
    };
    if link.grant.is_drop_only() {
        return gone();
    }
    let (rel, node) = match node_below(app, &link, rel).await {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    if node.kind != NodeKind::File {
        return status_page(
            StatusCode::BAD_REQUEST,
            "Not a file",
            "Only single files can be downloaded.",
        );
    }
    let ctype = node.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
    if link.grant.hide_download && !(inline && viewable(&ctype)) {
        return status_page(
            StatusCode::FORBIDDEN,
            "Download disabled",
            "The owner has disabled downloads of this share.",
        );
    }
    // Only what the browser shows with a viewer of its own is shown inline.
    let inline = inline && viewable(&ctype);
    let route = if inline { "view" } else { "download" };
    let detail = serde_json::json!({ "route": route, "path": rel.to_key() });
    audit(app, &client.origin(), &link, "share.public_access", detail);
    let who = Principal::public_link(link.share.id);
    let cx = Ctx { who: &who, owner: &link.owner, tokens: &[], grant: Some(&link.grant) };
    // A single range, so that a browser or a download manager can resume.
    let size = node.size.max(0) as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // An If-Range that cannot be read matches nothing: the whole file.
    let if_range = headers.get(header::IF_RANGE).map(|v| v.to_str().unwrap_or(""));
    let (start, end, partial) = match byte_range(range, if_range, &node.etag, size) {
        RangeSpec::Whole => (0, size, false),
        RangeSpec::Part(a, b) => (a, b, true),
        RangeSpec::Unsatisfiable => return unsatisfiable(size),
    };
    let stream = match app.files.read(&cx, &node, start..end).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", node.etag)) {
        h.insert(header::ETAG, v);
    }
    if partial {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!("bytes {start}-{}/{size}", end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&range) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    let h = r.headers_mut();
    let name = utf8_percent_encode(&node.name, NON_ALPHANUMERIC).to_string();
    let disposition = if inline { "inline" } else { "attachment" };
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename*=UTF-8''{name}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctype) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The browser's own image and text viewers style their page inline; a
    // download is shown by nothing.
    let policy = match inline {
        true => "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        false => "sandbox; default-src 'none'",
    };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    if inline {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
