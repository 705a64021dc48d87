//! The ask form, a job's page (refreshing until the answer is there, the
//! Markdown rendered with any HTML in it escaped) and the queue page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::job_rows::{queue_unavailable, rows, JobRow};
use super::pages::{nav, overview_page, AskInput};
use super::storage_failure;
use super::{error_page, redirect, render, DashboardError, Flash, Nav, Overview};
use crate::auth::session::{self, LoggedIn};
use crate::jobs::{
    submit_question, Answer, AskError, AskField, AskRequest, Job, JobId, JobStatus, JobStore,
};
use crate::workspaces::Registry;

const RECENT_ROWS: usize = 20;

#[derive(Deserialize)]
pub struct AskForm {
    workspace_id: String,
    question: String,
    #[serde(default)]
    source_branch: String,
}

pub async fn ask(
    logged_in: LoggedIn,
    state: web::Data<Overview>,
    queue: web::Data<dyn JobStore>,
    registry: web::Data<Registry>,
    form: web::Form<AskForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let input = AskInput {
        workspace_id: form.workspace_id.clone(),
        source_branch: form.source_branch.clone(),
        question: form.question.clone(),
    };
    let request = AskRequest {
        workspace_id: form.workspace_id,
        question: form.question,
        context: None,
        source_branch: Some(form.source_branch).filter(|b| !b.trim().is_empty()),
    };
    match submit_question(queue.get_ref(), &registry, &logged_in.principal(), request).await {
        Ok((job, _)) => redirect(&format!("/dashboard/jobs/{}", job.id)),
        Err(err) => {
            overview_page(
                status_of(&err),
                &logged_in,
                &state,
                queue.get_ref(),
                &registry,
                Flash::error(format!("The question was not queued. {}", in_words(err))),
                input,
            )
            .await
        }
    }
}

fn status_of(err: &AskError) -> StatusCode {
    match err {
        AskError::Invalid(_) | AskError::NoSuchBranch(_) => StatusCode::BAD_REQUEST,
        AskError::NoSuchWorkspace => StatusCode::NOT_FOUND,
        AskError::TooManyJobs => StatusCode::TOO_MANY_REQUESTS,
        AskError::Registry(_) | AskError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Why the question was not queued, with the form's names for its fields.
fn in_words(err: AskError) -> String {
    let label = |field: AskField| match field {
        AskField::WorkspaceId => "Workspace",
        AskField::SourceBranch => "Branch",
        AskField::Question => "Question",
        AskField::Context => "Context",
    };
    match err {
        AskError::Invalid(problems) => problems
            .iter()
            .map(|(field, problem)| format!("{}: {}.", label(*field), problem))
            .collect::<Vec<_>>()
            .join(" "),
        AskError::NoSuchBranch(branch) => format!(
            "{}: there is no branch '{branch}' in this workspace.",
            label(AskField::SourceBranch)
        ),
        AskError::Registry(cause) => {
            tracing::error!(
                error = format!("{cause:#}"),
                "reading the workspaces failed"
            );
            AskError::Registry(cause).to_string()
        }
        AskError::Storage(cause) => {
            tracing::error!(error = format!("{cause:#}"), "a job could not be saved");
            AskError::Storage(cause).to_string()
        }
        other => other.to_string(),
    }
}

/// `POST /dashboard/jobs/{id}/cancel`: cancels a job that has not started.
pub async fn cancel(
    logged_in: LoggedIn,
    session: Session,
    queue: web::Data<dyn JobStore>,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(job_id) = JobId::parse(&id) else {
        return no_such_job();
    };
    let page = format!("/dashboard/jobs/{job_id}");
    match queue.cancel(&job_id, &logged_in.user.username).await {
        Ok(Ok(Some(_))) => {
            session::set_flash(&session, "The job was cancelled before it started.");
            redirect(&page)
        }
        Ok(Ok(None)) => no_such_job(),
        Ok(Err(job)) => {
            session::set_flash(
                &session,
                &format!(
                    "The job was not cancelled: only a pending job can be, and this one is {}.",
                    job.status.as_str()
                ),
            );
            redirect(&page)
        }
        Err(err) => DashboardError::storage("cancelling a job", &err).error_response(),
    }
}

fn no_such_job() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "No such job",
        "There is no job with this id; it may be older than 7 days.",
    )
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    job: JobRow,
    question: String,
    finished: bool,
    pending: bool,
    error: Option<String>,
    answer_html: Option<String>,
    /// An answer that is not Markdown, shown preformatted as it came.
    answer_text: Option<String>,
    engine: Option<String>,
}

pub async fn job(
    logged_in: LoggedIn,
    session: Session,
    queue: web::Data<dyn JobStore>,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> HttpResponse {
    let job = match JobId::parse(&id) {
        Some(id) => match queue.get(&id).await {
            Ok(job) => job,
            Err(err) => return queue_unavailable(&err),
        },
        None => None,
    };
    let Some(job) = job else {
        return no_such_job();
    };
    let workspaces = match registry.list().await {
        Ok(workspaces) => workspaces,
        Err(err) => return storage_failure("reading the workspaces", &err.into()),
    };
    let result = job.result.as_ref();
    let output = result.map(Answer::output);
    let markdown = output.is_some_and(looks_like_markdown);
    render(
        StatusCode::OK,
        &JobPage {
            nav: Some(nav(&logged_in, "queue")),
            flash: session::take_flash(&session).and_then(Flash::success),
            csrf_token: logged_in.csrf_token.clone(),
            job: JobRow::new(&job, &workspaces),
            question: job.question.clone(),
            finished: job.status.is_finished(),
            pending: job.status == JobStatus::Pending,
            error: job.error.clone(),
            answer_html: output.filter(|_| markdown).map(markdown_to_safe_html),
            answer_text: output.filter(|_| !markdown).map(str::to_owned),
            engine: result.map(|answer| answer.engine().to_owned()),
        },
    )
}

/// Whether an answer uses Markdown (headings, lists, fences, emphasis,
/// links, tables); plain text from a command is shown as it came instead,
/// since Markdown would join its lines and eat its `*` and `_`.
pub fn looks_like_markdown(text: &str) -> bool {
    let line_marks = ["# ", "## ", "### ", "```", "- ", "* ", "> ", "1. ", "| "];
    let by_line = text.lines().any(|line| {
        let line = line.trim_start();
        line_marks.iter().any(|mark| line.starts_with(mark))
    });
    by_line || text.contains("**") || text.contains("](") || text.contains("`")
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
    csrf_token: String,
    busy: bool,
    processing: Vec<JobRow>,
    pending: Vec<JobRow>,
    recent: Vec<JobRow>,
}

pub async fn queue_page(
    logged_in: LoggedIn,
    queue: web::Data<dyn JobStore>,
    registry: web::Data<Registry>,
) -> HttpResponse {
    let jobs = match queue.list(&|_| true).await {
        Ok(jobs) => jobs,
        Err(err) => return queue_unavailable(&err),
    };
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
    let workspaces = match registry.list().await {
        Ok(workspaces) => workspaces,
        Err(err) => return storage_failure("reading the workspaces", &err.into()),
    };
    render(
        StatusCode::OK,
        &QueuePage {
            nav: Some(nav(&logged_in, "queue")),
            flash: None,
            csrf_token: logged_in.csrf_token.clone(),
            busy: !processing.is_empty() || !pending.is_empty(),
            processing: rows(&processing, &workspaces),
            pending: rows(&pending, &workspaces),
            recent: rows(&recent, &workspaces),
        },
    )
}
