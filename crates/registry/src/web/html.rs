//! HTML rendering of the directory (no templates engine, no build step: escaped strings and a little JS).

use axum::response::Html;

use super::summary::{Repository, Summary};
use crate::digest::Digest;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Bytes in human units (as `docker images`: 1000-based).
pub fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn short(d: &Digest) -> String {
    format!("{}:{}", d.algorithm().name(), &d.hex()[..12])
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;background:#f5f7fa;color:#1b2733}
header{background:#0b3d91;color:#fff;padding:14px 24px;display:flex;gap:24px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600;font-size:20px}
main{max-width:1000px;margin:24px auto;padding:0 16px}
input[type=search]{padding:8px 12px;font-size:16px;width:320px;border-radius:6px;border:1px solid #ccd}
.card{background:#fff;border-radius:8px;padding:14px 18px;margin:12px 0;box-shadow:0 1px 3px #0002}
.card h2{margin:0 0 6px;font-size:18px}.card h2 a{color:#0b3d91}
.meta{color:#556;font-size:14px;display:flex;gap:18px;flex-wrap:wrap}
code,pre{background:#eef1f5;border-radius:4px;padding:2px 6px;font-size:13px}
pre{padding:10px;overflow:auto;max-height:400px}
button.copy{margin-left:8px;font-size:12px;cursor:pointer}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:6px 8px;border-bottom:1px solid #e3e7ee;text-align:left;font-size:14px}
.empty{color:#667;padding:20px}
"#;

const SCRIPT: &str = r#"
function copyText(id){const t=document.getElementById(id).textContent;
 if(navigator.clipboard){navigator.clipboard.writeText(t).catch(()=>{});}
 const b=document.querySelector('[data-copy="'+id+'"]');if(b){b.textContent='copied';}}
function filterRepos(q){q=q.toLowerCase();let shown=0;
 document.querySelectorAll('.card[data-name]').forEach(c=>{const v=c.dataset.name.includes(q);c.style.display=v?'':'none';if(v)shown++;});
 const n=document.getElementById('count');if(n){n.textContent=shown;}}
"#;

fn layout(title: &str, search: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style></head><body>\
<header><a href=\"/\">berth registry</a><form action=\"/\" method=\"get\" role=\"search\">\
<input type=\"search\" id=\"q\" name=\"q\" placeholder=\"Search repositories\" value=\"{s}\" \
oninput=\"filterRepos(this.value)\" autocomplete=\"off\"></form></header><main>{body}</main>\
<script>{SCRIPT}</script></body></html>",
        t = esc(title),
        s = esc(search),
    ))
}

/// The front page.
pub fn index(host: &str, q: &str, repos: &[Repository]) -> Html<String> {
    let mut b = format!(
        "<p><span id=\"count\">{}</span> repositories</p>",
        repos.len()
    );
    if repos.is_empty() {
        b.push_str(
            "<div class=\"empty\">No repositories yet. Push one: <code>skopeo copy ... docker://",
        );
        b.push_str(&esc(host));
        b.push_str("/name:tag</code></div>");
    }
    for (i, r) in repos.iter().enumerate() {
        let latest = r.latest();
        let tag = latest.map(|t| t.name.as_str()).unwrap_or("latest");
        let pull = format!("docker pull {host}/{}:{tag}", r.name);
        b.push_str(&format!(
            "<div class=\"card\" data-name=\"{n}\"><h2><a class=\"repo\" href=\"/r/{n}\">{n}</a></h2>\
<div class=\"meta\"><span>{tags} tag{pl}</span><span>{size}</span><span>{plat}</span><span>pushed {pushed}</span></div>\
<p><code id=\"pull{i}\">{pull}</code><button class=\"copy\" data-copy=\"pull{i}\" onclick=\"copyText('pull{i}')\">copy</button></p></div>",
            n = esc(&r.name),
            tags = r.tags.len(),
            pl = if r.tags.len() == 1 { "" } else { "s" },
            size = latest.map(|t| human_size(t.summary.size)).unwrap_or_default(),
            plat = esc(&latest.map(|t| t.summary.platforms.join(", ")).unwrap_or_default()),
            pushed = esc(latest.map(|t| t.pushed.as_str()).unwrap_or("")),
            pull = esc(&pull),
        ));
    }
    layout("berth registry", q, &b)
}

/// A repository's page.
pub fn repository(host: &str, r: &Repository, manifests: &[(Digest, Summary)]) -> Html<String> {
    let mut b = format!("<h1 id=\"repo-name\">{}</h1>", esc(&r.name));
    b.push_str("<table><tr><th>tag</th><th>digest</th><th>type</th><th>size</th><th>platforms</th><th>pushed</th><th>pull</th></tr>");
    for (i, t) in r.tags.iter().enumerate() {
        let pull = format!("docker pull {host}/{}:{}", r.name, t.name);
        b.push_str(&format!(
            "<tr class=\"tag\"><td>{}</td><td><a href=\"#m-{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
<td><code id=\"pull{i}\">{}</code><button class=\"copy\" data-copy=\"pull{i}\" onclick=\"copyText('pull{i}')\">copy</button></td></tr>",
            esc(&t.name),
            t.digest.hex(),
            esc(&short(&t.digest)),
            esc(t.summary.media_type.rsplit('.').nth(1).unwrap_or(&t.summary.media_type)),
            human_size(t.summary.size),
            esc(&t.summary.platforms.join(", ")),
            esc(&t.pushed),
            esc(&pull),
        ));
    }
    b.push_str("</table>");
    for (d, s) in manifests {
        b.push_str(&format!(
            "<div class=\"card manifest\" id=\"m-{}\"><h2><code>{}</code></h2><div class=\"meta\"><span>{}</span><span>{}</span></div>",
            d.hex(),
            esc(&d.to_string()),
            esc(&s.media_type),
            human_size(s.size)
        ));
        if !s.children.is_empty() {
            b.push_str("<table><tr><th>platform</th><th>manifest</th></tr>");
            for (cd, p) in &s.children {
                b.push_str(&format!(
                    "<tr><td>{}</td><td><code>{}</code></td></tr>",
                    esc(p),
                    esc(&cd.to_string())
                ));
            }
            b.push_str("</table>");
        }
        if !s.layers.is_empty() {
            b.push_str("<h3>layers</h3><table class=\"layers\"><tr><th>#</th><th>digest</th><th>size</th><th>type</th></tr>");
            for (i, (ld, size, mt)) in s.layers.iter().enumerate() {
                b.push_str(&format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    i + 1,
                    esc(&ld.to_string()),
                    human_size(*size),
                    esc(mt)
                ));
            }
            b.push_str("</table>");
        }
        if let Some((cd, json)) = &s.config {
            b.push_str(&format!(
                "<details><summary>config <code>{}</code></summary><pre>{}</pre></details>",
                esc(&short(cd)),
                esc(json)
            ));
        }
        b.push_str("</div>");
    }
    layout(&format!("{} - berth registry", r.name), "", &b)
}

/// A missing repository.
pub fn not_found(name: &str) -> Html<String> {
    layout(
        "not found",
        "",
        &format!("<div class=\"empty\">No repository {}.</div>", esc(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }
}
