//! The HTML durability report: the Markdown report's tables plus charts drawn as inline SVG (no
//! scripts, no network): seed 000's picture per strategy, the loss window per strategy and
//! profile, put latency per strategy, and throughput against loss window.

use serde_json::Value;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const COLORS: [&str; 7] =
    ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];

/// Seed 000's picture for one strategy: bytes written (the write head) and bytes durable over
/// virtual time; the shaded gap is what a power cut would take.
fn picture(series: &Value) -> String {
    let name = series["strategy"].as_str().unwrap_or("");
    let points: Vec<(f64, f64, f64)> = series["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?, p[2].as_f64()?)))
        .collect();
    let (w, h, pad) = (360.0, 170.0, 34.0);
    let tmax = points.last().map_or(1.0, |p| p.0).max(1.0);
    let ymax = points.iter().map(|p| p.1).fold(1.0, f64::max);
    let x = |t: f64| pad + t / tmax * (w - pad - 8.0);
    let y = |b: f64| h - pad + 10.0 - b / ymax * (h - pad - 4.0);
    let line = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(f(p)))).collect::<Vec<_>>().join(" ")
    };
    let mut gap: Vec<String> =
        points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
    gap.extend(points.iter().rev().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2))));
    format!(
        r##"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{n}: write head and durable-up-to over time">
<title>{n}</title>
<polygon points="{gap}" fill="#ffdd57" opacity="0.6"/>
<polyline points="{head}" fill="none" stroke="#d62728" stroke-width="1.5"/>
<polyline points="{dur}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{pad}" y1="4" x2="{pad}" y2="{b}" stroke="#333"/>
<text x="{pad}" y="{lb}" font-size="10">0</text><text x="{r}" y="{lb}" font-size="10" text-anchor="end">{ts:.0} s</text>
<text x="2" y="12" font-size="10">{kb:.0} KB</text>
</svg><figcaption>{n}</figcaption></figure>"##,
        n = esc(name),
        gap = gap.join(" "),
        head = line(&|p| p.1),
        dur = line(&|p| p.2),
        b = h - pad + 10.0,
        r = w - 8.0,
        lb = h - pad + 24.0,
        ts = tmax / 1000.0,
        kb = ymax / 1000.0,
    )
}

/// Horizontal bars on a log scale: (label, value, color index).
fn bars(title: &str, unit: &str, rows: &[(String, f64, usize)], legend: &[&str]) -> String {
    let (w, row_h, left) = (640.0, 16.0, 230.0);
    let h = rows.len() as f64 * row_h + 40.0;
    let max = rows.iter().map(|r| r.1).fold(1.0, f64::max).log10().ceil().max(1.0);
    let scale = |v: f64| if v <= 1.0 { 0.0 } else { v.log10() / max * (w - left - 70.0) };
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, (label, v, c)) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * row_h;
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" font-size="11" text-anchor="end">{l}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="12" fill="{col}"/><text x="{vx:.1}" y="{ty}" font-size="10">{v} {unit}</text>"#,
            lx = left - 6.0,
            ty = y + 10.0,
            l = esc(label),
            bw = scale(*v),
            col = COLORS[c % COLORS.len()],
            vx = left + scale(*v) + 4.0,
            v = if *v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") },
        );
    }
    for (i, name) in legend.iter().enumerate() {
        let x = left + i as f64 * 150.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty}" font-size="11">{n}</text>"#,
            y = h - 18.0,
            c = COLORS[i],
            tx = x + 14.0,
            ty = h - 9.0,
            n = esc(name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Throughput (real disk, 100 B) against the loss window (ext4-ordered power cut), log-log.
fn scatter(doc: &Value) -> String {
    let engine = &doc["real_disk"]["sizes"][0]["engine"];
    let mut pts = Vec::new();
    for r in doc["simulated"]["rows"].as_array().into_iter().flatten() {
        // One o_sync variant: the three sit on the same spot (no loss, similar speed).
        let name = r["strategy"].as_str().unwrap_or("");
        let variant = name.starts_with("o_sync") && name != "o_sync (fdatasync)";
        if r["profile"] == "ext4-ordered" && r["crash"] == "power cut" && !variant {
            if let (Some(win), Some(tp)) =
                (r["loss_window_max_ms"].as_f64(), engine[name]["per_sec"].as_f64())
            {
                pts.push((name.to_string(), win.max(0.01), tp.max(1.0)));
            }
        }
    }
    let (w, h, pad) = (640.0, 320.0, 50.0);
    let xmax = pts.iter().map(|p| p.1).fold(10.0, f64::max).log10().ceil();
    let ymax = pts.iter().map(|p| p.2).fold(10.0, f64::max).log10().ceil();
    let x = |v: f64| pad + (v.log10() + 2.0) / (xmax + 2.0) * (w - pad - 20.0);
    let y = |v: f64| h - pad - v.log10() / ymax * (h - pad - 20.0);
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="throughput against loss window"><title>puts/s against loss window</title>"#
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{pad}" y1="10" x2="{pad}" y2="{b}" stroke="#333"/><text x="{cx}" y="{lb}" font-size="11" text-anchor="middle">worst loss window after a power cut (ms, log; ext4-ordered)</text><text x="12" y="{cy}" font-size="11" transform="rotate(-90 12 {cy})" text-anchor="middle">puts/s on this disk (log)</text>"##,
        b = h - pad,
        r = w - 20.0,
        cx = w / 2.0,
        lb = h - 12.0,
        cy = h / 2.0
    );
    for (i, (name, win, tp)) in pts.iter().enumerate() {
        let _ = write!(
            s,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{c}"/><text x="{tx:.1}" y="{ty:.1}" font-size="10">{n}</text>"#,
            cx = x(*win),
            cy = y(*tp),
            c = COLORS[i % COLORS.len()],
            tx = x(*win) - 4.0,
            ty = y(*tp) + if i % 2 == 0 { -9.0 } else { 17.0 },
            n = esc(name)
        );
    }
    s.push_str("</svg><figcaption>Up and to the left is fast and safe; each strategy picks two of safe, fast, simple.</figcaption></figure>");
    s
}

fn md_tables_to_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if !in_table {
                out.push_str("<table><tr>");
                for c in &cells {
                    let _ = write!(out, "<th>{}</th>", esc(c));
                }
                out.push_str("</tr>\n");
                in_table = true;
            } else {
                out.push_str("<tr>");
                for c in &cells {
                    let _ = write!(out, "<td>{}</td>", esc(c));
                }
                out.push_str("</tr>\n");
            }
            continue;
        }
        if in_table {
            out.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(out, "<h3>{}</h3>", esc(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, "<h2>{}</h2>", esc(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", esc(h));
        } else if let Some(li) = line.strip_prefix("- ") {
            let _ = writeln!(out, "<p>&bull; {}</p>", esc(li).replace('`', ""));
        } else if !line.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", esc(line).replace('`', ""));
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    out
}

/// The whole HTML page.
pub fn html(doc: &Value) -> String {
    let mut body = String::new();
    body.push_str("<h2>Seed 000's picture: the write head and the durable-up-to marker</h2><p>Bytes written (red) and bytes durable (blue) over ~40 s of virtual time on ext4-ordered, a put every 10 ms. The yellow gap is what a power cut at that moment would take.</p><div class=\"grid\">");
    for s in doc["picture"].as_array().into_iter().flatten() {
        body.push_str(&picture(s));
    }
    body.push_str("</div><h2>Throughput against loss window</h2>");
    body.push_str(&scatter(doc));
    let mut loss = Vec::new();
    for r in doc["simulated"]["rows"].as_array().into_iter().flatten() {
        if r["crash"] == "power cut" {
            let c = usize::from(r["profile"] == "ext4-ordered");
            loss.push((
                format!(
                    "{} ({})",
                    r["strategy"].as_str().unwrap_or(""),
                    r["profile"].as_str().unwrap_or("")
                ),
                r["loss_window_max_ms"].as_f64().unwrap_or(0.0),
                c,
            ));
        }
    }
    body.push_str("<h2>Worst loss window after a power cut, per profile</h2>");
    body.push_str(&bars("loss window (ms)", "ms", &loss, &["posix", "ext4-ordered"]));
    let mut lat = Vec::new();
    if let Some(engine) = doc["real_disk"]["sizes"][0]["engine"].as_object() {
        for (name, v) in engine {
            lat.push((format!("{name} p50"), v["latency"]["p50_us"].as_f64().unwrap_or(0.0), 0));
            lat.push((format!("{name} p99"), v["latency"]["p99_us"].as_f64().unwrap_or(0.0), 1));
        }
    }
    body.push_str("<h2>Put latency on this disk (100-byte values)</h2>");
    body.push_str(&bars("put latency (us)", "us", &lat, &["p50", "p99"]));
    body.push_str(&md_tables_to_html(&crate::report::markdown(doc)));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>powercut durability report</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}.grid{{display:flex;flex-wrap:wrap;gap:8px}}figure{{margin:0}}figcaption{{font-size:12px;text-align:center}}</style></head>\n<body>\n<h1>powercut durability report</h1>\n{body}\n</body></html>\n"
    )
}
