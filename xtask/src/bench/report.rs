//! What the bench found, as `docs/benchmarks.md` (tables of medians, ranges and ratios) and
//! `docs/benchmarks.svg` (one bar chart per case, drawn here).

use std::fmt::Write as _;

use super::clients::Client;
use super::{Case, Sample};

/// The samples of one client in one case.
pub(crate) struct Row {
    pub(crate) client: Client,
    pub(crate) samples: Vec<Sample>,
}

impl Row {
    fn median(&self, of: impl Fn(&Sample) -> f64) -> f64 {
        let mut values: Vec<f64> = self.samples.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    }

    fn range(&self, of: impl Fn(&Sample) -> f64) -> (f64, f64) {
        let values = self.samples.iter().map(of);
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
    }
}

/// One case's results.
pub(crate) struct Table {
    pub(crate) case: Case,
    /// How the store was reached.
    pub(crate) link: &'static str,
    /// Where the store kept its data: "store on disk" or "store in memory".
    pub(crate) store: &'static str,
    pub(crate) rows: Vec<Row>,
}

impl Table {
    fn title(&self) -> String {
        format!("{}, {}, {}", self.case.title(), self.link, self.store)
    }

    /// Throughput of one sample in the case's unit (MiB/s or files/s).
    fn rate(&self, sample: &Sample) -> f64 {
        self.case.units() / sample.secs
    }

    fn ferry_rate(&self) -> f64 {
        self.rows
            .iter()
            .find(|r| r.client == Client::Ferry)
            .map_or(f64::NAN, |r| r.median(|s| self.rate(s)))
    }

    /// The markdown table.
    pub(crate) fn markdown(&self) -> String {
        let unit = self.case.unit();
        let mut out = format!(
            "### {}\n\n| client | {unit} (median) | min–max | ferry × | seconds | CPU s | peak RSS MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
            self.title()
        );
        let ferry = self.ferry_rate();
        for row in &self.rows {
            let rate = row.median(|s| self.rate(s));
            let (lo, hi) = row.range(|s| self.rate(s));
            let ratio = if row.client == Client::Ferry {
                "—".to_owned()
            } else {
                format!("{:.2}", ferry / rate)
            };
            let _ = writeln!(
                out,
                "| {} | {rate:.0} | {lo:.0}–{hi:.0} | {ratio} | {:.2} | {:.1} | {:.0} |",
                row.client.label(),
                row.median(|s| s.secs),
                row.median(|s| s.cpu_secs),
                row.median(|s| s.rss_kib as f64) / 1024.0,
            );
        }
        out
    }

    /// One bar chart at `top` (pixels), `width` wide; its height.
    fn svg(&self, out: &mut String, top: f64, width: f64) -> f64 {
        let rates: Vec<(f64, f64, f64)> = self
            .rows
            .iter()
            .map(|r| {
                let (lo, hi) = r.range(|s| self.rate(s));
                (r.median(|s| self.rate(s)), lo, hi)
            })
            .collect();
        let most = rates.iter().map(|r| r.2).fold(1.0, f64::max);
        let (label_w, bar_h, gap) = (300.0, 22.0, 8.0);
        let scale = (width - label_w - 90.0) / most;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{:.0}" font-weight="bold">{} ({})</text>"#,
            top + 16.0,
            self.title(),
            self.case.unit()
        );
        for (i, (row, (median, lo, hi))) in self.rows.iter().zip(&rates).enumerate() {
            let y = top + 28.0 + i as f64 * (bar_h + gap);
            let colour = if row.client == Client::Ferry {
                "#1565d8"
            } else {
                "#9aa5b1"
            };
            let mid = y + bar_h / 2.0;
            let _ = writeln!(
                out,
                r##"<text x="10" y="{:.0}">{}</text><rect x="{label_w}" y="{y:.0}" width="{:.1}" height="{bar_h}" fill="{colour}"/><line x1="{:.1}" x2="{:.1}" y1="{mid:.0}" y2="{mid:.0}" stroke="#222"/><text x="{:.1}" y="{:.0}">{median:.0}</text>"##,
                mid + 5.0,
                row.client.label(),
                median * scale,
                label_w + lo * scale,
                label_w + hi * scale,
                label_w + hi.max(*median) * scale + 6.0,
                mid + 5.0,
            );
        }
        28.0 + self.rows.len() as f64 * (bar_h + gap) + 16.0
    }
}

/// The whole chart.
pub(crate) fn svg(tables: &[Table]) -> String {
    let width = 900.0;
    let mut body = String::new();
    let mut top = 10.0;
    for table in tables {
        top += table.svg(&mut body, top, width);
    }
    // Said once, under the charts: a title with it ran past the chart's width.
    let _ = writeln!(
        body,
        r#"<text x="10" y="{:.0}">Bars: the median; whiskers: min–max.</text>"#,
        top + 16.0
    );
    top += 28.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{top:.0}\" \
         font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n{body}</svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each chart's title fits the drawing (13 px bold sans-serif is under 8 px a character):
    /// the WAN cases' titles with the legend in them ran past it.
    #[test]
    fn every_title_fits_the_chart() {
        let table = |case, store| Table {
            case,
            link: "WAN: 40 ms round trip, 20 MiB/s per connection",
            store,
            rows: Vec::new(),
        };
        let drawn = svg(&[
            table(Case::Big(1 << 30), "store on disk"),
            table(Case::Small(50_000, 1 << 10), "store in memory"),
        ]);
        let width: f64 = drawn
            .split("width=\"")
            .nth(1)
            .and_then(|w| w.split('"').next())
            .and_then(|w| w.parse().ok())
            .expect("the drawing's width");
        let titles: Vec<&str> = drawn
            .lines()
            .filter(|l| l.contains("font-weight=\"bold\""))
            .filter_map(|l| l.split('>').nth(1)?.split("</text").next())
            .collect();
        assert_eq!(titles.len(), 2, "{drawn}");
        for title in titles {
            let needs = 10.0 + 8.0 * title.chars().count() as f64;
            assert!(needs <= width, "{title:?} needs {needs} px of {width}");
        }
        assert!(drawn.contains("whiskers: min–max"), "the legend, once");
    }
}
