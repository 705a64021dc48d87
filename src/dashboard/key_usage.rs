//! Key usage in the dashboard: the small chart of seven days beside each
//! key on Account Security, and a page per key with the chart and the
//! numbers per day and per hour (allowed, and denied by reason).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::pages::nav;
use super::security::no_such_key;
use super::{error_page, render, DashboardState, Flash, Nav};
use crate::auth::session::LoggedIn;
use crate::auth::usage::{by_day, hour_start, Counts, Hour, Outcome, UsageCounter};

/// A bar chart of hourly requests as inline SVG (no script, no inline
/// style: colours come from classes in `static/portico.css`).
pub struct Chart {
    pub width: usize,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// What the chart shows, for screen readers and as a tooltip.
    pub summary: String,
}

/// One hour: the allowed part at the bottom, the denied part on top.
pub struct Bar {
    pub x: usize,
    pub allowed_y: u32,
    pub allowed_height: u32,
    pub denied_y: u32,
    pub denied_height: u32,
    pub title: String,
}

impl Chart {
    /// One bar per hour, scaled so the busiest hour fills `height`.
    pub fn new(series: &[(Hour, Counts)], height: u32) -> Self {
        let peak = series
            .iter()
            .map(|(_, counts)| counts.allowed() + counts.denied())
            .max()
            .unwrap_or(0)
            .max(1);
        let scaled = |n: u32| {
            u32::try_from(u64::from(n) * u64::from(height) / u64::from(peak)).unwrap_or(height)
        };
        let bars = series
            .iter()
            .enumerate()
            .filter(|(_, (_, counts))| !counts.is_empty())
            .map(|(x, (hour, counts))| {
                let total = counts.allowed() + counts.denied();
                // A busy hour is never drawn as nothing.
                let total_height = scaled(total).max(1);
                let allowed_height = scaled(counts.allowed()).min(total_height);
                Bar {
                    x,
                    allowed_y: height - allowed_height,
                    allowed_height,
                    denied_y: height - total_height,
                    denied_height: total_height - allowed_height,
                    title: format!(
                        "{}: {} allowed, {} denied",
                        hour_start(*hour).format("%Y-%m-%d %H:00 UTC"),
                        counts.allowed(),
                        counts.denied()
                    ),
                }
            })
            .collect();
        let mut total = Counts::default();
        for (_, counts) in series {
            total.add(counts);
        }
        Self {
            width: series.len(),
            height,
            bars,
            summary: format!(
                "Last 7 days: {} allowed, {} denied",
                total.allowed(),
                total.denied()
            ),
        }
    }
}

/// A row of numbers: a day or an hour.
struct Row {
    label: String,
    allowed: u32,
    denied: Vec<u32>,
}

impl Row {
    fn new(label: String, counts: &Counts) -> Self {
        Self {
            label,
            allowed: counts.allowed(),
            denied: Outcome::DENIALS.iter().map(|o| counts.get(*o)).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "key_usage.html")]
struct KeyUsagePage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    id: String,
    name: String,
    prefix: String,
    chart: Chart,
    reasons: Vec<&'static str>,
    total: Row,
    days: Vec<Row>,
    /// Hours with any request, newest first.
    hours: Vec<Row>,
}

fn unavailable(err: &anyhow::Error) -> HttpResponse {
    tracing::error!(error = format!("{err:#}"), "reading key usage failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Usage unavailable",
        "Portico could not read this key's usage just now; try again in a moment.",
    )
}

/// `GET /dashboard/security/keys/{id}/usage`.
pub async fn page(
    logged_in: LoggedIn,
    state: web::Data<DashboardState>,
    counter: web::Data<UsageCounter>,
    path: web::Path<String>,
) -> HttpResponse {
    let record = match state.keys.get(&path).await {
        Ok(Some(record)) => record,
        Ok(None) => return no_such_key(),
        Err(err) => return unavailable(&err.into()),
    };
    let series = match counter.series(&record.id).await {
        Ok(Some(series)) => series,
        Ok(None) => return no_such_key(),
        Err(err) => return unavailable(&err),
    };
    let mut total = Counts::default();
    for (_, counts) in &series {
        total.add(counts);
    }
    render(
        StatusCode::OK,
        &KeyUsagePage {
            nav: Some(nav(&logged_in, "security")),
            flash: None,
            prefix: record.display_prefix(),
            id: record.id,
            name: record.name,
            chart: Chart::new(&series, 80),
            reasons: Outcome::DENIALS.iter().map(|o| o.code()).collect(),
            total: Row::new("Last 7 days".to_owned(), &total),
            days: by_day(&series)
                .iter()
                .rev()
                .map(|(day, counts)| Row::new(day.format("%Y-%m-%d").to_string(), counts))
                .collect(),
            hours: series
                .iter()
                .rev()
                .filter(|(_, counts)| !counts.is_empty())
                .map(|(hour, counts)| {
                    Row::new(
                        hour_start(*hour).format("%Y-%m-%d %H:00").to_string(),
                        counts,
                    )
                })
                .collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_hour_fills_the_chart_and_a_quiet_one_still_shows() {
        let mut busy = Counts::default();
        busy.0[Outcome::Allowed.index()] = 90;
        busy.0[Outcome::RateLimited.index()] = 10;
        let mut quiet = Counts::default();
        quiet.0[Outcome::Allowed.index()] = 1;
        let series = vec![(10, busy), (11, Counts::default()), (12, quiet)];
        let chart = Chart::new(&series, 20);
        assert_eq!(chart.bars.len(), 2);
        let top = &chart.bars[0];
        assert_eq!((top.allowed_height, top.denied_height), (18, 2));
        assert_eq!((top.denied_y, top.allowed_y), (0, 2));
        let low = &chart.bars[1];
        assert_eq!((low.x, low.allowed_height + low.denied_height), (2, 1));
        assert_eq!(chart.summary, "Last 7 days: 91 allowed, 10 denied");
    }
}
