//! The ask form, a job's page (refreshing until the answer is there, the
//! Markdown rendered with any HTML in it escaped) and the queue page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::pages::nav;
use super::{error_page, redirect, render, Flash, Nav};
use crate::auth::session::LoggedIn;
use crate::jobs::{submit_question, AskRequest, Job, JobId, JobQueue, JobStatus};
use crate::workspaces::Registry;

const QUESTION_PREVIEW_CHARS: usize = 120;
const RECENT_ROWS: usize = 20;

/// A job as a row of the jobs table.
pub struct JobRow {
    pub id: String,
    pub status: &'static str,
    pub workspace: String,
    pub question: String,
    pub created: String,
}

impl JobRow {
    pub fn new(job: &Job, registry: &Registry) -> Self {
        let mut question: String = job.question.chars().take(QUESTION_PREVIEW_CHARS).collect();
        if job.question.chars().count() > QUESTION_PREVIEW_CHARS {
            question.push('…');
        }
        Self {
            id: job.id.to_string(),
            status: job.status.as_str(),
            workspace: registry
                .get(&job.workspace_id)
                .map_or_else(|| format!("{} (removed)", job.workspace_id), |w| w.name),
            question,
            created: job.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

pub fn rows(jobs: &[Job], registry: &Registry) -> Vec<JobRow> {
    jobs.iter().map(|job| JobRow::new(job, registry)).collect()
}

#[derive(Deserialize)]
pub struct AskForm {
    workspace_id: String,
    question: String,
    #[serde(default)]
    source_branch: String,
}

pub async fn ask(
    logged_in: LoggedIn,
    queue: web::Data<JobQueue>,
    registry: web::Data<Registry>,
    form: web::Form<AskForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let request = AskRequest {
        workspace_id: form.workspace_id,
        question: form.question,
        context: None,
        source_branch: Some(form.source_branch).filter(|b| !b.trim().is_empty()),
    };
    match submit_question(&queue, &registry, &logged_in.principal(), request).await {
        Ok((job, _)) => redirect(&format!("/dashboard/jobs/{}", job.id)),
        Err(err) => error_page(
            actix_web::ResponseError::status_code(&err),
            "The question was not queued",
            &match &err {
                crate::error::ApiError::BadRequest { details, .. } => details
                    .as_object()
                    .map(|problems| {
                        problems
                            .iter()
                            .map(|(field, problem)| {
                                format!("{field} {}", problem.as_str().unwrap_or("is invalid"))
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_else(|| err.to_string()),
                other => other.to_string(),
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    job: JobRow,
    question: String,
    finished: bool,
    error: Option<String>,
    answer_html: Option<String>,
    engine: Option<String>,
}

pub async fn job(
    logged_in: LoggedIn,
    queue: web::Data<JobQueue>,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> HttpResponse {
    let job = match JobId::parse(&id) {
        Some(id) => queue.get(&id).await,
        None => None,
    };
    let Some(job) = job else {
        return error_page(
            StatusCode::NOT_FOUND,
            "No such job",
            "There is no job with this id; it may be older than 7 days.",
        );
    };
    let result = job.result.as_ref();
    render(
        StatusCode::OK,
        &JobPage {
            nav: Some(nav(&logged_in, "queue")),
            flash: None,
            job: JobRow::new(&job, &registry),
            question: job.question.clone(),
            finished: job.status.is_finished(),
            error: job.error.clone(),
            answer_html: result
                .and_then(|r| r["output"].as_str())
                .map(markdown_to_safe_html),
            engine: result.and_then(|r| r["engine"].as_str()).map(str::to_owned),
        },
    )
}

/// Renders Markdown to HTML with every piece of raw HTML escaped, images
/// reduced to their text and links kept only to http(s) and in-page targets.
pub fn markdown_to_safe_html(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let events = parser.filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        // An image's alt text stays, as text; nothing is fetched.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let safe = dest_url.starts_with("https://")
                || dest_url.starts_with("http://")
                || dest_url.starts_with('#');
            let dest_url = if safe {
                dest_url
            } else {
                CowStr::Borrowed("#")
            };
            Some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    busy: bool,
    processing: Vec<JobRow>,
    pending: Vec<JobRow>,
    recent: Vec<JobRow>,
}

pub async fn queue_page(
    logged_in: LoggedIn,
    queue: web::Data<JobQueue>,
    registry: web::Data<Registry>,
) -> HttpResponse {
    let jobs = queue.list(|_| true);
    let of = |status: JobStatus| {
        jobs.iter()
            .filter(|j| j.status == status)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut pending = of(JobStatus::Pending);
    pending.reverse();
    let recent: Vec<Job> = jobs
        .iter()
        .filter(|j| j.status.is_finished())
        .take(RECENT_ROWS)
        .cloned()
        .collect();
    let processing = of(JobStatus::Processing);
    render(
        StatusCode::OK,
        &QueuePage {
            nav: Some(nav(&logged_in, "queue")),
            flash: None,
            busy: !processing.is_empty() || !pending.is_empty(),
            processing: rows(&processing, &registry),
            pending: rows(&pending, &registry),
            recent: rows(&recent, &registry),
        },
    )
}
