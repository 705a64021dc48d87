//! Key usage in the dashboard: the small chart of seven days beside each
//! key on Account Security, and a page per key with the chart and the
//! numbers per day and per hour (allowed, and denied by reason).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::pages::nav;
use super::security::no_such_key;
use super::usage_chart::Chart;
use super::{error_page, render, DashboardError, Flash, KeyPages, Nav};
use crate::auth::session::LoggedIn;
use crate::auth::usage::{by_day, hour_start, Counts, Outcome, UsageCounter};

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
    state: web::Data<KeyPages>,
    counter: web::Data<UsageCounter>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let record = match state.keys.get(&path).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(no_such_key()),
        Err(err) => return Ok(unavailable(&err.into())),
    };
    let series = match counter.series(&record.id).await {
        Ok(Some(series)) => series,
        Ok(None) => return Err(no_such_key()),
        Err(err) => return Ok(unavailable(&err)),
    };
    let mut total = Counts::default();
    for (_, counts) in &series {
        total.add(counts);
    }
    Ok(render(
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
    ))
}
